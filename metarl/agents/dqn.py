"""DQN (Mnih et al. 2015) with the double-Q target (van Hasselt et al. 2016); pure functions, one jitted program.

Pieces for a caller that runs its own env loop and replay buffer inside its
own ``lax.scan`` (a reset-free runner)::

    learner = init_learner(key, obs_dim, num_actions, cfg)   # DQNLearner pytree
    q = q_values(learner.params, obs)                        # [..., num_actions]
    eps = epsilon_at(cfg, env_step)                          # linear schedule
    action = act(learner.params, obs, key, eps)              # epsilon-greedy, int32 [...]
    learner, metrics = learn(learner, batch, cfg)            # one gradient step (+ target update when due)

``batch`` is ``{obs [B, obs_dim], action [B], reward [B], discount [B],
next_obs [B, obs_dim]}`` where ``discount`` is already ``gamma * (1 -
terminated)`` (:func:`bootstrap_discount`): the caller decides what ends the
bootstrap. A time limit is not an end: a truncated transition keeps its
discount and bootstraps from the observation the step reached (gymnax's
``info["final_observation"]``), as SAC does.

Ordinary episodic training on a gymnax-style env::

    train = make_train(env, env_params, cfg)   # validates cfg against the env
    learner, metrics = jax.jit(train)(key)      # metrics [cfg.num_logs] per name

``train`` is one ``lax.scan`` (no host round-trips): each iteration steps the
``num_envs`` vmapped envs ``train_every`` times under the epsilon-greedy
policy, adds the transitions to a device replay buffer (:mod:`.replay`) and,
once ``learning_starts`` env steps are in, takes ``gradient_steps`` gradient
steps. The ``learning_starts`` ``lax.cond`` and the epsilon schedule read the
scan's iteration index, which ``jax.vmap(train)`` over seeds leaves unbatched,
so the cond stays a real branch under vmap. Everything is pure: the same key
gives the same run.

The Q network is an MLP of ReLU layers (plain dict pytrees, :mod:`.sac_networks`;
``hidden_sizes=()`` makes Q linear in the observation), so :func:`q_values`
needs nothing but the params.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
import rlax
from flax import struct

from envs.wrappers import LogWrapper
from metarl.agents import replay
from metarl.agents.dqn_config import DQNConfig
from metarl.agents.env_spec import EnvSpec, batched_params, per_env_params
from metarl.agents.policy import ActFn
from metarl.agents.ppo_policy import flat_obs
from metarl.agents.pytrees import strongly_typed
from metarl.agents.sac_eval import evaluate_on_tasks
from metarl.agents.sac_networks import apply_mlp, init_mlp

__all__ = [
    "DQNConfig", "DQNLearner", "EVAL_METRIC_NAMES", "LEARN_METRICS", "METRIC_NAMES", "act", "bootstrap_discount",
    "collect_step", "epsilon_at", "evaluate", "init_learner", "init_q_network", "learn", "make_train", "optimizer",
    "policy", "q_values", "td_errors", "update_target",
]

LEARN_METRICS = ("loss", "q_mean", "td_abs", "grad_norm")  # from learn(); NaN in rows without a gradient step
METRIC_NAMES = ("episode_return", "episode_length", "episodes", *LEARN_METRICS, "epsilon", "gradient_steps",
                "timesteps")
EVAL_METRIC_NAMES = ("eval_return", "eval_success")  # also present when eval_episodes > 0
_EVAL_STREAM = 0xD0_E7A1  # folded into a row's key for its evaluation episodes


@struct.dataclass
class DQNLearner:
    """Everything ``learn`` changes (a pytree: vmap it over seeds, carry it in a scan, checkpoint it)."""

    params: Any  # Q-network MLP {"hidden_i", "norm_i"?, "head": {"kernel", "bias"}}
    target_params: Any  # the target network, same structure
    opt_state: Any  # optax state of :func:`optimizer`
    gradient_steps: jax.Array  # int32, gradient steps taken so far (the target schedule counts these)


# --- network and policy -----------------------------------------------------------------------------
def init_q_network(key: jax.Array, obs_dim: int, num_actions: int, hidden_sizes: Sequence[int],
                   layer_norm: bool = False) -> dict:
    """Orthogonal ReLU MLP ``obs_dim -> num_actions`` (head gain 1: Q starts near zero but not flat)."""
    return init_mlp(key, obs_dim, tuple(hidden_sizes), num_actions, 1.0, layer_norm)


def q_values(params: dict, obs: jax.Array) -> jax.Array:
    """``[..., num_actions]`` Q-values of flat observations ``[..., obs_dim]``."""
    return apply_mlp(params, jnp.asarray(obs, jnp.float32), "relu")


def epsilon_at(cfg: DQNConfig, env_step: jax.Array | int) -> jax.Array:
    """Exploration rate after ``env_step`` env steps: linear from ``epsilon_start`` to ``epsilon_end`` over
    ``epsilon_decay_steps``, then constant (float32 scalar; ``env_step`` may be traced)."""
    if cfg.epsilon_decay_steps == 0:
        return jnp.asarray(cfg.epsilon_end, jnp.float32)
    frac = jnp.clip(jnp.asarray(env_step, jnp.float32) / cfg.epsilon_decay_steps, 0.0, 1.0)
    return jnp.asarray(cfg.epsilon_start + frac * (cfg.epsilon_end - cfg.epsilon_start), jnp.float32)


def act(params: dict, obs: jax.Array, key: jax.Array, epsilon: jax.Array | float) -> jax.Array:
    """Epsilon-greedy int32 actions for ``obs [..., obs_dim]`` (one observation or a batch: shape ``[...]``).

    With probability ``epsilon`` (per observation) a uniform action, else the arg-max of Q (lowest index on
    ties). ``epsilon = 0`` is greedy and ``1`` uniform exactly (the draw is in [0, 1)).
    """
    q = q_values(params, obs)
    greedy = jnp.argmax(q, axis=-1)
    k_explore, k_action = jax.random.split(key)
    uniform = jax.random.randint(k_action, greedy.shape, 0, q.shape[-1])
    explore = jax.random.uniform(k_explore, greedy.shape) < epsilon
    return jnp.where(explore, uniform, greedy).astype(jnp.int32)


def policy(epsilon: float = 0.0) -> ActFn:
    """An :data:`~metarl.agents.policy.ActFn` ``act(params, obs, key)`` at a fixed ``epsilon`` (evaluators)."""

    def act_fn(params: dict, obs: jax.Array, key: jax.Array) -> jax.Array:
        return act(params, obs.reshape(obs.shape[0], -1), key, epsilon)

    return act_fn


# --- learning ---------------------------------------------------------------------------------------
def bootstrap_discount(gamma: float, terminated: jax.Array) -> jax.Array:
    """``gamma * (1 - terminated)``: only a true terminal state stops the bootstrap (a time limit does not)."""
    return gamma * (1.0 - jnp.asarray(terminated, jnp.float32))


def optimizer(cfg: DQNConfig) -> optax.GradientTransformation:
    """Adam at ``cfg.lr`` after global-norm clipping at ``max_grad_norm`` (none when it is 0)."""
    adam = optax.adam(cfg.lr)
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), adam) if cfg.max_grad_norm > 0 else adam


def init_learner(key: jax.Array, obs_dim: int, num_actions: int, cfg: DQNConfig) -> DQNLearner:
    """A fresh Q network, its target (an exact copy), Adam's state and a zero gradient-step count."""
    params = init_q_network(key, obs_dim, num_actions, cfg.hidden_sizes, cfg.layer_norm)
    return DQNLearner(params=params, target_params=params, opt_state=optimizer(cfg).init(params),
                      gradient_steps=jnp.zeros((), jnp.int32))


def td_errors(params: dict, target_params: dict, batch: dict, double_dqn: bool) -> tuple[jax.Array, jax.Array]:
    """``(TD errors [B], Q(obs, action) [B])``; targets ``reward + discount * Q_target(next_obs, a*)``.

    ``a*`` is the target net's own arg-max (DQN) or the online net's (double DQN). rlax stops the gradient
    through the target.
    """
    obs, next_obs = jnp.asarray(batch["obs"], jnp.float32), jnp.asarray(batch["next_obs"], jnp.float32)
    action = jnp.asarray(batch["action"], jnp.int32)
    reward, discount = jnp.asarray(batch["reward"], jnp.float32), jnp.asarray(batch["discount"], jnp.float32)
    q_next_target = q_values(target_params, next_obs)
    if double_dqn:
        # one online pass over obs and next_obs together (one matmul per layer instead of two)
        q_both = q_values(params, jnp.concatenate([obs, next_obs], axis=0))
        q_tm1, q_next_online = jnp.split(q_both, 2, axis=0)
        td = jax.vmap(rlax.double_q_learning)(q_tm1, action, reward, discount, q_next_target, q_next_online)
    else:
        q_tm1 = q_values(params, obs)
        td = jax.vmap(rlax.q_learning)(q_tm1, action, reward, discount, q_next_target)
    return td, jnp.take_along_axis(q_tm1, action[:, None], axis=-1)[:, 0]


def _loss(params: dict, target_params: dict, batch: dict, cfg: DQNConfig) -> tuple[jax.Array, tuple]:
    td, q_taken = td_errors(params, target_params, batch, cfg.double_dqn)
    return jnp.mean(rlax.huber_loss(td, cfg.huber_delta)), (td, q_taken)


def update_target(params: dict, target_params: dict, gradient_steps: jax.Array, cfg: DQNConfig) -> dict:
    """The target after ``gradient_steps`` steps: ``tau * params + (1 - tau) * target`` when the count is a
    multiple of ``target_update_every``, else unchanged (``tau = 1``: an exact copy)."""
    due = gradient_steps % cfg.target_update_every == 0
    moved = params if cfg.tau == 1.0 else optax.incremental_update(params, target_params, cfg.tau)
    return jax.tree.map(lambda new, old: jnp.where(due, new, old), moved, target_params)


def learn(learner: DQNLearner, batch: dict, cfg: DQNConfig) -> tuple[DQNLearner, dict]:
    """One gradient step on ``batch`` (see the module docstring), then the target update when it is due.

    Metrics (of the batch, before the step): ``loss`` (mean Huber of the TD errors), ``q_mean`` (mean
    Q(obs, action)), ``td_abs`` (mean |TD error|), ``grad_norm`` (before clipping).
    """
    (loss, (td, q_taken)), grads = jax.value_and_grad(_loss, has_aux=True)(
        learner.params, learner.target_params, batch, cfg)
    updates, opt_state = optimizer(cfg).update(grads, learner.opt_state, learner.params)
    params = optax.apply_updates(learner.params, updates)
    steps = learner.gradient_steps + 1
    new = DQNLearner(params=params, target_params=update_target(params, learner.target_params, steps, cfg),
                     opt_state=opt_state, gradient_steps=steps)
    metrics = {"loss": loss, "q_mean": jnp.mean(q_taken), "td_abs": jnp.mean(jnp.abs(td)),
               "grad_norm": optax.global_norm(grads)}
    return new, metrics


# --- evaluation -------------------------------------------------------------------------------------
def evaluate(params: dict, env: Any, tasks: Any, key: jax.Array, episodes_per_task: int,
             epsilon: float = 0.0) -> dict[str, jax.Array]:
    """``{"eval_return", "eval_success"}``: means over ``episodes_per_task`` episodes on each task of the
    batched params ``tasks [K]`` at ``epsilon`` (greedy by default)."""
    return evaluate_on_tasks(policy(epsilon), params, env, tasks, key, episodes_per_task)


# --- episodic training ------------------------------------------------------------------------------
@struct.dataclass
class _TrainState:
    learner: DQNLearner
    buffer: replay.ReplayBuffer  # {obs, action, reward, discount, next_obs}
    env_state: Any  # LogState batch [num_envs]
    obs: jax.Array  # [num_envs, obs_dim] float32
    key: jax.Array


def collect_step(log_env: LogWrapper, tasks: Any, cfg: DQNConfig, params: dict, env_state: Any, obs: jax.Array,
                 key: jax.Array, env_steps: jax.Array | int) -> tuple[tuple[Any, jax.Array], dict]:
    """One epsilon-greedy step of every env: ``((env_state, obs), transitions [num_envs])``.

    ``log_env`` is ``LogWrapper(env)`` with a batch of states ``env_state``, ``tasks`` one task per env,
    ``obs`` ``[num_envs, obs_dim]``, ``env_steps`` the env steps taken so far (sets epsilon). The record
    holds the replay transition (``discount = gamma * (1 - terminated)``, so a time limit still bootstraps,
    from ``next_obs``: the observation the step reached, before the auto-reset) and the episode statistics.
    """
    n, obs_dim = obs.shape
    k_act, k_env = jax.random.split(key)
    action = act(params, obs, k_act, epsilon_at(cfg, env_steps))
    next_obs, env_state, reward, terminated, _, info = jax.vmap(log_env.step)(
        jax.random.split(k_env, n), env_state, action, tasks)
    record = {
        "obs": obs,
        "action": action,
        "reward": reward.astype(jnp.float32),
        "discount": bootstrap_discount(cfg.gamma, terminated),
        "next_obs": flat_obs(info["final_observation"], obs_dim),
        "episode_end": info["returned_episode"].astype(jnp.float32),
        "episode_return": info["returned_episode_return"],
        "episode_length": info["returned_episode_length"].astype(jnp.float32),
    }
    return (env_state, flat_obs(next_obs, obs_dim)), record


def _nan_metrics(names: Sequence[str]) -> dict:
    return {name: jnp.full((), jnp.nan, jnp.float32) for name in names}


def make_train(env: Any, env_params: Any, cfg: DQNConfig):
    """``train(key) -> (learner, metrics)``: episodic DQN on ``env`` for ``cfg.num_logs * cfg.log_interval``
    env steps (see the module docstring). ``env_params`` is one task or one per env ``[num_envs]``.

    ``metrics`` has one row per ``log_interval`` env steps (leading axis ``num_logs``): ``episode_return``,
    ``episode_length`` (means over the episodes that ended in the row; NaN if none), ``episodes``, the
    :data:`LEARN_METRICS` (means over the row's gradient steps; NaN before learning starts), ``epsilon`` (at
    the row's end), ``gradient_steps`` and ``timesteps`` (totals so far), and with ``eval_episodes > 0``
    ``eval_return`` / ``eval_success`` at ``eval_epsilon`` on each task after the row.
    """
    cfg.validate(env, env_params)
    spec = EnvSpec.of(env)
    n, steps_per_iteration = cfg.num_envs, cfg.steps_per_iteration
    tasks = per_env_params(env, env_params, n)
    eval_tasks = env_params if batched_params(env, env_params, n) else jax.tree.map(
        lambda x: jnp.asarray(x)[None], env_params)
    log_env = LogWrapper(env)

    def init(key: jax.Array) -> _TrainState:
        k_learner, k_env, k_run = jax.random.split(key, 3)
        obs, env_state = jax.vmap(log_env.reset)(jax.random.split(k_env, n), tasks)
        zero_obs = jnp.zeros((spec.obs_dim,), jnp.float32)
        scalar = jnp.zeros((), jnp.float32)
        example = {"obs": zero_obs, "action": jnp.zeros((), jnp.int32), "reward": scalar, "discount": scalar,
                   "next_obs": zero_obs}
        return strongly_typed(_TrainState(
            learner=init_learner(k_learner, spec.obs_dim, spec.action_dim, cfg),
            buffer=replay.init(example, cfg.buffer_size),
            env_state=env_state,
            obs=flat_obs(obs, spec.obs_dim),
            key=k_run,
        ))

    def learn_phase(learner: DQNLearner, buffer: replay.ReplayBuffer, key: jax.Array) -> tuple[DQNLearner, dict]:
        def body(learner, step_key):
            return learn(learner, replay.sample(buffer, step_key, cfg.batch_size), cfg)

        learner, metrics = jax.lax.scan(body, learner, jax.random.split(key, cfg.gradient_steps))
        return learner, jax.tree.map(jnp.mean, metrics)

    def skip_phase(learner: DQNLearner, buffer: replay.ReplayBuffer, key: jax.Array) -> tuple[DQNLearner, dict]:
        return learner, _nan_metrics(LEARN_METRICS)

    def iteration(state: _TrainState, index: jax.Array) -> tuple[_TrainState, dict]:
        """Collect ``train_every`` steps per env, store them, then train if ``learning_starts`` is reached.

        ``index`` (the iteration's number in the run) comes from the scan's xs, so it stays unbatched under
        ``vmap`` over seeds and the learning ``cond`` is a real branch there too.
        """
        k_next, k_collect, k_learn = jax.random.split(state.key, 3)
        env_steps = (index * cfg.train_every + jnp.arange(cfg.train_every)) * n
        (env_state, obs), traj = jax.lax.scan(
            lambda c, x: collect_step(log_env, tasks, cfg, state.learner.params, *c, *x), (state.env_state, state.obs),
            (jax.random.split(k_collect, cfg.train_every), env_steps))
        flat = lambda x: x.reshape((steps_per_iteration,) + x.shape[2:])  # noqa: E731
        buffer = replay.add(state.buffer, {k: flat(traj[k]) for k in ("obs", "action", "reward", "discount",
                                                                       "next_obs")})
        learning = (index + 1) * steps_per_iteration >= cfg.learning_starts
        learner, losses = jax.lax.cond(learning, learn_phase, skip_phase, state.learner, buffer, k_learn)
        ended = traj["episode_end"]
        stats = {"episodes": jnp.sum(ended), "return_sum": jnp.sum(ended * traj["episode_return"]),
                 "length_sum": jnp.sum(ended * traj["episode_length"])}
        return state.replace(learner=learner, buffer=buffer, env_state=env_state, obs=obs, key=k_next), \
            {**stats, **losses}

    def log_row(state: _TrainState, row: jax.Array) -> tuple[_TrainState, dict]:
        """``iterations_per_log`` iterations and their metrics row (plus an evaluation when configured)."""
        per_row = cfg.iterations_per_log
        state, it = jax.lax.scan(iteration, state, row * per_row + jnp.arange(per_row))
        episodes = jnp.sum(it["episodes"])

        def mean_of_episodes(total: jax.Array) -> jax.Array:
            return jnp.where(episodes > 0, total / jnp.maximum(episodes, 1), jnp.nan)

        timesteps = (row + 1) * cfg.log_interval
        metrics = {
            "episode_return": mean_of_episodes(jnp.sum(it["return_sum"])),
            "episode_length": mean_of_episodes(jnp.sum(it["length_sum"])),
            "episodes": episodes.astype(jnp.int32),
            **{name: jnp.nanmean(it[name]) for name in LEARN_METRICS},  # all-NaN (no learning yet) stays NaN
            "epsilon": epsilon_at(cfg, timesteps),
            "gradient_steps": state.learner.gradient_steps,
            "timesteps": timesteps.astype(jnp.int32),
        }
        if cfg.eval_episodes > 0:
            metrics.update(evaluate(state.learner.params, env, eval_tasks, jax.random.fold_in(state.key, _EVAL_STREAM),
                                    cfg.eval_episodes, cfg.eval_epsilon))
        return state, metrics

    def train(key: jax.Array) -> tuple[DQNLearner, dict]:
        state, metrics = jax.lax.scan(log_row, init(key), jnp.arange(cfg.num_logs))
        return state.learner, metrics

    return train
