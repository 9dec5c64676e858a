"""Continual-RL runner: PPO across a task stream in jitted chunks.

The method (:mod:`metarl.continual.methods`, an object with hooks) is plugged
into PPO through :class:`metarl.continual.agent_hooks.ContinualHooks`; the
runner never looks at the method's name. Three jitted programs, each compiled
once per run, all vmapped over seeds:

* ``chunk`` — ``eval_every`` PPO updates (``agent.run``); after each update
  PPO calls the method's ``after_update`` hook;
* ``switch`` — the method's ``on_task_switch`` hook, then every env starts a
  fresh episode of the new task (a traced task id: CW forces an episode end
  at the boundary);
* ``evaluate`` — every task of the stream, ``eval_episodes`` episodes each
  (:func:`metarl.agents.policy.evaluate_policy` with PPO's policy), plus the
  plasticity diagnostics.

Activations for ReDo, EWC's Fisher, replay and the diagnostics come from a
ring buffer of the envs' observations over the last ``obs_buffer_updates``
rollouts. The optimizer is a gradient-norm probe (per-layer gradient norms
for the diagnostics), the method's transforms (L2/L2-init/EWC penalties,
replay cloning), then Adam.

The host loop walks the stream's segments chunk by chunk, so changing tasks
never recompiles (``compile_counts()`` proves it via the jit caches).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from metarl.agents.env_spec import EnvSpec
from metarl.agents.policy import evaluate_policy
from metarl.agents.ppo import PPO, PPOConfig
from metarl.config import check_fields, option
from metarl.continual import metrics as M
from metarl.continual import plasticity as P
from metarl.continual import regularizers as R
from metarl.continual.agent_hooks import ContinualHooks
from metarl.continual.method_base import Finetune, MethodContext
from metarl.continual.methods import MethodConfig
from metarl.continual.streams import Segment, TaskStream, build_env


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Protocol settings. Steps are env steps; they are rounded to whole chunks."""

    eval_every_steps: int = option(20_000, ge=1)
    eval_episodes: int = option(5, ge=1)
    eval_max_steps: int = option(500, ge=1)
    eval_greedy: bool = False  # CW scores the stochastic policy
    obs_buffer_updates: int = option(16, ge=1)  # recent rollouts' observations kept for ReDo/EWC/replay/diagnostics
    replay_per_task: int = option(512, ge=1)  # states offered to the replay buffer at each task end
    seeds: int = option(1, ge=1)
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)

    def validate(self) -> None:
        """Every field is checked on construction; kept for callers that validate explicitly."""
        check_fields(self)


def score_bounds(stream: TaskStream) -> tuple[np.ndarray, np.ndarray]:
    """Per-task ``(low, high)`` mapping returns to scores in [0, 1].

    ``spec["score"]``: ``{"kind": "range", "low": a, "high": b}`` or
    ``{"kind": "gridworld_dp"}`` (uniform-random return to optimal return,
    by exact dynamic programming). Default: raw returns clipped to [0, 1].
    """
    spec = stream.spec.get("score", {"kind": "range", "low": 0.0, "high": 1.0})
    n = stream.n_tasks
    if spec["kind"] == "range":
        return np.full(n, float(spec["low"])), np.full(n, float(spec["high"]))
    if spec["kind"] == "success":
        raise ValueError(f"stream {stream.id} is scored by success rate, which the SAC runner reads "
                         "(benchmark.algorithm=sac)")
    if spec["kind"] == "gridworld_dp":
        import envs
        from envs import gridworld_dp

        base, _ = envs.make(stream.env, **stream.env_kwargs)
        low = np.array([float(gridworld_dp.uniform_policy_return(base, stream.task(i))) for i in range(n)])
        high = np.array([float(gridworld_dp.optimal_return(base, stream.task(i))) for i in range(n)])
        return low, high
    raise ValueError(f"unknown score kind {spec['kind']!r}; expected range or gridworld_dp")


class ContinualRunner:
    """Build once per (stream, agent config, method); ``run()`` returns results."""

    def __init__(self, stream: TaskStream, agent_cfg: PPOConfig, method: MethodConfig, run_cfg: RunConfig):
        run_cfg.validate()
        self.method = method.build()
        self.method.check_agent(agent_cfg)
        self.stream, self.run_cfg = stream, run_cfg
        self.env, self.table = build_env(stream)
        # the agent's progress (and LR annealing) spans the whole stream
        agent_cfg = dataclasses.replace(agent_cfg, total_timesteps=max(stream.total_steps, agent_cfg.batch_size))
        self.agent_cfg = agent_cfg
        first = self.env.task_params(stream.segments[0].task)
        agent_cfg.validate(self.env, first)
        self.ctx = MethodContext(agent_cfg, EnvSpec.of(self.env), run_cfg.replay_per_task)
        like = self.ctx.fresh(jax.random.PRNGKey(0))
        # gradient-norm probe first (it sees PPO's clipped gradient), the method's transforms, then Adam
        tx = optax.chain(R.grad_norm_probe(like), *self.method.transforms(self.ctx), optax.adam(agent_cfg.lr, eps=1e-5))
        self.hooks = ContinualHooks(self.method, self.ctx, run_cfg.obs_buffer_updates, stream.segments[0].task)
        self.agent = PPO(agent_cfg, self.env, first, optimizer=tx, hooks=self.hooks)
        self.act = self.agent.policy(greedy=run_cfg.eval_greedy)
        batch = agent_cfg.batch_size
        self.chunk_updates = max(1, run_cfg.eval_every_steps // batch)
        self.chunk_steps = self.chunk_updates * batch  # segments are run in whole chunks (at least one each)
        self.low, self.high = score_bounds(stream)
        self._chunk = jax.jit(jax.vmap(self._chunk_fn))
        self._switch = jax.jit(jax.vmap(self._switch_fn, in_axes=(0, None, None)))
        self._evaluate = jax.jit(jax.vmap(self._evaluate_fn))
        self._init = jax.jit(jax.vmap(self._init_fn))

    # --- pure pieces ----------------------------------------------------------
    def _init_fn(self, key):
        k_agent, k_hooks = jax.random.split(key)
        return self.agent.init(k_agent, hook_key=k_hooks)

    def _chunk_fn(self, state):
        state, metrics = self.agent.run(state, self.chunk_updates)
        summary = {
            "train_return": metrics["episode_return"][-1],
            "intervention_fired": jnp.sum(metrics["intervention_fired"]),
            "intervention_units": jnp.sum(metrics["intervention_units"]),
        }
        return state, summary

    def _switch_fn(self, state, task_id, intervene):
        """Move to ``task_id``; ``intervene``: a task ended (the method's switch hook acts)."""
        key, k_reset, k_method = jax.random.split(state.hook_state.key, 3)
        state, fired = self.hooks.task_switch(state, k_method, jnp.asarray(intervene), task_id)
        # every env starts a fresh episode of the new task (CW forces done at the boundary)
        n_envs = self.agent_cfg.num_envs
        params = jax.tree.map(lambda x: jnp.broadcast_to(x, (n_envs,) + x.shape), self.env.task_params(task_id))
        state = self.agent.reset_envs(state, k_reset, params)
        return state.replace(hook_state=state.hook_state.replace(key=key)), fired

    def _evaluate_fn(self, state):
        """Mean return and score of every task, plus plasticity diagnostics."""
        cfg, rc = self.agent_cfg, self.run_cfg
        hs = state.hook_state
        key, k_eval = jax.random.split(hs.key)
        policy = PPO.policy_params(state)

        def task_return(task_id, k):
            episodes = evaluate_policy(self.act, policy, self.env, self.env.task_params(task_id), k, rc.eval_episodes,
                                       max_steps=rc.eval_max_steps)
            return jnp.mean(episodes["return"])

        tasks = jnp.arange(self.stream.n_tasks)
        returns = jax.vmap(task_return)(tasks, jax.random.split(k_eval, self.stream.n_tasks))
        span = jnp.asarray(np.where(self.high > self.low, self.high - self.low, 1.0), jnp.float32)
        scores = jnp.clip((returns - jnp.asarray(self.low, jnp.float32)) / span, 0.0, 1.0)
        diag = P.flatten_stats(P.mlp_activation_stats(state.params, self.hooks.recent_obs(state), cfg.activation))
        weights = P.weight_stats(state.params, hs.init_params)
        for name, grad_norm in R.read_grad_norms(state.opt_state).items():
            weights.setdefault(name, {})["grad_norm"] = grad_norm
        diag.update(P.flatten_stats(weights))
        return returns, scores, diag, state.replace(hook_state=hs.replace(key=key))

    # --- host loop ------------------------------------------------------------
    def compile_counts(self) -> dict[str, int]:
        """How many programs each jitted piece has compiled (1 each = no recompiles)."""
        return {name: fn._cache_size() for name, fn in
                (("init", self._init), ("chunk", self._chunk), ("switch", self._switch), ("evaluate", self._evaluate))}

    def run(self, progress: bool = False, segments: tuple[Segment, ...] | None = None) -> dict[str, Any]:
        """Train across the stream (or across ``segments`` of the same task
        table — the compiled programs do not depend on the schedule)."""
        rc = self.run_cfg
        segments = self.stream.segments if segments is None else tuple(segments)
        seg_chunks = [max(1, round(s.steps / self.chunk_steps)) for s in segments]
        keys = jax.random.split(jax.random.PRNGKey(rc.seed), rc.seeds)
        state = self._init(keys)
        eval_steps, returns, scores, diags, log = [], [], [], [], []
        step, t0 = 0, time.time()
        total_chunks = sum(seg_chunks)
        what = self.stream.id if len(segments) > 1 else f"{self.stream.id} task {segments[0].task} alone"
        bar = tqdm(total=total_chunks, desc=f"{what} ({self.method.name})", unit="eval", disable=not progress,
                   dynamic_ncols=True)
        for index, (seg, n_chunks) in enumerate(zip(segments, seg_chunks)):
            state, fired = self._switch(state, jnp.int32(seg.task), jnp.asarray(index > 0))
            if index > 0:
                log.append({"step": step, "event": f"switch->{seg.task}", "method": self.method.name,
                            "fired": np.asarray(fired).tolist()})
            for _ in range(n_chunks):
                state, summary = self._chunk(state)
                step += self.chunk_steps
                fired_n = np.asarray(summary["intervention_fired"])
                if np.any(fired_n > 0):
                    log.append({"step": step, "event": "periodic", "method": self.method.name,
                                "fired": fired_n.tolist(), "units": np.asarray(summary["intervention_units"]).tolist()})
                ret, score, diag, state = self._evaluate(state)
                eval_steps.append(step)
                returns.append(np.asarray(ret))
                scores.append(np.asarray(score))
                diags.append({k: np.asarray(v) for k, v in diag.items()})
                bar.set_postfix(task=seg.task, score=f"{np.mean(score):.3f}", refresh=False)
                bar.update(1)
        bar.close()
        perf = np.stack(scores, axis=1)  # [seeds, evals, tasks]
        return {
            "stream": self.stream.id,
            "method": self.method.name,
            "eval_steps": np.asarray(eval_steps),
            "returns": np.stack(returns, axis=1),
            "perf": perf,
            "diagnostics": {k: np.stack([d[k] for d in diags], axis=1) for k in diags[0]},
            "interventions": log,
            "segments": [(s.task, n * self.chunk_steps) for s, n in zip(segments, seg_chunks)],
            "compile_counts": self.compile_counts(),
            "wall_time_s": time.time() - t0,
        }


def reference_runs(
    stream: TaskStream, agent_cfg: PPOConfig, run_cfg: RunConfig, runner: ContinualRunner | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """From-scratch single-task fine-tuning runs, one per task, with the budget
    of that task's first visit. Returns ``(ref_steps[E], ref_perf[seeds, E, T])``
    (column t is task t's own run; NaN after its budget). ``runner``: a
    fine-tuning runner of the same stream to reuse (no new compilation)."""
    if runner is None or type(runner.method) is not Finetune:
        runner = ContinualRunner(stream, agent_cfg, MethodConfig("finetune"), run_cfg)
    first_len: dict[int, int] = {}
    for seg in stream.segments:
        first_len.setdefault(seg.task, seg.steps)
    outs = {task: runner.run(progress, segments=(Segment(task, steps),)) for task, steps in sorted(first_len.items())}
    longest = max(len(o["eval_steps"]) for o in outs.values())
    ref_steps = runner.chunk_steps * np.arange(1, longest + 1)
    ref_perf = np.full((run_cfg.seeds, longest, stream.n_tasks), np.nan)
    for task, out in outs.items():
        ref_perf[:, : out["perf"].shape[1], task] = out["perf"][:, :, task]
    return ref_steps, ref_perf


def evaluate_results(results: dict[str, Any], ref: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """CW metrics per seed and their bootstrap summary."""
    per_seed = []
    for s in range(results["perf"].shape[0]):
        ref_steps, ref_perf = (None, None) if ref is None else (ref[0], np.nan_to_num(ref[1][s], nan=0.0))
        per_seed.append(M.continual_metrics(results["eval_steps"], results["perf"][s], results["segments"], ref_steps, ref_perf))
    return {"per_seed": per_seed, "summary": M.summarize_seeds(per_seed)}
