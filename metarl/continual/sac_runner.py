"""Continual World's protocol with SAC: a whole task stream as one jitted program per run.

    runner = SACContinualRunner(stream, SACConfig(...), MethodConfig("finetune"), RunConfig(...), SwitchConfig())
    results = runner.run()          # same keys as ContinualRunner.run: perf [seeds, evals, tasks], ...

The stream is data: a *plan* gives, for each evaluation chunk, the task to
train and whether a segment starts there (the switch). One ``lax.scan`` over the
plan runs, per chunk, the switch (a ``lax.cond`` on the plan's flag), the
chunk's SAC updates (:meth:`metarl.agents.sac.SAC.run`) and an evaluation of
every task of the stream; seeds are a ``vmap`` of that program. So the host
starts one program per run (after a small one that initialises the agents) and
no task switch recompiles anything. Long runs checkpoint instead
(:class:`StreamCheckpoints`, ``checkpoint_every`` chunks): the same scan runs in
pieces with the carry saved between them, and a resume continues bit for bit.

At a switch (Continual World's defaults, :class:`SwitchConfig`):
* every env ends its episode and starts one of the new task (CW forces
  ``done`` at the boundary);
* the replay buffer is emptied and the optimizers are re-initialised;
* the temperature restarts from ``init_alpha``: CW keeps one temperature per
  task, and in a stream that visits each task index once (CW10, CW20 with its
  20 indices) a fresh temperature per visit is the same thing;
* the update counter restarts, so each task begins with ``learning_starts``
  uniform-random steps (CW's 10 k random steps per task) before learning.
The critic and actor weights are kept (fine-tuning). CW still takes gradient
steps during those random steps once its global ``update_after`` has passed;
here learning waits until ``learning_starts`` steps of the new task exist.

Heads (``SwitchConfig.heads``): ``"multi"`` — the stream appends a one-hot of
the task index and the networks have one output head per task index, the
one-hot selecting the head and not being an input (CW's multi-head SAC with
``hide_task_id``); ``"single"`` — no task id anywhere (the networks cannot
tell tasks apart).

Evaluation: every task of the stream, ``eval_episodes`` episodes each, with
the stochastic policy by default (CW's metric) or the greedy one
(``eval_greedy``). The score of a task is its success rate (an episode counts
when ``info["success"]`` was true at any step, Meta-World's rule) on streams
scored by ``success`` (the CW streams), else the return mapped to [0, 1] as
the PPO runner does (:func:`metarl.continual.runner.score_bounds`).

Methods (``method=``, hooks in :mod:`metarl.continual.sac_hooks`): ``finetune``;
``packnet`` (:mod:`metarl.continual.packnet` on the actor, as Continual World
applies it: the last ``packnet_retrain_fraction`` of each task's steps retrain
after pruning, and each task is evaluated with its own weights); ``ewc``
(``ewc_coef``, CW 1e4) and ``l2`` (Continual World's L2: a penalty towards the
previous task's actor, ``cw_l2_coef``, CW 1e5 — not the PPO runner's ``l2``,
which pulls towards zero); ``agem`` (an episodic memory of ``agem_per_task``
transitions per finished task, CW 1e4, and A-GEM's projection of each network's
gradient; see :class:`metarl.continual.sac_hooks.AGEMHooks`); ``reset`` and
``shrink_perturb`` at every switch after the first; ``redo`` (every
``redo_every_updates`` updates) and ``cbp`` (every update) recycle hidden units of
the actor and both critics after the update's gradient steps
(:class:`metarl.continual.sac_hooks.RecycleUnits`). The PPO runner
(:mod:`metarl.continual.runner`) has the other methods.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from envs.wrappers import AnyStepSuccess
from metarl.agents.policy import evaluate_policy
from metarl.agents.ppo_policy import flat_obs
from metarl.agents.sac import SAC, SACConfig
from metarl.config import check_fields, option
from metarl.continual import metrics as M
from metarl.continual.methods import MethodConfig
from metarl.continual.runner import RunConfig, score_bounds
from metarl.continual.sac_hooks import (AGEMHooks, FinetuneHooks, PackNetHooks, RecycleUnits, RegularizerHooks,
                                        ReplayHooks, SurgeryHooks, UnitRecyclingHooks)
from metarl.continual.streams import Segment, TaskStream, build_env
from metarl.io.checkpoint import ESCheckpointer
from metarl.stats import bootstrap_ci

SAC_METHODS = ("finetune", "packnet", "ewc", "l2", "agem", "reset", "shrink_perturb", "redo", "cbp", "replay")


@dataclasses.dataclass(frozen=True)
class SwitchConfig:
    """What a task switch resets (Continual World's defaults) and how tasks reach the networks."""

    heads: str = option("multi", choices=("multi", "single"))
    reset_buffer: bool = True
    reset_optimizer: bool = True
    reset_alpha: bool = True

    def __post_init__(self) -> None:
        check_fields(self)


def chunk_plan(segments: tuple[Segment, ...], chunk_steps: int,
               retrain_fraction: float = 0.0) -> dict[str, np.ndarray | list[int]]:
    """Per chunk: ``task``, ``position`` (segment index), ``start`` (first chunk of a segment: the switch moves the
    envs to its task, also for the first segment, whose task need not be the one the envs start on) and ``prune`` (first chunk of the segment's last ``retrain_fraction``, when the
    segment has at least two chunks); ``counts``: chunks per segment (at least one each)."""
    counts = [max(1, round(s.steps / chunk_steps)) for s in segments]
    tasks = np.concatenate([np.full(n, s.task, np.int32) for s, n in zip(segments, counts)])
    position = np.concatenate([np.full(n, i, np.int32) for i, n in enumerate(counts)])
    starts = np.cumsum([0] + counts[:-1])
    start = np.zeros(len(tasks), bool)
    start[starts] = True
    prune = np.zeros(len(tasks), bool)
    if retrain_fraction > 0:
        for first, n in zip(starts, counts):
            retrain = min(n - 1, max(1, round(retrain_fraction * n)))
            if retrain > 0:
                prune[first + n - retrain] = True
    return {"task": tasks, "position": position, "start": start, "prune": prune, "counts": counts}


PLAN_FIELDS = {"index": jnp.int32, "task": jnp.int32, "position": jnp.int32, "start": jnp.bool_,
               "prune": jnp.bool_}


def _like_plan(n_chunks: int) -> dict[str, jax.ShapeDtypeStruct]:
    return {name: jax.ShapeDtypeStruct((n_chunks,), dtype) for name, dtype in PLAN_FIELDS.items()}


class StreamCheckpoints:
    """Orbax checkpoints of a SAC stream run in pieces of ``every`` chunks (``directory/<chunks done>``): the carry
    (agent and method state, buffers included) and the evaluations so far. ``resume``: start from the newest readable
    checkpoint (none: from the start). A resumed run equals the uninterrupted one with the same ``every`` bit for
    bit (the same piece programs run the same chunks)."""

    def __init__(self, directory: Any, every: int, resume: bool = False):
        if every < 1:
            raise ValueError(f"checkpoint_every must be >= 1 chunk, got {every}")
        self.every, self.resume = every, resume
        self._checkpointer = ESCheckpointer(directory, max_to_keep=2)

    def restore(self, carry: Any, outputs: Any) -> tuple[int, Any, Any]:
        if not self.resume or self._checkpointer.latest_generation() is None:
            return 0, carry, outputs
        done, tree, _ = self._checkpointer.restore({"carry": carry, "outputs": outputs})
        return done, tree["carry"], tree["outputs"]

    def save(self, done: int, carry: Any, outputs: Any) -> None:
        self._checkpointer.save(done, {"carry": carry, "outputs": outputs}, {"chunks_done": done})

    def close(self) -> None:
        self._checkpointer.close()


class SACContinualRunner:
    """Build once per (stream, agent config, method, switch settings); ``run()`` returns results."""

    def __init__(self, stream: TaskStream, agent_cfg: SACConfig, method: MethodConfig, run_cfg: RunConfig,
                 switch: SwitchConfig = SwitchConfig()):
        run_cfg.validate()
        if method.name not in SAC_METHODS:
            raise ValueError(f"method={method.name} is not available with SAC yet (SAC streams run "
                             f"{', '.join(SAC_METHODS)}; the PPO benchmarks have the other methods)")
        self.method_name = method.name
        multi = switch.heads == "multi"
        if method.name == "packnet":
            visits = [seg.task for seg in stream.segments]
            if len(set(visits)) != len(visits):
                raise ValueError(f"method=packnet needs a stream that visits each task index once; {stream.id} "
                                 "revisits one (CW20 gives a second visit its own index)")
            self.hooks = PackNetHooks(method.packnet_retrain_fraction, len(visits))
        elif method.name in ("ewc", "l2"):
            coef = method.ewc_coef if method.name == "ewc" else method.cw_l2_coef
            self.hooks = RegularizerHooks(method.name, coef, method.ewc_accumulate, agent_cfg.activation,
                                          stream.n_tasks if multi else 0)
        elif method.name == "agem":
            self.hooks = AGEMHooks(method.agem_per_task, method.agem_batch, len(stream.segments))
        elif method.name in ("reset", "shrink_perturb"):
            if not method.at_switch or method.every_updates > 0:
                raise ValueError(f"method={method.name} on SAC streams fires at task switches only "
                                 "(method.at_switch=true, method.every_updates=0)")
            self.hooks = SurgeryHooks(method.name, lambda key: self.agent.init_params(*jax.random.split(key)),
                                      method.reset_which, method.reset_last_k, method.shrink, method.perturb)
        elif method.name in ("redo", "cbp"):
            self.hooks = UnitRecyclingHooks(RecycleUnits(
                method.name, agent_cfg.activation, stream.n_tasks if multi else 0, tau=method.redo_tau,
                every=method.redo_every_updates,
                decay=method.cbp_decay, maturity=method.cbp_maturity, rate=method.cbp_replacement_rate))
        elif method.name == "replay":
            self.hooks = ReplayHooks()
            switch = dataclasses.replace(switch, reset_buffer=False)  # the buffer is the replay memory
        else:
            self.hooks = FinetuneHooks()
        # where each task index sits in the stream (never-visited tasks count as future ones)
        self.position_of_task = np.full(stream.n_tasks, len(stream.segments), np.int32)
        for i, seg in reversed(list(enumerate(stream.segments))):
            self.position_of_task[seg.task] = i
        stream = dataclasses.replace(stream, observe_task_id=multi)
        self.stream, self.run_cfg, self.switch_cfg = stream, run_cfg, switch
        self.env, self.table = build_env(stream)
        agent_cfg = dataclasses.replace(
            agent_cfg, total_timesteps=max(stream.total_steps, agent_cfg.steps_per_iteration),
            task_heads=stream.n_tasks if multi else 0, eval_every=0)
        first = self.env.task_params(stream.segments[0].task)
        self.agent = SAC(agent_cfg, self.env, first, actor_update_transform=self.hooks.actor_transform(),
                         actor_grad_transform=self.hooks.actor_pre_transform(), memory=self.hooks.memory(),
                         after_learn=self.hooks.after_learn(), reservoir=self.hooks.reservoir)
        self.agent_cfg = agent_cfg
        spi = agent_cfg.steps_per_iteration
        self.chunk_updates = max(1, run_cfg.eval_every_steps // spi)
        self.chunk_steps = self.chunk_updates * spi
        self.act = self.agent.policy(greedy=run_cfg.eval_greedy)
        self.eval_env = AnyStepSuccess(self.env)
        self.by_success = stream.spec.get("score", {}).get("kind") == "success"
        self.low, self.high = (None, None) if self.by_success else score_bounds(stream)
        self._programs: dict[tuple[int, bool], Any] = {}
        self._bar = None

    # --- pure pieces ----------------------------------------------------------
    def _switch_fn(self, state: Any, task: jax.Array) -> Any:
        cfg, sw, agent = self.agent_cfg, self.switch_cfg, self.agent
        n = cfg.num_envs
        key, k_reset = jax.random.split(state.key)
        params = jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), self.env.task_params(task))
        obs, env_state = jax.vmap(agent.log_env.reset)(jax.random.split(k_reset, n), params)
        state = state.replace(env_state=env_state, obs=flat_obs(obs, agent.obs_dim), env_params=params, key=key,
                              update_step=jnp.zeros_like(state.update_step),
                              last_episode=jnp.full_like(state.last_episode, jnp.nan))
        if state.noise is not None:  # colored acting noise: the envs start new episodes, so new sequences
            state = state.replace(noise=agent.fresh_noise(k_reset),
                                  noise_step=jnp.zeros_like(state.noise_step))
        if sw.reset_buffer:
            state = state.replace(buffer=state.buffer.replace(position=jnp.zeros_like(state.buffer.position),
                                                              size=jnp.zeros_like(state.buffer.size)))
        log_alpha = state.log_alpha
        if sw.reset_alpha:
            log_alpha = jnp.full_like(log_alpha, np.log(cfg.init_alpha))
        opt = dict(state.opt_state)
        if sw.reset_optimizer:
            opt["actor"] = agent.tx["actor"].init(state.params["actor"])
            opt["critic"] = agent.tx["critic"].init(state.params["critic"])
        if sw.reset_optimizer or sw.reset_alpha:
            opt["alpha"] = agent.tx["alpha"].init(log_alpha)
        return state.replace(log_alpha=log_alpha, opt_state=opt)

    def _evaluate_fn(self, state: Any, mstate: Any, current: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(success rate [tasks], mean return [tasks])`` of ``eval_episodes`` episodes per task, each task run
        with the actor the method gives it while the task at stream position ``current`` trains."""
        return self.evaluate_tasks(lambda position: self.hooks.actor_for(state, mstate, position, current), key)

    def evaluate_tasks(self, actor_of: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(success rate [tasks], mean return [tasks])``; ``actor_of(stream position)`` gives each task's actor."""
        n_tasks, episodes = self.stream.n_tasks, self.run_cfg.eval_episodes
        positions = jnp.asarray(self.position_of_task)

        def one_task(task, position, k):
            out = evaluate_policy(self.act, {"actor": actor_of(position)}, self.eval_env, self.env.task_params(task),
                                  k, episodes, max_steps=self.run_cfg.eval_max_steps)
            return jnp.mean(out["success"].astype(jnp.float32)), jnp.mean(out["return"])

        return jax.vmap(one_task)(jnp.arange(n_tasks), positions, jax.random.split(key, n_tasks))

    def _start(self, key: jax.Array) -> tuple[Any, Any, jax.Array]:
        """The stream's carry before its first chunk: ``(agent state, method state, evaluation key)``."""
        k_init, k_eval = jax.random.split(key)
        state = self.agent.init(k_init)
        return state, self.hooks.init(state), k_eval

    def _chunks_fn(self, carry: tuple, plan: dict[str, jax.Array], progress: Any = None):
        """Chunks of the plan from ``carry``: ``(carry, (success, returns, summary))``, one row per chunk."""
        state, mstate, k_eval = carry
        hooks = self.hooks

        def body(carry, xs):
            state, mstate = carry
            index = xs["index"]
            # a method reads the finished task (its data is still in the buffer) before the switch resets things
            state, mstate = jax.lax.cond(xs["start"] & (index > 0), hooks.leave_task, lambda s, m, _: (s, m),
                                         state, mstate, xs["position"])
            # at the first segment the resets are no-ops (all fresh) and the envs move to its task
            state = jax.lax.cond(xs["start"], self._switch_fn, lambda s, _: s, state, xs["task"])
            state, mstate = jax.lax.cond(xs["start"], hooks.start_task, lambda s, m, _: (s, m), state, mstate,
                                         xs["position"])
            state, mstate = jax.lax.cond(xs["prune"], hooks.end_task, lambda s, m, _: (s, m), state, mstate,
                                         xs["position"])
            state, metrics = self.agent.run(state, self.chunk_updates)
            success, returns = self._evaluate_fn(state, mstate, xs["position"], jax.random.fold_in(k_eval, index))
            if progress is not None:
                jax.debug.callback(progress, index)
            summary = {"train_task": jnp.mean(state.env_params.task_id.astype(jnp.float32)),
                       "train_return": metrics["episode_return"][-1], "train_success": metrics["success"][-1],
                       "alpha": metrics["alpha"][-1], "q_mean": metrics["q_mean"][-1]}
            if "units_recycled" in metrics:  # ReDo / CBP: hidden units recycled during the chunk
                summary["units_recycled"] = jnp.sum(metrics["units_recycled"])
            return (state, mstate), (success, returns, summary)

        (state, mstate), outputs = jax.lax.scan(body, (state, mstate), plan)
        return (state, mstate, k_eval), outputs

    # --- host side ------------------------------------------------------------
    def _keys_like(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((self.run_cfg.seeds, 2), jnp.uint32)

    def start_program(self):
        """The compiled, seed-vmapped carry before the first chunk."""
        if ("start", 0, False) not in self._programs:
            self._programs[("start", 0, False)] = jax.jit(jax.vmap(self._start)).lower(self._keys_like()).compile()
        return self._programs[("start", 0, False)]

    def chunks_program(self, n_chunks: int, progress: bool = False):
        """The compiled, seed-vmapped ``n_chunks`` chunks from a carry: the whole stream as one program, or each
        piece of a checkpointed run (one program per piece length and progress setting)."""
        key = ("chunks", n_chunks, progress)
        if key not in self._programs:
            callback = self._advance if progress else None
            fn = jax.jit(jax.vmap(lambda c, p: self._chunks_fn(c, p, callback), in_axes=(0, None)))
            carry = jax.eval_shape(jax.vmap(self._start), self._keys_like())
            self._programs[key] = fn.lower(carry, _like_plan(n_chunks)).compile()
        return self._programs[key]

    def _advance(self, index) -> None:
        """Progress callback (once per seed under vmap): show the furthest chunk done."""
        if self._bar is not None:
            self._bar.update(max(0, int(np.max(index)) + 1 - self._bar.n))

    def compile_counts(self) -> dict[str, int]:
        """Programs compiled: ``start`` and one per number of chunks run at once (a task switch never adds one)."""
        counts: dict[str, int] = {}
        for kind, n, _ in self._programs:
            name = "start" if kind == "start" else f"{kind}[{n}]"
            counts[name] = counts.get(name, 0) + 1
        return counts

    def run(self, progress: bool = False, segments: tuple[Segment, ...] | None = None,
            checkpoints: StreamCheckpoints | None = None) -> dict[str, Any]:
        """Train across the stream (or ``segments`` of the same task table, e.g. one task alone). Without
        ``checkpoints`` the whole stream is one program (after the start's); with them it runs in pieces of
        ``checkpoints.every`` chunks, saving the carry after each piece and resuming from the newest one. The chunks
        compute the same either way (measured bit for bit on the test stream; the resume test pins it for equal
        pieces)."""
        rc = self.run_cfg
        segments = self.stream.segments if segments is None else tuple(segments)
        plan = chunk_plan(segments, self.chunk_steps, self.hooks.retrain_fraction)
        tasks = plan["task"]
        plan = {name: jnp.asarray(np.arange(len(tasks)) if name == "index" else plan[name], dtype)
                for name, dtype in PLAN_FIELDS.items()}
        keys = jax.random.split(jax.random.PRNGKey(rc.seed), rc.seeds)
        what = self.stream.id if len(segments) > 1 else f"{self.stream.id} task {segments[0].task} alone"
        self._bar = tqdm(total=len(tasks), desc=f"{what} (sac, {self.method_name})", unit="eval",
                         disable=not progress, dynamic_ncols=True)
        t0 = time.time()
        (success, returns, summary), wall, trained = self._run_pieces(keys, plan, progress, checkpoints)
        other = time.time() - t0 - wall  # compiles (and checkpoints): everything but the chunks' programs
        self._bar.close()
        self._bar = None
        if self.by_success:
            perf = np.asarray(success)
        else:
            span = np.where(self.high > self.low, self.high - self.low, 1.0)
            perf = np.clip((np.asarray(returns) - self.low) / span, 0.0, 1.0)
        eval_steps = self.chunk_steps * np.arange(1, len(tasks) + 1)
        return {
            "stream": self.stream.id,
            "method": self.method_name,
            "eval_steps": eval_steps,
            "returns": np.asarray(returns),
            "perf": perf,  # [seeds, evals, tasks]
            "success": np.asarray(success),
            "diagnostics": {k: np.asarray(v) for k, v in summary.items()},
            "interventions": [],
            "segments": segments_run(segments, self.chunk_steps),
            "compile_counts": self.compile_counts(),
            "wall_time_s": wall,  # the run alone; compile_time_s is separate
            "compile_time_s": other,
            "env_steps_per_s": float(rc.seeds * trained * self.chunk_steps / wall) if trained else None,
            "chunks_trained": trained,  # in this process (a resume trains only the rest)
        }

    def _run_pieces(self, keys: jax.Array, plan: dict, progress: bool, checkpoints: StreamCheckpoints | None):
        """``((success, returns, summary), seconds training, chunks trained here)``: all chunks at once without
        ``checkpoints``, else in checkpointed pieces from the newest checkpoint."""
        n = len(plan["index"])
        every = n if checkpoints is None else min(checkpoints.every, n)
        carry = self.start_program()(keys)
        self.chunks_program(every, progress)  # the common piece, compiled before any chunk runs
        one = jax.eval_shape(jax.vmap(lambda c, p: self._chunks_fn(c, p), in_axes=(0, None)), carry, _like_plan(1))[1]
        outputs = jax.tree.map(lambda s: jnp.full((s.shape[0], n) + s.shape[2:], jnp.nan, s.dtype), one)
        done = 0
        if checkpoints is not None:
            done, carry, outputs = checkpoints.restore(carry, outputs)
        if self._bar is not None:
            self._bar.update(done)
        wall, start = 0.0, done
        while done < n:
            size = min(every, n - done)
            fn = self.chunks_program(size, progress)
            t = time.time()
            carry, out = jax.block_until_ready(fn(carry, {k: v[done:done + size] for k, v in plan.items()}))
            wall += time.time() - t
            outputs = jax.tree.map(lambda full, new: full.at[:, done:done + size].set(new), outputs, out)
            done += size
            if checkpoints is not None:
                checkpoints.save(done, carry, outputs)
        return jax.tree.map(np.asarray, outputs), wall, done - start


def sac_reference_runs(runner: SACContinualRunner, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """From-scratch single-task runs, one per task, with the budget of that task's first visit (forward
    transfer's reference). Returns ``(ref_steps[E], ref_perf[seeds, E, T])`` like
    :func:`metarl.continual.runner.reference_runs`."""
    stream, seeds = runner.stream, runner.run_cfg.seeds
    first_len: dict[int, int] = {}
    for seg in stream.segments:
        first_len.setdefault(seg.task, seg.steps)
    outs = {task: runner.run(progress, segments=(Segment(task, steps),)) for task, steps in sorted(first_len.items())}
    longest = max(len(o["eval_steps"]) for o in outs.values())
    ref_perf = np.full((seeds, longest, stream.n_tasks), np.nan)
    for task, out in outs.items():
        ref_perf[:, : out["perf"].shape[1], task] = out["perf"][:, :, task]
    return runner.chunk_steps * np.arange(1, longest + 1), ref_perf


def multitask_run(runner: SACContinualRunner, progress: bool = False) -> dict[str, Any]:
    """Continual World's multi-task reference: one SAC on all the stream's tasks at once for the stream's total
    steps (every env draws a task per episode; envs come in one block per task when ``num_envs`` is a multiple of
    the task count), evaluated on every task each chunk like the stream. Same agent settings and seeds as
    ``runner``; no switches, so nothing is reset. Returns ``{"eval_steps", "perf" [seeds, evals, tasks],
    "returns", "wall_time_s"}``; its average performance is the mean final score over tasks."""
    rc, stream = runner.run_cfg, runner.stream
    table = runner.env.task_params(jnp.arange(stream.n_tasks))
    agent = SAC(runner.agent_cfg, runner.env, runner.env.task_params(0), task_set=table)
    n_chunks = max(1, round(stream.total_steps / runner.chunk_steps))
    bar = tqdm(total=n_chunks, desc=f"{stream.id} multi-task (sac)", unit="eval", disable=not progress,
               dynamic_ncols=True)

    def advance(index):
        bar.update(max(0, int(np.max(index)) + 1 - bar.n))

    def one_seed(key):
        k_init, k_eval = jax.random.split(key)

        def body(state, index):
            state, _ = agent.run(state, runner.chunk_updates)
            scores = runner.evaluate_tasks(lambda _: state.params["actor"], jax.random.fold_in(k_eval, index))
            if progress:
                jax.debug.callback(advance, index)
            return state, scores

        _, (success, returns) = jax.lax.scan(body, agent.init(k_init), jnp.arange(n_chunks))
        return success, returns

    keys = jax.random.split(jax.random.PRNGKey(rc.seed), rc.seeds)
    program = jax.jit(jax.vmap(one_seed)).lower(keys).compile()
    t0 = time.time()
    success, returns = jax.block_until_ready(program(keys))
    wall = time.time() - t0
    bar.close()
    perf = np.asarray(success)
    if not runner.by_success:
        span = np.where(runner.high > runner.low, runner.high - runner.low, 1.0)
        perf = np.clip((np.asarray(returns) - runner.low) / span, 0.0, 1.0)
    return {"eval_steps": runner.chunk_steps * np.arange(1, n_chunks + 1), "perf": perf,
            "returns": np.asarray(returns), "wall_time_s": wall}


def multitask_average_performance(eval_steps: np.ndarray, perf: np.ndarray) -> tuple[np.ndarray, tuple]:
    """The multi-task reference's AP: per seed the mean over tasks of the last-5 final score, and its
    ``(mean, ci_low, ci_high)`` over seeds (the continual metrics' bootstrap)."""
    final = np.array([np.mean([M.last_k_mean(eval_steps, seed[:, t], 0, eval_steps[-1]) for t in range(seed.shape[1])])
                      for seed in perf])
    return final, bootstrap_ci(final, reps=M.BOOTSTRAP_REPS, confidence=M.CONFIDENCE)


def segments_run(segments: tuple[Segment, ...], chunk_steps: int) -> list[tuple[int, int]]:
    """``(task, steps)`` of each segment as a run trains it (whole chunks, at least one)."""
    return [(s.task, n * chunk_steps) for s, n in zip(segments, chunk_plan(segments, chunk_steps)["counts"])]
