"""Soft Actor-Critic (Haarnoja et al. 2018, "SAC Algorithms and Applications"); one jitted program.

    agent = SAC(config, env, env_params, task_set=None, eval_tasks=None, progress_callback=None)
    state = agent.init(key)                       # SACState pytree (replay buffer included)
    state, metrics = agent.update(state)          # collect, then gradient steps
    state, metrics = agent.run(state, n)          # lax.scan of update (+ evaluation every eval_every)
    act = agent.policy(greedy=True)               # ActFn over agent.policy_params(state)

One update collects ``steps_per_update`` steps in each of ``num_envs``
vmapped envs, adds them to the replay buffer (:mod:`.replay`), then takes
``gradient_steps`` SAC gradient steps in a ``lax.scan`` (skipped with
``lax.cond`` before ``learning_starts``; actions are uniform in the box until
then). Each gradient step updates the twin critics, then the actor against
the updated critics, then the temperature, then Polyak-averages the target
critics (:mod:`.sac_loss`). Bootstrapping stops only on ``terminated``; a
time limit still bootstraps from ``info["final_observation"]``.
With ``reset_every = U > 0`` the learner (networks, targets, temperature,
optimizers) is re-initialised after every U-th update, the buffer kept
(primacy-bias resets, Nikishin et al. 2022).

Tasks: ``env_params`` is one task or a per-env batch ``[num_envs]``; with
``task_set`` (a batched params pytree ``[K]``) every env draws a uniformly
random task from it at each episode reset (Meta-World's multi-task rule,
through :class:`envs.wrappers.TaskResetWrapper`). A task set laid out in G
equal class blocks (a ``task_id`` field, as ``envs.manipulation.benchmarks``
builds MT10) with ``num_envs`` a multiple of G is drawn per class instead:
env block g always draws from class g, as Meta-World's MT baselines give each
class its own envs; a mixed-class env then steps one class's code per block
(``envs.grouped_switch``) instead of every class's.

Evaluation: :meth:`evaluate` runs ``eval_episodes`` greedy episodes
(``tanh(mean)``) on each of ``eval_tasks`` (default: ``task_set``, else the
env params) and reports ``eval_return`` and ``eval_success`` (``info["success"]``
at any step, :mod:`.sac_eval`). It uses a key folded from the state's key, so
evaluating changes nothing of training. :meth:`evaluate_if_due` does it every
``eval_every`` updates inside ``jit``; give it an update count that is not
vmapped (as :func:`metarl.jobs.train.make_chunk` does), or under ``vmap`` over
seeds its ``lax.cond`` becomes a select that evaluates at every update.
The same holds for the ``learning_starts`` cond, which then costs gradient
steps (discarded) before learning starts.

Everything is pure: ``jax.vmap(agent.init)`` and ``jax.vmap(agent.update)``
run seeds in parallel, and the same key gives the same run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from envs.wrappers import LogWrapper, TaskResetWrapper
from metarl.agents import replay
from metarl.agents.colored_noise import colored_noise
from metarl.agents.env_spec import EnvSpec, batched_params, env_name, per_env_params
from metarl.agents.policy import ActFn
from metarl.agents.ppo_policy import flat_obs
from metarl.agents.pytrees import strongly_typed
from metarl.agents.sac_config import SACConfig
from metarl.agents.progress import scan_updates
from metarl.agents.rollout import last_episode_stats
from metarl.agents.sac_eval import evaluate_on_tasks, task_count
from metarl.agents.sac_loss import actor_loss, alpha_loss, critic_loss, polyak, soft_target
from metarl.agents.sac_networks import (actor_mean_log_std, critic_values, init_actor, init_critics, sample_action,
                                        to_env_action)

__all__ = ["EVAL_METRIC_NAMES", "METRIC_NAMES", "MemoryProjection", "SAC", "SACConfig", "SACState", "policy_params"]

METRIC_NAMES = (
    "episode_return",
    "episode_length",
    "success",
    "episodes",
    "critic_loss",
    "actor_loss",
    "alpha_loss",
    "alpha",
    "entropy",
    "q_mean",
    "gradient_steps",
    "timesteps",
)
EVAL_METRIC_NAMES = ("eval_return", "eval_success")  # present when eval_every > 0; NaN between evaluations
LEARN_METRICS = ("critic_loss", "actor_loss", "alpha_loss", "entropy", "q_mean")  # NaN before learning starts
_EVAL_STREAM = 0x5AC_E7A1  # folded into the state's key for evaluation episodes
_MEMORY_STREAM = 0xA6E_3  # folded into a gradient step's key for the episodic-memory batch
_AFTER_LEARN_STREAM = 0x5EC_1C1E  # folded into an update's learning key for the after-learn hook
_RESERVOIR_STREAM = 0x2E5E_2B0  # folded into an update's collection key for reservoir insertion
_RESET_STREAM = 0x2E5E7  # folded into an update's learning key for the periodic reset's fresh draw
_NOISE_STREAM = 0xC010_2ED  # folded into every key fresh_noise gets (run key, env step's key, continual switch's key)


@dataclasses.dataclass(frozen=True)
class MemoryProjection:
    """An episodic memory in ``opt_state["memory"]`` (a replay buffer of ``capacity`` transitions that a caller
    fills) and a projection ``project(grads, reference_grads) -> grads`` applied, per network, against the
    gradient on ``batch_size`` memory transitions (A-GEM: :func:`metarl.continual.agem.project`)."""

    capacity: int
    batch_size: int
    project: Callable[[Any, Any], Any]


class AfterLearn(Protocol):
    """A hook run after each update's gradient steps (ReDo, continual backprop): its state lives in
    ``opt_state["after_learn"]`` (``init(params)``); ``apply(learner, batch, key, update_step)`` gets the learner
    ``(params, target_critic, log_alpha, opt_state)`` and a batch drawn from the buffer, and returns the new learner
    and how many units it rewrote (logged as ``units_recycled``)."""

    def init(self, params: Any) -> Any: ...

    def apply(self, learner: tuple, batch: dict, key: jax.Array, update_step: jax.Array) -> tuple[tuple, jax.Array]: ...


@struct.dataclass
class SACState:
    """Everything that changes during training (a pytree; vmap over seeds, checkpoint as a whole)."""

    params: Any  # {"actor": MLP, "critic": twin MLPs stacked on a leading axis of 2}
    target_critic: Any  # Polyak-averaged copy of params["critic"]
    log_alpha: jax.Array  # float32 scalar, log temperature
    opt_state: Any  # {"actor", "critic", "alpha"} optax states
    buffer: replay.ReplayBuffer  # transitions {obs, action in [-1,1], reward, next_obs, terminated}
    env_state: Any  # LogState batch over envs (around TaskState with a task set)
    obs: jax.Array  # [num_envs, obs_dim] float32
    env_params: Any  # per-env tasks [num_envs] (with a task set: the tasks drawn at init)
    key: jax.Array
    update_step: jax.Array  # int32, updates done so far
    last_episode: jax.Array  # [3] latest (return, length, success) means; NaN before any episode ends
    # colored acting noise (config.noise_exponent > 0; else None): [num_envs, action_dim, horizon] sequences and
    # [num_envs] int32, the step each env reads next
    noise: Any = None
    noise_step: Any = None


def policy_params(state: Any) -> dict[str, Any]:
    """``{"actor": params}`` of a SAC state: all the policy needs (checkpoints, evaluators)."""
    return {"actor": state.params["actor"]}


def _leading(tasks: Any) -> set[int]:
    return {np.shape(x)[0] if np.ndim(x) else -1 for x in jax.tree.leaves(tasks)}


def check_task_set(env: Any, tasks: Any, what: str) -> int:
    """``tasks`` is a batch ``[K]`` of ``env``'s params; returns K."""
    default = env.default_params
    if jax.tree.structure(tasks) != jax.tree.structure(default):
        raise ValueError(f"{what} is not a batch of {type(default).__name__} for {env_name(env)}")
    extra = {np.ndim(t) - np.ndim(d) for t, d in zip(jax.tree.leaves(tasks), jax.tree.leaves(default))}
    leading = _leading(tasks)
    if extra != {1} or len(leading) != 1 or min(leading) < 1:
        raise ValueError(f"{what} must be a batch of tasks with one leading axis, got leading sizes {sorted(leading)}")
    space = getattr(env, "task_space", None)
    if space is not None and space.fields:
        inside = np.asarray(jax.vmap(space.contains)(tasks))
        if not inside.all():
            first = int(np.argmin(inside))
            try:
                space.check(jax.tree.map(lambda x: x[first], tasks))
            except ValueError as error:
                raise ValueError(f"{what}: task {first} does not fit {env_name(env)}: {error}") from None
            raise ValueError(f"{what}: task {first} is outside {env_name(env)}'s task space")
    return leading.pop()


def class_blocks(task_set: Any, num_envs: int) -> int:
    """G when ``task_set.task_id`` is G equal blocks of one class each and ``num_envs`` is a multiple of G; else 1."""
    ids = getattr(task_set, "task_id", None)
    if ids is None or isinstance(ids, jax.core.Tracer):
        return 1
    ids = np.asarray(ids)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    groups = len(starts)
    if groups < 2 or len(set(ids.tolist())) != groups or len(ids) % groups or num_envs % groups:
        return 1
    return groups if np.all(ids.reshape(groups, -1) == ids[starts][:, None]) else 1


def _adam(lr: float, max_grad_norm: float) -> optax.GradientTransformation:
    adam = optax.adam(lr)
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), adam) if max_grad_norm > 0 else adam


class SAC:
    """See module docstring. ``progress_callback(updates_done)`` (host) is called about 20 times per
    :meth:`run` when given; leave it ``None`` under vmap'd meta-training. ``actor_grad_transform`` is chained
    before the actor's clipping and Adam (e.g. a penalty's gradient), ``actor_update_transform`` after Adam (e.g.
    PackNet's update mask). ``memory`` adds an episodic memory and a per-network gradient projection (A-GEM);
    ``after_learn`` rewrites the networks after each update's gradient steps (:class:`AfterLearn`). ``reservoir``:
    the buffer keeps a uniform sample of every transition collected (:func:`metarl.agents.replay.add_reservoir`)
    instead of the newest ones (replay across a task stream)."""

    def __init__(
        self,
        config: SACConfig,
        env: Any,
        env_params: Any,
        task_set: Any = None,
        eval_tasks: Any = None,
        progress_callback: Callable[[int], None] | None = None,
        actor_update_transform: optax.GradientTransformation | None = None,
        actor_grad_transform: optax.GradientTransformation | None = None,
        memory: MemoryProjection | None = None,
        after_learn: AfterLearn | None = None,
        reservoir: bool = False,
    ):
        config.validate(env, env_params)
        if task_set is not None:
            check_task_set(env, task_set, "task_set")
            if not all(hasattr(env, a) for a in ("step_env", "reset_env", "is_truncated")):
                raise ValueError(f"a task_set needs a gymnax-style env with step_env; {env_name(env)} has none")
        self.config, self.env, self.task_set, self.memory = config, env, task_set, memory
        self.after_learn, self.reservoir = after_learn, reservoir
        self.task_groups = class_blocks(task_set, config.num_envs) if task_set is not None else 1
        self.progress_callback = progress_callback
        self.spec = EnvSpec.of(env)
        self.obs_dim, self.action_dim = self.spec.obs_dim, self.spec.action_dim
        n = config.num_envs
        self.env_params = per_env_params(env, env_params, n)
        if eval_tasks is None:
            eval_tasks = task_set if task_set is not None else (
                env_params if batched_params(env, env_params, n) else jax.tree.map(lambda x: jnp.asarray(x)[None],
                                                                                  env_params))
        check_task_set(env, eval_tasks, "eval_tasks")
        self.eval_tasks = eval_tasks
        self.log_env = LogWrapper(TaskResetWrapper(env) if task_set is not None else env)
        self.target_entropy = float(-self.action_dim if config.target_entropy is None else config.target_entropy)
        self.noise_horizon = config.resolved_noise_horizon(self.env_params)
        actor_tx = _adam(config.resolved("actor"), config.max_grad_norm)
        if actor_grad_transform is not None:
            actor_tx = optax.chain(actor_grad_transform, actor_tx)
        self.tx = {
            # a continual method may add to the actor's gradients (L2, EWC) or post-process its updates (PackNet)
            "actor": actor_tx if actor_update_transform is None else optax.chain(actor_tx, actor_update_transform),
            "critic": _adam(config.resolved("critic"), config.max_grad_norm),
            "alpha": optax.adam(config.resolved("alpha")),
        }

    # --- policy --------------------------------------------------------------
    def policy(self, greedy: bool = False) -> ActFn:
        """``act(policy_params(state), obs, key) -> env actions``: a tanh-Gaussian sample, or ``tanh(mean)``."""
        spec, activation, heads = self.spec, self.config.activation, self.config.task_heads

        def act(pp: dict, obs: jax.Array, key: jax.Array) -> jax.Array:
            mean, log_std = actor_mean_log_std(pp["actor"], flat_obs(obs, spec.obs_dim), activation, heads)
            if greedy:
                return to_env_action(spec, jnp.tanh(mean))
            return to_env_action(spec, sample_action(mean, log_std, jax.random.normal(key, mean.shape))[0])

        return act

    policy_params = staticmethod(policy_params)

    # --- init ----------------------------------------------------------------
    def draw_tasks(self, key: jax.Array) -> Any:
        """One task per env: uniform over the task set, or over env block g's class (see module docstring)."""
        n, groups = self.config.num_envs, self.task_groups
        per_group = task_count(self.task_set) // groups
        index = jnp.asarray(np.arange(n) // (n // groups) * per_group) + jax.random.randint(key, (n,), 0, per_group)
        return jax.tree.map(lambda x: x[index], self.task_set)

    def init_params(self, k_actor: jax.Array, k_critic: jax.Array) -> dict[str, Any]:
        """Freshly initialised ``{"actor", "critic"}`` (what :meth:`init` starts from; resets draw new ones)."""
        cfg = self.config
        return {
            "actor": init_actor(k_actor, self.obs_dim, self.action_dim, cfg.hidden_sizes, cfg.layer_norm,
                                cfg.task_heads),
            "critic": init_critics(k_critic, self.obs_dim, self.action_dim, cfg.hidden_sizes, cfg.layer_norm,
                                   cfg.task_heads),
        }

    def init(self, key: jax.Array) -> SACState:
        cfg = self.config
        k_actor, k_critic, k_env, k_task, k_run = jax.random.split(key, 5)
        params = self.init_params(k_actor, k_critic)
        log_alpha = jnp.log(jnp.asarray(cfg.init_alpha, jnp.float32))
        opt_state = {
            "actor": self.tx["actor"].init(params["actor"]),
            "critic": self.tx["critic"].init(params["critic"]),
            "alpha": self.tx["alpha"].init(log_alpha),
        }
        obs_zero, action_zero = jnp.zeros((self.obs_dim,), jnp.float32), jnp.zeros((self.action_dim,), jnp.float32)
        example = {"obs": obs_zero, "action": action_zero, "reward": jnp.zeros((), jnp.float32), "next_obs": obs_zero,
                   "terminated": jnp.zeros((), jnp.float32)}
        if self.memory is not None:
            opt_state["memory"] = replay.init(example, self.memory.capacity)
        if self.after_learn is not None:
            opt_state["after_learn"] = self.after_learn.init(params)
        env_params = self.env_params if self.task_set is None else self.draw_tasks(k_task)
        obs, env_state = jax.vmap(self.log_env.reset)(jax.random.split(k_env, cfg.num_envs), env_params)
        noise = noise_step = None
        if cfg.colored_noise:
            noise = self.fresh_noise(k_run)
            noise_step = jnp.zeros((cfg.num_envs,), jnp.int32)
        return strongly_typed(SACState(
            params=params,
            target_critic=params["critic"],
            log_alpha=log_alpha,
            opt_state=opt_state,
            buffer=replay.init(example, cfg.buffer_size),
            env_state=env_state,
            obs=flat_obs(obs, self.obs_dim),
            env_params=env_params,
            key=k_run,
            update_step=jnp.zeros((), jnp.int32),
            last_episode=jnp.full((3,), jnp.nan, jnp.float32),
            noise=noise,
            noise_step=noise_step,
        ))

    def fresh_noise(self, key: jax.Array) -> jax.Array:
        """New acting-noise sequences for every env: ``[num_envs, action_dim, noise_horizon]``.

        ``key`` may be one the caller also uses for other draws: the noise stream is folded in here.
        """
        return colored_noise(jax.random.fold_in(key, _NOISE_STREAM), self.config.noise_exponent,
                             (self.config.num_envs, self.action_dim), self.noise_horizon)

    # --- collect -------------------------------------------------------------
    def collect(self, state: SACState, key: jax.Array, explore: jax.Array) -> tuple[dict, Any, jax.Array, tuple]:
        """``(trajectory [steps_per_update, num_envs, ...], env_state, obs, (noise, noise_step))`` under the
        current actor.

        ``explore`` (a bool, may be traced): uniform actions in [-1, 1] instead of the policy's samples.
        ``next_obs`` is the observation the step reached, before any auto-reset. With colored noise each env
        reads its sequence at its own step and draws a new one when its episode ends or the sequence runs out.
        """
        cfg, n = self.config, self.config.num_envs
        step_env = jax.vmap(self.log_env.step)
        actor = state.params["actor"]

        def body(carry, step_key):
            env_state, obs, noise, noise_step = carry
            k_noise, k_uniform, k_env, k_task = jax.random.split(step_key, 4)
            mean, log_std = actor_mean_log_std(actor, obs, cfg.activation, cfg.task_heads)
            if cfg.colored_noise:
                eps = jnp.take_along_axis(noise, noise_step[:, None, None], axis=-1)[..., 0]  # [n, action_dim]
            else:
                eps = jax.random.normal(k_noise, mean.shape)
            sampled, _ = sample_action(mean, log_std, eps)
            uniform = jax.random.uniform(k_uniform, mean.shape, jnp.float32, -1.0, 1.0)
            action = jnp.where(explore, uniform, sampled)
            next_params = state.env_params if self.task_set is None else self.draw_tasks(k_task)
            next_obs, env_state, reward, terminated, _, info = step_env(
                jax.random.split(k_env, n), env_state, to_env_action(self.spec, action), next_params)
            record = {
                "obs": obs,
                "action": action,
                "reward": reward.astype(jnp.float32),
                "next_obs": flat_obs(info["final_observation"], self.obs_dim),  # before any auto-reset
                "terminated": terminated.astype(jnp.float32),
                "episode_end": info["returned_episode"],
                "episode_return": info["returned_episode_return"],
                "episode_length": info["returned_episode_length"].astype(jnp.float32),
                "episode_success": info["returned_episode_success"].astype(jnp.float32),
            }
            if cfg.colored_noise:
                renew = info["returned_episode"].astype(bool) | (noise_step + 1 >= self.noise_horizon)
                fresh = self.fresh_noise(step_key)
                noise = jnp.where(renew[:, None, None], fresh, noise)
                noise_step = jnp.where(renew, 0, noise_step + 1)
            return (env_state, flat_obs(next_obs, self.obs_dim), noise, noise_step), record

        keys = jax.random.split(key, cfg.steps_per_update)
        carry = (state.env_state, state.obs, state.noise, state.noise_step)
        (env_state, obs, noise, noise_step), traj = jax.lax.scan(body, carry, keys)
        return traj, env_state, obs, (noise, noise_step)

    # --- learn ---------------------------------------------------------------
    def _critic_grads(self, params: Any, target: Any, alpha: jax.Array, batch: dict, key: jax.Array):
        """``((critic loss, q), gradient)`` of the twin critics on ``batch`` (soft targets from ``target``)."""
        cfg, heads = self.config, self.config.task_heads
        next_mean, next_log_std = actor_mean_log_std(params["actor"], batch["next_obs"], cfg.activation, heads)
        next_action, next_logp = sample_action(next_mean, next_log_std, jax.random.normal(key, next_mean.shape))
        next_q = critic_values(target, batch["next_obs"], next_action, cfg.activation, heads)
        y = soft_target(batch["reward"], batch["terminated"], next_q, next_logp, alpha, cfg.gamma, cfg.reward_scale)
        return jax.value_and_grad(critic_loss, has_aux=True)(
            params["critic"], batch["obs"], batch["action"], y, cfg.activation, heads)

    def _actor_grads(self, actor: Any, critic: Any, alpha: jax.Array, obs: jax.Array, key: jax.Array):
        """``((actor loss, log π), gradient)`` of the actor at ``obs`` against ``critic``."""
        noise = jax.random.normal(key, (obs.shape[0], self.action_dim))
        return jax.value_and_grad(actor_loss, has_aux=True)(actor, critic, obs, noise, alpha, self.config.activation,
                                                           self.config.task_heads)

    def gradient_step(self, learner: tuple, batch: dict, key: jax.Array) -> tuple[tuple, dict]:
        """One SAC step on ``batch``: critics, actor (against the new critics), temperature, targets.

        ``learner`` is ``(params, target_critic, log_alpha, opt_state)``. With a :class:`MemoryProjection` each
        network's gradient is first projected against its gradient on a batch of the episodic memory.
        """
        cfg = self.config
        params, target, log_alpha, opt_state = learner
        k_next, k_actor = jax.random.split(key)
        k_mem_batch, k_mem_next, k_mem_actor = jax.random.split(jax.random.fold_in(key, _MEMORY_STREAM), 3)
        alpha = jnp.exp(log_alpha)
        memory = self.memory
        if memory is not None:
            stored = opt_state["memory"]
            mem_batch = replay.sample(stored, k_mem_batch, memory.batch_size)

            def projected(grads, ref):  # an empty memory constrains nothing
                ref = jax.tree.map(lambda r: jnp.where(stored.size > 0, r, jnp.zeros_like(r)), ref)
                return memory.project(grads, ref)

        (c_loss, q), grads = self._critic_grads(params, target, alpha, batch, k_next)
        if memory is not None:
            grads = projected(grads, self._critic_grads(params, target, alpha, mem_batch, k_mem_next)[1])
        updates, critic_opt = self.tx["critic"].update(grads, opt_state["critic"], params["critic"])
        critic = optax.apply_updates(params["critic"], updates)

        (a_loss, logp), grads = self._actor_grads(params["actor"], critic, alpha, batch["obs"], k_actor)
        if memory is not None:
            grads = projected(grads, self._actor_grads(params["actor"], critic, alpha, mem_batch["obs"], k_mem_actor)[1])
        updates, actor_opt = self.tx["actor"].update(grads, opt_state["actor"], params["actor"])
        actor = optax.apply_updates(params["actor"], updates)

        t_loss, grad = jax.value_and_grad(alpha_loss)(log_alpha, logp, self.target_entropy)
        updates, alpha_opt = self.tx["alpha"].update(grad, opt_state["alpha"], log_alpha)
        log_alpha = optax.apply_updates(log_alpha, updates)

        learner = ({"actor": actor, "critic": critic}, polyak(target, critic, cfg.tau), log_alpha,
                   {**opt_state, "actor": actor_opt, "critic": critic_opt, "alpha": alpha_opt})
        metrics = {"critic_loss": c_loss, "actor_loss": a_loss, "alpha_loss": t_loss, "entropy": -jnp.mean(logp),
                   "q_mean": jnp.mean(q)}
        return learner, metrics

    def _learn(self, learner: tuple, buffer: replay.ReplayBuffer, key: jax.Array) -> tuple[tuple, dict]:
        cfg = self.config

        def body(learner, step_key):
            k_sample, k_step = jax.random.split(step_key)
            return self.gradient_step(learner, replay.sample(buffer, k_sample, cfg.batch_size), k_step)

        learner, metrics = jax.lax.scan(body, learner, jax.random.split(key, cfg.gradient_steps))
        return learner, jax.tree.map(jnp.mean, metrics)

    def _skip(self, learner: tuple, buffer: replay.ReplayBuffer, key: jax.Array) -> tuple[tuple, dict]:
        return learner, {name: jnp.full((), jnp.nan, jnp.float32) for name in LEARN_METRICS}

    def _reset_if(self, due: jax.Array, learner: tuple, key: jax.Array) -> tuple:
        """The learner re-initialised where ``due`` (a select, not a cond: under a vmap over seeds ``due`` differs).

        Fresh networks, target critics equal to the fresh critics, the initial temperature and fresh optimizer
        states; other ``opt_state`` entries (memory, after-learn bookkeeping) are kept."""
        params, _, _, opt_state = learner
        fresh = self.init_params(*jax.random.split(key))
        log_alpha = jnp.log(jnp.asarray(self.config.init_alpha, jnp.float32))
        fresh_opt = {**opt_state, "actor": self.tx["actor"].init(fresh["actor"]),
                     "critic": self.tx["critic"].init(fresh["critic"]), "alpha": self.tx["alpha"].init(log_alpha)}
        restart = (fresh, fresh["critic"], log_alpha, fresh_opt)
        return jax.tree.map(lambda new, old: jnp.where(due, new, old), restart, learner)

    # --- update --------------------------------------------------------------
    def update(self, state: SACState) -> tuple[SACState, dict]:
        """Collect ``num_envs x steps_per_update`` transitions, then ``gradient_steps`` SAC steps."""
        cfg = self.config
        k_next, k_collect, k_learn = jax.random.split(state.key, 3)
        explore = state.update_step * cfg.steps_per_iteration < cfg.learning_starts
        traj, env_state, obs, (noise, noise_step) = self.collect(state, k_collect, explore)
        flat = lambda x: x.reshape((cfg.steps_per_iteration,) + x.shape[2:])  # noqa: E731
        new = {k: flat(traj[k]) for k in ("obs", "action", "reward", "next_obs", "terminated")}
        if self.reservoir:
            buffer = replay.add_reservoir(state.buffer, new, jax.random.fold_in(k_collect, _RESERVOIR_STREAM))
        else:
            buffer = replay.add(state.buffer, new)

        learning = state.update_step >= cfg.learning_starts_update
        learner = (state.params, state.target_critic, state.log_alpha, state.opt_state)
        learner, losses = jax.lax.cond(learning, self._learn, self._skip, learner, buffer, k_learn)
        hook = {}
        if self.after_learn is not None:
            k_batch, k_hook = jax.random.split(jax.random.fold_in(k_learn, _AFTER_LEARN_STREAM))
            batch = replay.sample(buffer, k_batch, cfg.batch_size)
            learner, units = jax.lax.cond(
                learning, lambda lr: self.after_learn.apply(lr, batch, k_hook, state.update_step),
                lambda lr: (lr, jnp.zeros((), jnp.float32)), learner)
            hook = {"units_recycled": units}
        if cfg.reset_every > 0:
            due = learning & ((state.update_step + 1) % cfg.reset_every == 0)
            learner = self._reset_if(due, learner, jax.random.fold_in(k_learn, _RESET_STREAM))
        params, target, log_alpha, opt_state = learner

        last_episode = last_episode_stats(traj, state.last_episode)

        update_step = state.update_step + 1
        metrics = {
            "episode_return": last_episode[0],
            "episode_length": last_episode[1],
            "success": last_episode[2],
            "episodes": jnp.sum(traj["episode_end"]).astype(jnp.int32),
            **losses,
            **hook,
            "alpha": jnp.exp(log_alpha),
            "gradient_steps": jnp.where(learning, cfg.gradient_steps, 0).astype(jnp.int32),
            "timesteps": update_step * cfg.steps_per_iteration,
        }
        new_state = state.replace(
            params=params,
            target_critic=target,
            log_alpha=log_alpha,
            opt_state=opt_state,
            buffer=buffer,
            env_state=env_state,
            obs=obs,
            key=k_next,
            update_step=update_step,
            last_episode=last_episode,
            noise=noise,
            noise_step=noise_step,
        )
        return new_state, metrics

    # --- evaluation ----------------------------------------------------------
    def evaluate(self, state: SACState) -> dict[str, jax.Array]:
        """Greedy ``eval_episodes`` per task of ``eval_tasks``: ``{"eval_return", "eval_success"}``."""
        key = jax.random.fold_in(state.key, _EVAL_STREAM)
        return evaluate_on_tasks(self.policy(greedy=True), policy_params(state), self.env, self.eval_tasks, key,
                                 self.config.eval_episodes)

    def evaluate_if_due(self, state: SACState, updates_done: jax.Array) -> dict[str, jax.Array]:
        """:meth:`evaluate` when ``updates_done`` is a multiple of ``eval_every`` (else NaNs); ``{}`` if disabled."""
        every = self.config.eval_every
        if every <= 0:
            return {}
        nan = {name: jnp.full((), jnp.nan, jnp.float32) for name in EVAL_METRIC_NAMES}
        due = jnp.asarray(updates_done) % every == 0
        return jax.lax.cond(due, lambda: self.evaluate(state), lambda: nan)

    def update_and_evaluate(self, state: SACState, updates_done: jax.Array) -> tuple[SACState, dict]:
        """:meth:`update`, then :meth:`evaluate_if_due` with ``updates_done`` (the count after this update)."""
        state, metrics = self.update(state)
        return state, {**metrics, **self.evaluate_if_due(state, updates_done)}

    # --- run -----------------------------------------------------------------
    def run(self, state: SACState, n_updates: int) -> tuple[SACState, dict]:
        """``n_updates`` updates (with their due evaluations) in one ``lax.scan``; metrics lead with ``n_updates``."""

        return scan_updates(lambda s: self.update_and_evaluate(s, s.update_step + 1), state, n_updates,
                            self.progress_callback)
