"""PPO with a pluggable drift (actor loss) and optimizer, one jitted program.

    agent = PPO(config, env, env_params, drift=None, optimizer=None, teacher=None)
    state = agent.init(key)                  # RunnerState pytree
    state, metrics = agent.update(state)     # one rollout + epochs
    state, metrics = agent.run(state, n)     # lax.scan of update
    train = make_train(config, env, env_params)
    out_state, metrics = train(key, objective_params=None, optimizer_params=None)

The actor loss is the mirror-learning form ``-mean(r*A - drift(meta, r, A, progress))``
(PPO's clip is :class:`metarl.objectives.ppo_clip.PPOClip`); ``progress`` is
update index / number of updates. Everything is pure, so ``train`` vmaps over
seeds and over populations of objective or optimizer parameters.

Robust PLR / ACCEL: with ``task_resample="rollout"`` and a teacher that has
``train_mask(teacher_state, n) -> float32[n]``, each env's samples are weighted
by its mask entry in the actor, critic and entropy losses (a weighted mean;
advantages are normalised over the trained samples). A minibatch with no
trained sample is skipped, and a fully masked batch skips the epochs, so
params and optimizer state stay exactly unchanged; its loss metrics are NaN.
Feedback reaches the teacher for every env. Teachers without ``train_mask``
take the unmasked code path.

Speed notes (CPU is latency-bound on small nets): the rollout loop only runs
the actor and the env; all random numbers for a rollout are drawn in one
batched call before the loop; the critic is evaluated once per rollout on
the whole batch of observations and final observations; each epoch shuffles
one packed float32 matrix with a single gather.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.flatten_util import ravel_pytree
from gymnax.environments import spaces

from curricula.base import Feedback
from envs.wrappers import LogWrapper, RunningMeanStd, TaskResetWrapper, TaskState
from metarl.agents import networks, random_bits
from metarl.agents.gae import gae
from metarl.objectives.ppo_clip import PPOClip

ACTION_DISTS = ("auto", "categorical", "gaussian")
TASK_RESAMPLE = ("rollout", "episode")
TEACHER_SCORES = ("pvl", "gae_abs")
_INT_FIELDS = ("num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches")
_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PureJaxRL-style settings; defaults are its CartPole-v1 configuration."""

    lr: float = 2.5e-4
    num_envs: int = 4
    num_steps: int = 128
    total_timesteps: int = 500_000
    update_epochs: int = 4
    num_minibatches: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5  # <= 0 disables global-norm clipping
    activation: str = "tanh"
    hidden_sizes: tuple[int, ...] = (64, 64)
    anneal_lr: bool = True
    normalize_obs: bool = False
    clip_value: bool = True  # PPO value clipping with clip_eps
    action_dist: str = "auto"  # "auto" picks from the env's action space
    task_resample: str = "rollout"  # with a teacher: "rollout" or "episode"
    teacher_score: str = "pvl"  # "pvl" (positive value loss) or "gae_abs" (mean |GAE|)

    def __post_init__(self):
        # YAML gives 1e6 as a float; accept integral floats for step counts.
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, float) and value.is_integer():
                object.__setattr__(self, name, int(value))
        if isinstance(self.hidden_sizes, (list, tuple)):
            object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.batch_size

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    def validate(self, env: Any = None, env_params: Any = None) -> None:
        """Raise ``ValueError`` with one line naming the first problem found."""
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"agent.{name} must be an integer, got {value!r}")
            if value <= 0:
                raise ValueError(f"agent.{name} must be positive, got {value}")
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"agent.num_minibatches={self.num_minibatches} does not divide the batch "
                f"num_envs*num_steps={self.batch_size}"
            )
        if self.total_timesteps < self.batch_size:
            raise ValueError(
                f"agent.total_timesteps={self.total_timesteps} is less than one rollout "
                f"(num_envs*num_steps={self.batch_size})"
            )
        for name, low, high in (("gamma", 0.0, 1.0), ("gae_lambda", 0.0, 1.0)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"agent.{name} must be in [{low}, {high}], got {value}")
        for name in ("lr", "clip_eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"agent.{name} must be positive, got {getattr(self, name)}")
        for name in ("ent_coef", "vf_coef"):
            if getattr(self, name) < 0:
                raise ValueError(f"agent.{name} must be non-negative, got {getattr(self, name)}")
        if self.activation not in networks.ACTIVATIONS:
            raise ValueError(f"agent.activation must be one of {sorted(networks.ACTIVATIONS)}, got {self.activation!r}")
        if not self.hidden_sizes or any(
            isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h <= 0 for h in self.hidden_sizes
        ):
            raise ValueError(f"agent.hidden_sizes must be positive integers, got {self.hidden_sizes!r}")
        for name, choices in (
            ("action_dist", ACTION_DISTS),
            ("task_resample", TASK_RESAMPLE),
            ("teacher_score", TEACHER_SCORES),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(f"agent.{name} must be one of {choices}, got {getattr(self, name)!r}")
        if env is not None:
            continuous = _is_continuous(env, env_params)
            if self.action_dist == "gaussian" and not continuous:
                raise ValueError(f"agent.action_dist='gaussian' needs a continuous action space; {_env_name(env)} is discrete")
            if self.action_dist == "categorical" and continuous:
                raise ValueError(f"agent.action_dist='categorical' needs a discrete action space; {_env_name(env)} is continuous")
            if env_params is not None:
                _batched_params(env, env_params, self.num_envs)


def _env_name(env: Any) -> str:
    return getattr(env, "name", type(env).__name__)


def _default_params(env: Any) -> Any:
    return env.default_params


def _is_continuous(env: Any, env_params: Any = None) -> bool:
    space = env.action_space(_default_params(env))
    if isinstance(space, spaces.Discrete):
        return False
    if isinstance(space, spaces.Box):
        return True
    raise ValueError(f"{_env_name(env)}: unsupported action space {type(space).__name__}")


def _batched_params(env: Any, env_params: Any, num_envs: int) -> bool:
    """True if ``env_params`` carries a leading ``num_envs`` axis (one task per env)."""
    default = _default_params(env)
    given = jax.tree.leaves(env_params)
    ref = jax.tree.leaves(default)
    if jax.tree.structure(env_params) != jax.tree.structure(default):
        raise ValueError(f"env_params is not a {type(default).__name__} for {_env_name(env)}")
    extra = {np.ndim(g) - np.ndim(r) for g, r in zip(given, ref)}
    if extra == {0}:
        return False
    if extra == {1}:
        leading = {np.shape(g)[0] for g in given}
        if leading != {num_envs}:
            raise ValueError(f"env_params batch has leading axis {sorted(leading)}, expected num_envs={num_envs}")
        return True
    raise ValueError("env_params must be one task or a batch with leading axis num_envs")


def _mean(x: jax.Array) -> jax.Array:
    return jnp.mean(x)


def _weighted_mean(x: jax.Array, weight: jax.Array) -> jax.Array:
    """Mean over the samples with weight > 0 (0 when all weights are 0)."""
    total = jnp.sum(weight)
    return jnp.sum(weight * x) / jnp.where(total > 0, total, 1.0)


class _PresetReset:
    """gymnax's auto-reset step with the reset supplied instead of computed.

    Same result as ``env.step(key)`` (or ``TaskResetWrapper(env).step``) when
    ``reset`` is ``env.reset_env`` of the second half of ``split(key)``; drawing
    it beforehand keeps a reset (and its RNG) out of the sequential loop. With
    ``episode_tasks`` the state is a ``TaskState`` and ``params`` is the next
    episode's task, as in ``TaskResetWrapper``.
    """

    def __init__(self, env: Any, reset: tuple[Any, Any], episode_tasks: bool):
        self.env, self.reset, self.episode_tasks = env, reset, episode_tasks

    def step(self, key, state, action, params):
        # ``key`` is already the step half of gymnax's split.
        env_state, task = (state.env_state, state.task) if self.episode_tasks else (state, params)
        obs_st, state_st, reward, terminated, info = self.env.step_env(key, env_state, action, task)
        truncated = self.env.is_truncated(state_st, task)
        done = jnp.logical_or(terminated, truncated)
        obs_re, state_re = self.reset
        pick = lambda a, b: jax.tree.map(lambda x, y: jnp.where(done, x, y), a, b)  # noqa: E731
        obs, new_env_state = pick(obs_re, obs_st), pick(state_re, state_st)
        info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_st}
        if not self.episode_tasks:
            return obs, new_env_state, reward, terminated, truncated, info
        new_state = TaskState(new_env_state, pick(params, task))
        return obs, new_state, reward, terminated, truncated, {**info, "task": task}


@struct.dataclass
class RunnerState:
    """Everything that changes during training (a pytree; vmap over seeds)."""

    params: Any
    opt_state: Any
    env_state: Any  # LogState batch over envs
    obs: jax.Array  # [num_envs, obs_dim] float32, raw (un-normalised)
    env_params: Any  # per-env task batch (with task_resample="episode": the next tasks)
    obs_rms: RunningMeanStd
    teacher_state: Any
    objective_params: Any
    optimizer_params: Any
    key: jax.Array
    update_step: jax.Array  # int32, updates done so far
    last_episode: jax.Array  # [3] latest (return, length, success) means; NaN before any episode ends


_LOSS_METRICS = ("actor_loss", "value_loss", "entropy", "approx_kl", "clip_frac")
METRIC_NAMES = (
    "episode_return",
    "episode_length",
    "success",
    "episodes",
    "actor_loss",
    "value_loss",
    "entropy",
    "approx_kl",
    "clip_frac",
    "timesteps",
)


class PPO:
    """See module docstring. ``progress_callback(updates_done)`` (host) is called
    about 20 times per :meth:`run` when given; leave it ``None`` under vmap'd
    meta-training."""

    def __init__(
        self,
        config: PPOConfig,
        env: Any,
        env_params: Any,
        drift: Any = None,
        optimizer: Any = None,
        teacher: Any = None,
        progress_callback: Callable[[int], None] | None = None,
    ):
        config.validate(env, env_params)
        if teacher is not None and config.task_resample == "episode" and not hasattr(env, "step_env"):
            raise ValueError(f"task_resample='episode' needs a gymnax-style env with step_env; {_env_name(env)} has none")
        self.config = config
        self.env = env
        self.drift = PPOClip(config.clip_eps) if drift is None else drift
        self.optimizer = optimizer
        self.teacher = teacher
        self.progress_callback = progress_callback
        self.episode_tasks = teacher is not None and config.task_resample == "episode"
        # Robust PLR / ACCEL: envs on new or mutated levels are rolled out and
        # scored but get no gradient (a per-env weight column in the batch).
        self.masked = teacher is not None and not self.episode_tasks and hasattr(teacher, "train_mask")
        self.log_env = LogWrapper(TaskResetWrapper(env) if self.episode_tasks else env)
        # gymnax-style envs: resets are drawn before the rollout (see _PresetReset).
        self.preset_resets = all(hasattr(env, a) for a in ("step_env", "reset_env", "is_truncated"))

        default = _default_params(env)
        self.continuous = _is_continuous(env, default)
        action_space = env.action_space(default)
        obs_shape = tuple(env.observation_space(default).shape)
        self.obs_dim = int(math.prod(obs_shape))
        if self.continuous:
            self.action_dim = int(math.prod(action_space.shape))
            self.action_low = jnp.asarray(np.broadcast_to(action_space.low, action_space.shape), jnp.float32)
            self.action_high = jnp.asarray(np.broadcast_to(action_space.high, action_space.shape), jnp.float32)
            self.action_shape = tuple(action_space.shape)
        else:
            self.action_dim = int(action_space.n)
        batched = _batched_params(env, env_params, config.num_envs)
        n = config.num_envs
        self.env_params = (
            env_params
            if batched
            else jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (n,) + np.shape(x)), env_params)
        )
        self._default_tx = optax.adam(config.lr, eps=1e-5) if optimizer is None else None

    # --- optimizer -----------------------------------------------------------
    def _learned_optimizer(self) -> bool:
        return self.optimizer is not None and hasattr(self.optimizer, "transform")

    def _transform(self, optimizer_params: Any) -> optax.GradientTransformationExtraArgs:
        if self.optimizer is None:
            tx = self._default_tx
        elif self._learned_optimizer():
            tx = self.optimizer.transform(optimizer_params)
        else:
            tx = self.optimizer
        return optax.with_extra_args_support(tx)

    def _opt_view(self, params: Any) -> tuple[Any, Callable[[Any], Any]]:
        """What the optimizer sees: the default Adam works on one flat vector.

        Adam is elementwise, so flattening changes nothing numerically, but one
        fused kernel over all parameters replaces a dozen per-leaf ones in every
        minibatch step (the learn phase is launch-bound on CPU). User-supplied
        optimizers see the parameter pytree, as the contract says.
        """
        if self.optimizer is None:
            flat, unravel = ravel_pytree(params)
            return flat, unravel
        return params, lambda tree: tree

    # --- init ----------------------------------------------------------------
    def init(self, key: jax.Array, objective_params: Any = None, optimizer_params: Any = None) -> RunnerState:
        cfg = self.config
        n, w = cfg.num_envs, random_bits.key_width(key)
        keys = random_bits.keys_from_bits(key, jax.random.bits(key, (8 + n, w), jnp.uint32))
        k_net, k_teacher, k_sample, k_obj, k_opt, k_run, k_env = keys[:2], keys[2], keys[3], keys[4], keys[5], keys[6], keys[8:]
        params = networks.init_actor_critic(k_net, self.obs_dim, self.action_dim, cfg.hidden_sizes, self.continuous)
        if objective_params is None:
            objective_params = self.drift.init(k_obj)
        if optimizer_params is None:
            if self._learned_optimizer():
                if not hasattr(self.optimizer, "init"):
                    raise ValueError("a learned optimizer without init(key) needs optimizer_params")
                optimizer_params = self.optimizer.init(k_opt)
            else:
                optimizer_params = {}
        opt_state = self._transform(optimizer_params).init(self._opt_view(params)[0])
        env_params = self.env_params
        teacher_state = None
        if self.teacher is not None:
            teacher_state = self.teacher.init(k_teacher, self.env.task_space)
            teacher_state, env_params = self.teacher.sample(teacher_state, k_sample, cfg.num_envs)
        obs, env_state = jax.vmap(self.log_env.reset)(k_env, env_params)
        return RunnerState(
            params=params,
            opt_state=opt_state,
            env_state=env_state,
            obs=self._flat_obs(obs),
            env_params=env_params,
            obs_rms=RunningMeanStd.create((self.obs_dim,)),
            teacher_state=teacher_state,
            objective_params=objective_params,
            optimizer_params=optimizer_params,
            key=k_run,
            update_step=jnp.zeros((), jnp.int32),
            last_episode=jnp.full((3,), jnp.nan, jnp.float32),
        )

    # --- policy --------------------------------------------------------------
    def _flat_obs(self, obs: jax.Array) -> jax.Array:
        return jnp.reshape(obs, (obs.shape[0], self.obs_dim)).astype(jnp.float32)

    def _normalize(self, rms: RunningMeanStd, obs: jax.Array) -> jax.Array:
        return rms.normalize(obs).astype(jnp.float32) if self.config.normalize_obs else obs

    def _log_prob_entropy(self, params, out: jax.Array, action: jax.Array) -> tuple[jax.Array, jax.Array]:
        if self.continuous:
            log_std = params["log_std"]
            z = (action - out) * jnp.exp(-log_std)
            logp = jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI, axis=-1)
            entropy = jnp.broadcast_to(jnp.sum(0.5 + 0.5 * _LOG_2PI + log_std), logp.shape)
            return logp, entropy
        log_probs = jax.nn.log_softmax(out)
        index = action.astype(jnp.int32)[..., None]
        logp = jnp.take_along_axis(log_probs, index, axis=-1)[..., 0]
        entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)
        return logp, entropy

    def _sample(self, params, out: jax.Array, noise: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Action from pre-drawn noise: Gumbel-max for categorical, reparametrised Gaussian."""
        if self.continuous:
            action = out + jnp.exp(params["log_std"]) * noise
            logp = jnp.sum(-0.5 * noise**2 - params["log_std"] - 0.5 * _LOG_2PI, axis=-1)
            return action, logp
        action = jnp.argmax(out + noise, axis=-1)
        logp = jnp.take_along_axis(jax.nn.log_softmax(out), action[..., None], axis=-1)[..., 0]
        return action, logp

    def _env_action(self, action: jax.Array) -> jax.Array:
        if self.continuous:
            clipped = jnp.clip(action, self.action_low.reshape(-1), self.action_high.reshape(-1))
            return clipped.reshape((action.shape[0],) + self.action_shape)
        return action.astype(jnp.int32)

    # --- rollout -------------------------------------------------------------
    def _draw(self, key: jax.Array) -> dict:
        """Every random draw of one update from a single ``jax.random.bits`` call.

        Per-step env keys are then split exactly as gymnax's ``step`` splits
        them; the reset half is used up front in one vmapped ``reset_env`` over
        ``[num_steps, num_envs]`` (see :class:`_PresetReset`).
        """
        cfg = self.config
        t, n, w = cfg.num_steps, cfg.num_envs, random_bits.key_width(key)
        budget = random_bits.BitBudget()
        slots = {
            "next_key": budget.take(w),
            "teacher": budget.take(w),
            "reset": budget.take(n, w),
            "noise": budget.take(t, n, self.action_dim),
            "step": budget.take(t, n, w),
            "perm": budget.take(cfg.update_epochs, cfg.batch_size),
            "opt": budget.take(cfg.update_epochs, cfg.num_minibatches, w),
        }
        bits = budget.draw(key)
        out = {name: bits[slot] for name, slot in slots.items()}
        for name in ("next_key", "teacher", "reset", "step", "opt"):
            out[name] = random_bits.keys_from_bits(key, out[name])
        out["noise"] = (random_bits.normal if self.continuous else random_bits.gumbel)(out["noise"])
        return out

    def _preset_resets(self, step_keys: jax.Array, env_params: Any):
        # Flat single vmaps: nested vmaps compile markedly slower on CPU.
        t, n = step_keys.shape[:2]
        pairs = jax.vmap(jax.random.split)(step_keys.reshape((t * n,) + step_keys.shape[2:]))
        tiled = jax.tree.map(lambda x: jnp.tile(x, (t,) + (1,) * (x.ndim - 1)), env_params)
        reset = jax.vmap(self.env.reset_env)(pairs[:, 1], tiled)
        unflat = lambda x: x.reshape((t, n) + x.shape[1:])  # noqa: E731
        return unflat(pairs[:, 0]), jax.tree.map(unflat, reset)

    def _rollout(self, params, rms, env_state, obs, env_params, noise, step_keys):
        cfg = self.config
        resets = None
        if self.preset_resets:
            step_keys, resets = self._preset_resets(step_keys, env_params)

            def env_step(key, state, action, params, reset):
                inner = _PresetReset(self.env, reset, self.episode_tasks)
                return LogWrapper(inner).step(key, state, action, params)

        else:

            def env_step(key, state, action, params, reset):
                return self.log_env.step(key, state, action, params)

        step = jax.vmap(env_step)

        def body(carry, xs):
            env_state, obs = carry
            noise_t, keys_t, reset_t = xs
            out, _ = networks.apply_mlp(params["actor"], self._normalize(rms, obs), cfg.activation)
            action, logp = self._sample(params, out, noise_t)
            next_obs, env_state, reward, terminated, truncated, info = step(
                keys_t, env_state, self._env_action(action), env_params, reset_t
            )
            record = {
                "obs": obs,
                "action": action,
                "logp": logp,
                "reward": reward.astype(jnp.float32),
                "terminated": terminated,
                "done": jnp.logical_or(terminated, truncated),
                "final_obs": self._flat_obs(info["final_observation"]),
                "episode_end": info["returned_episode"],
                "episode_return": info["returned_episode_return"],
                "episode_length": info["returned_episode_length"].astype(jnp.float32),
                "episode_success": info["returned_episode_success"].astype(jnp.float32),
            }
            if self.episode_tasks:
                record["task"] = info["task"]
            return (env_state, self._flat_obs(next_obs)), record

        (env_state, obs), traj = jax.lax.scan(body, (env_state, obs), (noise, step_keys, resets))
        return traj, env_state, obs

    # --- loss ----------------------------------------------------------------
    def _unpack(self, batch: jax.Array):
        """Columns of the packed batch; ``weight`` is ``None`` unless the teacher masks envs."""
        d, a = self.obs_dim, self.action_dim if self.continuous else 1
        obs = batch[:, :d]
        action = batch[:, d : d + a] if self.continuous else batch[:, d]
        old_logp, old_value, advantage, target = (batch[:, d + a + i] for i in range(4))
        weight = batch[:, d + a + 4] if self.masked else None
        return obs, action, old_logp, old_value, advantage, target, weight

    def _loss(self, params, batch, objective_params, progress):
        cfg = self.config
        obs, action, old_logp, old_value, advantage, target, weight = self._unpack(batch)
        mean = _mean if weight is None else functools.partial(_weighted_mean, weight=weight)
        out, actor_hidden = networks.apply_mlp(params["actor"], obs, cfg.activation)
        value, critic_hidden = networks.apply_mlp(params["critic"], obs, cfg.activation)
        value = value[:, 0]
        logp, entropy = self._log_prob_entropy(params, out, action)
        log_ratio = logp - old_logp
        ratio = jnp.exp(log_ratio)
        if weight is None:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        else:  # normalise with the statistics of the samples that are trained on
            centred = advantage - mean(advantage)
            advantage = centred / (jnp.sqrt(mean(jnp.square(centred))) + 1e-8)
        drift = self.drift(objective_params, ratio, advantage, progress)
        actor_loss = -mean(ratio * advantage - drift)
        value_err = jnp.square(value - target)
        if cfg.clip_value:
            clipped = old_value + jnp.clip(value - old_value, -cfg.clip_eps, cfg.clip_eps)
            value_err = jnp.maximum(value_err, jnp.square(clipped - target))
        value_loss = 0.5 * mean(value_err)
        entropy = mean(entropy)
        total = actor_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
        aux = {
            "actor_loss": actor_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            "approx_kl": mean((ratio - 1.0) - log_ratio),
            "clip_frac": mean((jnp.abs(ratio - 1.0) > cfg.clip_eps).astype(jnp.float32)),
        }
        dormancy = networks.dormancy_scores(params, actor_hidden, critic_hidden, weight)
        return total, (aux, jax.lax.stop_gradient(dormancy))

    # --- update --------------------------------------------------------------
    def _learn(self, state: RunnerState, batch: jax.Array, progress: jax.Array, perm_bits, opt_keys):
        """``update_epochs`` shuffled passes over minibatches of the packed batch."""
        cfg = self.config
        n_mb, epochs = cfg.num_minibatches, cfg.update_epochs
        tx = self._transform(state.optimizer_params)
        lr_scale = 1.0 - progress if cfg.anneal_lr else 1.0

        view, to_tree = self._opt_view(state.params)

        def loss_of_view(view, minibatch):
            return self._loss(to_tree(view), minibatch, state.objective_params, progress)

        grad_fn = jax.value_and_grad(loss_of_view, has_aux=True)

        def gradient_step(view, opt_state, step_index, minibatch, key):
            (_, (aux, dormancy)), grads = grad_fn(view, minibatch)
            if cfg.max_grad_norm > 0:
                norm = optax.global_norm(grads)
                scale = jnp.minimum(1.0, cfg.max_grad_norm / (norm + 1e-12))
                grads = jax.tree.map(lambda g: g * scale, grads)
            extra = {
                "progress": progress,
                "epoch_progress": step_index.astype(jnp.float32) / (n_mb * epochs),
                "key": key,
                "dormancy": dormancy,
            }
            updates, opt_state = tx.update(grads, opt_state, view, **extra)
            if cfg.anneal_lr:
                updates = jax.tree.map(lambda u: u * lr_scale, updates)
            return (optax.apply_updates(view, updates), opt_state), aux

        def minibatch_step(carry, xs):
            view, opt_state = carry
            step_index, minibatch, key = xs
            new_carry, aux = gradient_step(view, opt_state, step_index, minibatch, key)
            if not self.masked:
                return new_carry, aux
            # A minibatch with no trained sample leaves params and optimizer state
            # untouched (Adam fed zeros would still move its moments and counter).
            trained = jnp.sum(self._unpack(minibatch)[-1]) > 0
            keep = lambda new, old: jnp.where(trained, new, old)  # noqa: E731
            new_carry = jax.tree.map(keep, new_carry, (view, opt_state))
            return new_carry, jax.tree.map(lambda a: jnp.where(trained, a, jnp.nan), aux)

        def epoch(carry, xs):
            epoch_index, bits, keys = xs
            # Shuffle = one sort of random bits and one gather of the packed batch.
            minibatches = batch[jnp.argsort(bits)].reshape((n_mb, cfg.minibatch_size, batch.shape[1]))
            steps = epoch_index * n_mb + jnp.arange(n_mb)
            return jax.lax.scan(minibatch_step, carry, (steps, minibatches, keys))

        def learn(carry):
            (view, opt_state), aux = jax.lax.scan(epoch, carry, (jnp.arange(epochs), perm_bits, opt_keys))
            # Loss metrics average the minibatches that were trained on (NaN if none).
            return (view, opt_state), jax.tree.map(jnp.nanmean if self.masked else jnp.mean, aux)

        carry = (view, state.opt_state)
        if self.masked:
            # Whole batch masked (robust PLR's new/mutated levels): skip the epochs.
            skip = lambda carry: (carry, {k: jnp.float32(jnp.nan) for k in _LOSS_METRICS})  # noqa: E731
            carry, aux = jax.lax.cond(jnp.any(self._unpack(batch)[-1] > 0), learn, skip, carry)
        else:
            carry, aux = learn(carry)
        view, opt_state = carry
        return to_tree(view), opt_state, aux

    def update(self, state: RunnerState) -> tuple[RunnerState, dict]:
        """One rollout of ``num_envs x num_steps`` steps, then the epochs."""
        cfg = self.config
        t, n = cfg.num_steps, cfg.num_envs
        progress = jnp.minimum(state.update_step.astype(jnp.float32) / cfg.num_updates, 1.0)
        draws = self._draw(state.key)
        env_state, obs, env_params, teacher_state = state.env_state, state.obs, state.env_params, state.teacher_state
        if self.teacher is not None:
            teacher_state, env_params = self.teacher.sample(teacher_state, draws["teacher"], n)
            if self.masked:
                train_weight = jnp.asarray(self.teacher.train_mask(teacher_state, n), jnp.float32).reshape(n)
            if not self.episode_tasks:
                raw_obs, env_state = jax.vmap(self.log_env.reset)(draws["reset"], env_params)
                obs = self._flat_obs(raw_obs)

        traj, env_state, obs = self._rollout(
            state.params, state.obs_rms, env_state, obs, env_params, draws["noise"], draws["step"]
        )

        # Critic once over the batch of observations and final observations.
        both = jnp.concatenate([traj["obs"], traj["final_obs"]], axis=0)
        values, _ = networks.apply_mlp(state.params["critic"], self._normalize(state.obs_rms, both), cfg.activation)
        values = values[..., 0]
        values, next_values = values[:t], values[t:]
        advantages, targets = gae(
            traj["reward"], values, next_values, traj["terminated"], traj["done"], cfg.gamma, cfg.gae_lambda
        )

        b = t * n
        actions = traj["action"].reshape(b, -1).astype(jnp.float32)
        columns = [traj["logp"], values, advantages, targets]
        if self.masked:
            columns.append(jnp.broadcast_to(train_weight, (t, n)))
        batch = jnp.concatenate(
            [
                self._normalize(state.obs_rms, traj["obs"]).reshape(b, self.obs_dim),
                actions,
                jnp.stack(columns, axis=-1).reshape(b, len(columns)),
            ],
            axis=1,
        )
        params, opt_state, losses = self._learn(state, batch, progress, draws["perm"], draws["opt"])
        obs_rms = state.obs_rms.update(traj["obs"].reshape(b, self.obs_dim)) if cfg.normalize_obs else state.obs_rms

        ends = traj["episode_end"]
        count = jnp.sum(ends)
        ended = ends.astype(jnp.float32)
        fresh = jnp.stack(
            [jnp.sum(traj[k] * ended) for k in ("episode_return", "episode_length", "episode_success")]
        ) / jnp.maximum(count, 1)
        last_episode = jnp.where(count > 0, fresh, state.last_episode)

        if self.teacher is not None:
            tasks, feedback = self._feedback(traj, env_params, env_state, advantages)
            teacher_state = self.teacher.update(teacher_state, tasks, feedback)

        update_step = state.update_step + 1
        metrics = {
            "episode_return": last_episode[0],
            "episode_length": last_episode[1],
            "success": last_episode[2],
            "episodes": count.astype(jnp.int32),
            **losses,
            "timesteps": update_step * b,
        }
        new_state = state.replace(
            params=params,
            opt_state=opt_state,
            env_state=env_state,
            obs=obs,
            env_params=env_params,
            obs_rms=obs_rms,
            teacher_state=teacher_state,
            key=draws["next_key"],
            update_step=update_step,
            last_episode=last_episode,
        )
        return new_state, metrics

    def _feedback(self, traj, env_params, env_state, advantages) -> tuple[Any, Feedback]:
        cfg = self.config
        step_score = jnp.maximum(advantages, 0.0) if cfg.teacher_score == "pvl" else jnp.abs(advantages)
        ends = traj["episode_end"]
        ended = ends.astype(jnp.float32)
        if not self.episode_tasks:
            # Per env: mean over episodes finished in the rollout; an env whose
            # episode is still running reports its return so far.
            count = jnp.sum(ended, axis=0)
            finished_return = jnp.sum(traj["episode_return"] * ended, axis=0) / jnp.maximum(count, 1.0)
            returns = jnp.where(count > 0, finished_return, env_state.episode_return)
            best = jnp.max(jnp.where(ends, traj["episode_return"], -jnp.inf), axis=0)
            feedback = Feedback(
                returns=returns,
                success=jnp.sum(traj["episode_success"] * ended, axis=0) / jnp.maximum(count, 1.0),
                mask=jnp.ones((cfg.num_envs,), bool),
                scores=jnp.mean(step_score, axis=0),
                max_returns=jnp.where(count > 0, best, returns),
            )
            return env_params, feedback
        # Per finished episode: score = mean step score over its steps in this rollout.
        t = cfg.num_steps
        time = jnp.arange(t)[:, None]
        end_index = jnp.where(ends, time, -1)
        prev_end = jnp.concatenate([jnp.full((1, cfg.num_envs), -1), jax.lax.cummax(end_index, axis=0)[:-1]], axis=0)
        csum = jnp.cumsum(step_score, axis=0)
        before = jnp.where(prev_end >= 0, jnp.take_along_axis(csum, jnp.maximum(prev_end, 0), axis=0), 0.0)
        episode_score = (csum - before) / (time - prev_end).astype(jnp.float32)
        flat = lambda x: x.reshape((t * cfg.num_envs,) + x.shape[2:])  # noqa: E731
        returns = flat(traj["episode_return"])
        feedback = Feedback(
            returns=returns,
            success=flat(traj["episode_success"]),
            mask=flat(ends),
            scores=flat(episode_score),
            max_returns=returns,
        )
        return jax.tree.map(flat, traj["task"]), feedback

    # --- run -----------------------------------------------------------------
    def run(self, state: RunnerState, n_updates: int) -> tuple[RunnerState, dict]:
        """``n_updates`` updates in one ``lax.scan``; metrics have leading axis ``n_updates``."""
        callback = self.progress_callback
        period = max(1, n_updates // 20)

        def body(state, index):
            state, metrics = self.update(state)
            if callback is not None:
                done = index + 1
                report = jnp.logical_or(done % period == 0, done == n_updates)
                jax.lax.cond(report, lambda: jax.debug.callback(callback, done), lambda: None)
            return state, metrics

        return jax.lax.scan(body, state, jnp.arange(n_updates))


def make_train(
    config: PPOConfig,
    env: Any,
    env_params: Any,
    drift: Any = None,
    optimizer: Any = None,
    teacher: Any = None,
    progress_callback: Callable[[int], None] | None = None,
) -> Callable[..., tuple[RunnerState, dict]]:
    """``train(key, objective_params=None, optimizer_params=None)``: a whole run, jitted."""
    agent = PPO(config, env, env_params, drift=drift, optimizer=optimizer, teacher=teacher, progress_callback=progress_callback)

    @jax.jit
    def train(key: jax.Array, objective_params: Any = None, optimizer_params: Any = None):
        state = agent.init(key, objective_params, optimizer_params)
        return agent.run(state, config.num_updates)

    return train
