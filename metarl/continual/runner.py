"""Continual-RL runner: PPO across a task stream in jitted chunks.

Three jitted programs, each compiled once per run, all vmapped over seeds:

* ``chunk`` — ``eval_every`` PPO updates (a ``lax.scan`` of ``agent.update``)
  plus the per-update interventions (scheduled reset / shrink-and-perturb,
  ReDo every ``redo_every_updates``, continual backprop every update);
* ``switch`` — move every env to a new task (a traced task id: CW forces an
  episode end at the boundary) and apply the at-switch interventions (reset,
  shrink-and-perturb, EWC anchor + Fisher, adding the finished task's states to
  the replay buffer);
* ``evaluate`` — every task of the stream, ``eval_episodes`` episodes each,
  plus the plasticity diagnostics.

Activations for ReDo, EWC's Fisher, replay and the diagnostics come from a
ring buffer of the envs' observations over the last ``obs_buffer_updates``
rollouts; continual backprop uses the current observations of each update
(PPO does not expose its minibatch activations — a hook there would let CBP
use them, as LoP does).

The host loop walks the stream's segments chunk by chunk, so changing tasks
never recompiles (``compile_counts()`` proves it via the jit caches).

Loss-side methods ride on PPO's ``optimizer=`` argument (see
:mod:`metarl.continual.regularizers` and :mod:`metarl.continual.replay`):
L2/L2-init/EWC add their penalty's gradient before Adam, replay adds a
behaviour-cloning gradient on buffer samples; a gradient-norm probe at the
head of the chain records per-layer gradient norms for the diagnostics.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from metarl.agents import networks
from metarl.agents.ppo import PPO, PPOConfig
from metarl.continual import interventions as I
from metarl.continual import metrics as M
from metarl.continual import plasticity as P
from metarl.continual import regularizers as R
from metarl.continual import replay as RP
from metarl.continual.methods import MethodConfig
from metarl.continual.streams import Segment, TaskStream, build_env


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Protocol settings. Steps are env steps; they are rounded to whole chunks."""

    eval_every_steps: int = 20_000
    eval_episodes: int = 5
    eval_max_steps: int = 500
    eval_greedy: bool = False  # CW scores the stochastic policy
    obs_buffer_updates: int = 16  # recent rollouts' observations kept for ReDo/EWC/replay/diagnostics
    replay_per_task: int = 512  # states offered to the replay buffer at each task end
    seeds: int = 1
    seed: int = 0

    def validate(self) -> None:
        for field in ("eval_every_steps", "eval_episodes", "eval_max_steps", "obs_buffer_updates", "seeds", "replay_per_task"):
            value = getattr(self, field)
            if isinstance(value, bool) or not float(value).is_integer() or int(value) < 1:
                raise ValueError(f"{field} must be a positive integer, got {value!r}")


@struct.dataclass
class Extras:
    """Continual bookkeeping carried next to PPO's RunnerState."""

    init_params: Any
    cbp: Any
    obs_buffer: jax.Array  # [K, num_envs, obs_dim], most recent rollouts' current observations
    updates: jax.Array  # () int32
    key: jax.Array
    task_id: jax.Array  # () int32, task being trained


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
    if spec["kind"] == "gridworld_dp":
        import envs
        from envs import gridworld_dp

        base, _ = envs.make(stream.env, **stream.env_kwargs)
        low = np.array([float(gridworld_dp.uniform_policy_return(base, stream.task(i))) for i in range(n)])
        high = np.array([float(gridworld_dp.optimal_return(base, stream.task(i))) for i in range(n)])
        return low, high
    raise ValueError(f"unknown score kind {spec['kind']!r}; expected range or gridworld_dp")


def _make_optimizer(agent_cfg: PPOConfig, method: MethodConfig, like_params: Any, obs_dim: int, out_dim: int, continuous: bool):
    parts = [R.grad_norm_probe(like_params)]
    if method.name in ("l2", "l2_init", "ewc"):
        parts.append(R.anchor_penalty())
    if method.name == "replay":
        parts.append(
            RP.replay_cloning(
                method.replay_capacity, obs_dim, out_dim, method.replay_batch, method.replay_coef,
                agent_cfg.activation, continuous,
            )
        )
    parts.append(optax.adam(agent_cfg.lr, eps=1e-5))
    return optax.chain(*parts)


class ContinualRunner:
    """Build once per (stream, agent config, method); ``run()`` returns results."""

    def __init__(self, stream: TaskStream, agent_cfg: PPOConfig, method: MethodConfig, run_cfg: RunConfig):
        method.validate()
        run_cfg.validate()
        if method.name == "replay" and agent_cfg.normalize_obs:
            raise ValueError("method replay stores raw observations; set agent.normalize_obs=false")
        self.stream, self.method, self.run_cfg = stream, method, run_cfg
        self.env, self.table = build_env(stream)
        # the agent's progress (and LR annealing) spans the whole stream
        agent_cfg = dataclasses.replace(agent_cfg, total_timesteps=max(stream.total_steps, agent_cfg.batch_size))
        self.agent_cfg = agent_cfg
        first = self.env.task_params(stream.segments[0].task)
        probe_agent = PPO(agent_cfg, self.env, first)  # only for shapes
        self.obs_dim, self.action_dim, self.continuous = probe_agent.obs_dim, probe_agent.action_dim, probe_agent.continuous
        like = self._fresh(jax.random.PRNGKey(0))
        tx = _make_optimizer(agent_cfg, method, like, self.obs_dim, self.action_dim, self.continuous)
        self.agent = PPO(agent_cfg, self.env, first, optimizer=tx)
        batch = agent_cfg.batch_size
        self.chunk_updates = max(1, run_cfg.eval_every_steps // batch)
        chunk_steps = self.chunk_updates * batch
        self.chunk_steps = chunk_steps  # segments are run in whole chunks (at least one each)
        self.low, self.high = score_bounds(stream)
        self._chunk = jax.jit(jax.vmap(self._chunk_fn))
        self._switch = jax.jit(jax.vmap(self._switch_fn, in_axes=(0, 0, None, None)))
        self._evaluate = jax.jit(jax.vmap(self._evaluate_fn))
        self._init = jax.jit(jax.vmap(self._init_fn))

    # --- pure pieces ----------------------------------------------------------
    def _fresh(self, key):
        cfg = self.agent_cfg
        # networks takes an (actor, critic) key pair
        return networks.init_actor_critic(jax.random.split(key), self.obs_dim, self.action_dim, cfg.hidden_sizes, self.continuous)

    def _hiddens(self, params, obs):
        act = self.agent_cfg.activation
        obs = obs.reshape(-1, self.obs_dim)
        return {net: networks.apply_mlp(params[net], obs, act)[1] for net in ("actor", "critic")}

    def _norm_obs(self, state, obs):
        return state.obs_rms.normalize(obs).astype(jnp.float32) if self.agent_cfg.normalize_obs else obs

    def _init_fn(self, key):
        k_agent, k_extra = jax.random.split(key)
        state = self.agent.init(k_agent)
        m = self.method
        if m.name == "l2":
            zeros = jax.tree.map(jnp.zeros_like, state.params)
            state = state.replace(opt_state=R.set_anchor(state.opt_state, anchor=zeros, coef=2 * m.l2_coef))
        if m.name == "l2_init":
            state = state.replace(opt_state=R.set_anchor(state.opt_state, anchor=state.params, coef=2 * m.l2_init_coef))
        k = self.run_cfg.obs_buffer_updates
        extras = Extras(
            init_params=state.params,
            cbp=I.cbp_init(state.params) if m.name == "cbp" else None,
            obs_buffer=jnp.broadcast_to(state.obs, (k,) + state.obs.shape),
            updates=jnp.zeros((), jnp.int32),
            key=k_extra,
            task_id=jnp.asarray(self.stream.segments[0].task, jnp.int32),
        )
        return state, extras

    def _scheduled(self, state, extras, key, fire):
        """Reset or shrink-and-perturb when ``fire``; returns (state, count)."""
        m = self.method

        def apply(params_opt):
            params, opt = params_opt
            fresh = self._fresh(key)
            if m.name == "reset":
                mask = {
                    "all": lambda: I.select_all(params),
                    "last": lambda: I.select_last_layers(params, m.reset_last_k),
                    "critic": lambda: I.select_nets(params, ("critic",)),
                }[m.reset_which]()
                params, opt, _ = I.reset(params, opt, fresh, mask)
            else:
                params, opt, _ = I.shrink_perturb(params, opt, fresh, m.shrink, m.perturb)
            return params, opt

        params, opt = jax.lax.cond(fire, apply, lambda po: po, (state.params, state.opt_state))
        return state.replace(params=params, opt_state=opt), fire.astype(jnp.float32)

    def _chunk_fn(self, state, extras):
        m = self.method

        def body(carry, _):
            state, extras = carry
            state, metrics = self.agent.update(state)
            updates = extras.updates + 1
            key, k_int = jax.random.split(extras.key)
            buf = jnp.concatenate([extras.obs_buffer[1:], state.obs[None]], axis=0)
            log = {"fired": jnp.zeros((), jnp.float32), "units": jnp.zeros((), jnp.float32)}
            cbp = extras.cbp
            if m.name in ("reset", "shrink_perturb") and m.every_updates > 0:
                state, fired = self._scheduled(state, extras, k_int, updates % m.every_updates == 0)
                log["fired"] = fired
            if m.name == "redo":
                def recycle(po):
                    params, opt = po
                    hid = self._hiddens(params, self._norm_obs(state, buf))
                    params, opt, info = I.redo(params, opt, self._fresh(k_int), hid, m.redo_tau)
                    return params, opt, info["redo_recycled"]

                fire = updates % m.redo_every_updates == 0
                params, opt, units = jax.lax.cond(
                    fire, recycle, lambda po: (*po, jnp.zeros((), jnp.float32)), (state.params, state.opt_state)
                )
                state = state.replace(params=params, opt_state=opt)
                log = {"fired": fire.astype(jnp.float32), "units": units}
            if m.name == "cbp":
                hid = self._hiddens(state.params, self._norm_obs(state, state.obs))
                cbp, params, opt, info = I.cbp_step(
                    cbp, state.params, state.opt_state, self._fresh(k_int), hid,
                    m.cbp_decay, m.cbp_maturity, m.cbp_replacement_rate,
                )
                state = state.replace(params=params, opt_state=opt)
                log = {"fired": (info["cbp_replaced"] > 0).astype(jnp.float32), "units": info["cbp_replaced"]}
            extras = extras.replace(obs_buffer=buf, updates=updates, key=key, cbp=cbp)
            return (state, extras), {"episode_return": metrics["episode_return"], **{f"intervention_{k}": v for k, v in log.items()}}

        (state, extras), logs = jax.lax.scan(body, (state, extras), None, length=self.chunk_updates)
        summary = {
            "train_return": logs["episode_return"][-1],
            "intervention_fired": jnp.sum(logs["intervention_fired"]),
            "intervention_units": jnp.sum(logs["intervention_units"]),
        }
        return state, extras, summary

    def _switch_fn(self, state, extras, task_id, intervene):
        """Move to ``task_id``; with ``intervene`` apply the at-switch methods."""
        m = self.method
        key, k_reset, k_int, k_fisher, k_replay = jax.random.split(extras.key, 5)
        fired = jnp.zeros((), jnp.float32)
        if m.name in ("reset", "shrink_perturb") and m.at_switch:
            state, fired = self._scheduled(state, extras, k_int, jnp.asarray(intervene))
        obs_prev = self._norm_obs(state, extras.obs_buffer.reshape(-1, self.obs_dim))
        if m.name == "ewc":
            fisher = R.diagonal_fisher(k_fisher, state.params, obs_prev, self.agent_cfg.activation, self.continuous)

            def anchor(opt):
                old = [s for s in jax.tree.leaves(opt, is_leaf=lambda x: isinstance(x, R.AnchorState)) if isinstance(s, R.AnchorState)][0]
                weight = jax.tree.map(jnp.add, old.weight, fisher) if m.ewc_accumulate else fisher
                # before the first switch the weight is the inert init (ones, coef 0): start from the Fisher alone
                weight = jax.tree.map(lambda w, f: jnp.where(old.coef > 0, w, f), weight, fisher)
                return R.set_anchor(opt, anchor=state.params, weight=weight, coef=m.ewc_coef)

            state = state.replace(opt_state=jax.lax.cond(intervene, anchor, lambda o: o, state.opt_state))
            fired = jnp.asarray(intervene, jnp.float32)
        if m.name == "replay":
            n = min(self.run_cfg.replay_per_task, obs_prev.shape[0])
            obs_keep = obs_prev[-n:]
            out, value = RP.policy_targets(state.params, obs_keep, self.agent_cfg.activation)
            added = RP.add_to_replay(state.opt_state, k_replay, obs_keep, out, value, extras.task_id)
            state = state.replace(opt_state=jax.tree.map(lambda a, b: jnp.where(intervene, a, b), added, state.opt_state))
            fired = jnp.asarray(intervene, jnp.float32)
        # every env starts a fresh episode of the new task (CW forces done at the boundary)
        n_envs = self.agent_cfg.num_envs
        params = jax.tree.map(lambda x: jnp.broadcast_to(x, (n_envs,) + x.shape), self.env.task_params(task_id))
        raw_obs, env_state = jax.vmap(self.agent.log_env.reset)(jax.random.split(k_reset, n_envs), params)
        state = state.replace(env_params=params, env_state=env_state, obs=raw_obs.reshape(n_envs, -1).astype(jnp.float32))
        extras = extras.replace(key=key, task_id=jnp.asarray(task_id, jnp.int32))
        return state, extras, fired

    def _evaluate_fn(self, state, extras):
        """Mean return and score of every task, plus plasticity diagnostics."""
        cfg, rc = self.agent_cfg, self.run_cfg
        key, k_eval = jax.random.split(extras.key)
        env = self.env

        def episode(task_id, k):
            params = env.task_params(task_id)
            k_reset, k_run = jax.random.split(k)
            obs, env_state = env.reset(k_reset, params)

            def step(carry, k_step):
                obs, env_state, ret, done = carry
                k_act, k_env = jax.random.split(k_step)
                out, _ = networks.apply_mlp(state.params["actor"], self._norm_obs(state, obs.reshape(1, -1)), cfg.activation)
                out = out[0]
                if self.continuous:
                    noise = jnp.where(rc.eval_greedy, 0.0, 1.0) * jax.random.normal(k_act, out.shape)
                    action = jnp.clip(out + jnp.exp(state.params["log_std"]) * noise, self.agent.action_low.reshape(-1), self.agent.action_high.reshape(-1))
                    action = action.reshape(self.agent.action_shape)
                else:
                    action = jnp.where(rc.eval_greedy, jnp.argmax(out), jax.random.categorical(k_act, out))
                obs, env_state, reward, term, trunc, _ = env.step(k_env, env_state, action, params)
                ret = ret + jnp.where(done, 0.0, reward)
                return (obs, env_state, ret, done | term | trunc), None

            init = (obs, env_state, jnp.zeros((), jnp.float32), jnp.zeros((), bool))
            (_, _, ret, _), _ = jax.lax.scan(step, init, jax.random.split(k_run, rc.eval_max_steps))
            return ret

        tasks = jnp.arange(self.stream.n_tasks)
        keys = jax.random.split(k_eval, (self.stream.n_tasks, rc.eval_episodes))
        returns = jax.vmap(lambda t, ks: jax.vmap(lambda k: episode(t, k))(ks))(tasks, keys).mean(axis=1)
        span = jnp.asarray(np.where(self.high > self.low, self.high - self.low, 1.0), jnp.float32)
        scores = jnp.clip((returns - jnp.asarray(self.low, jnp.float32)) / span, 0.0, 1.0)
        obs = self._norm_obs(state, extras.obs_buffer.reshape(-1, self.obs_dim))
        diag = P.flatten_stats(P.mlp_activation_stats(state.params, obs, cfg.activation))
        weights = P.weight_stats(state.params, extras.init_params)
        for name, grad_norm in R.read_grad_norms(state.opt_state).items():
            weights.setdefault(name, {})["grad_norm"] = grad_norm
        diag.update(P.flatten_stats(weights))
        return returns, scores, diag, extras.replace(key=key)

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
        state, extras = self._init(keys)
        eval_steps, returns, scores, diags, log = [], [], [], [], []
        step, t0 = 0, time.time()
        total_chunks = sum(seg_chunks)
        done_chunks = 0
        for index, (seg, n_chunks) in enumerate(zip(segments, seg_chunks)):
            state, extras, fired = self._switch(state, extras, jnp.int32(seg.task), jnp.asarray(index > 0))
            if index > 0:
                log.append({"step": step, "event": f"switch->{seg.task}", "method": self.method.name,
                            "fired": np.asarray(fired).tolist()})
            for _ in range(n_chunks):
                state, extras, summary = self._chunk(state, extras)
                step += self.chunk_steps
                done_chunks += 1
                fired_n = np.asarray(summary["intervention_fired"])
                if np.any(fired_n > 0):
                    log.append({"step": step, "event": "periodic", "method": self.method.name,
                                "fired": fired_n.tolist(), "units": np.asarray(summary["intervention_units"]).tolist()})
                ret, score, diag, extras = self._evaluate(state, extras)
                eval_steps.append(step)
                returns.append(np.asarray(ret))
                scores.append(np.asarray(score))
                diags.append({k: np.asarray(v) for k, v in diag.items()})
                if progress:
                    print(f"[{done_chunks}/{total_chunks}] step {step} task {seg.task} "
                          f"mean score {np.mean(score):.3f} ({time.time() - t0:.0f}s)", flush=True)
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
    stream: TaskStream, agent_cfg: PPOConfig, run_cfg: RunConfig, runner: ContinualRunner | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """From-scratch single-task fine-tuning runs, one per task, with the budget
    of that task's first visit. Returns ``(ref_steps[E], ref_perf[seeds, E, T])``
    (column t is task t's own run; NaN after its budget). ``runner``: a
    fine-tuning runner of the same stream to reuse (no new compilation)."""
    if runner is None or runner.method.name != "finetune":
        runner = ContinualRunner(stream, agent_cfg, MethodConfig("finetune"), run_cfg)
    first_len: dict[int, int] = {}
    for seg in stream.segments:
        first_len.setdefault(seg.task, seg.steps)
    outs = {task: runner.run(segments=(Segment(task, steps),)) for task, steps in sorted(first_len.items())}
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
