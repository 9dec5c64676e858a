"""PPO with a pluggable drift (actor loss), optimizer, teacher and hooks; one jitted program.

    agent = PPO(config, env, env_params, drift=None, optimizer=None, teacher=None, hooks=None)
    state = agent.init(key)                  # RunnerState pytree
    state, metrics = agent.update(state)     # one rollout + epochs
    state, metrics = agent.run(state, n)     # lax.scan of update
    act = agent.policy(greedy=False)         # ActFn over policy_params(state)
    train = make_train(config, env, env_params)
    out_state, metrics = train(key, objective_params=None, optimizer_params=None)

The pieces live in their own modules: settings (:mod:`.ppo_config`), the
batch and loss (:mod:`.ppo_loss`), the epochs (:mod:`.ppo_learn`), the rollout
(:mod:`.rollout`), teacher feedback (:mod:`.teacher_feedback`), the policy
(:mod:`.ppo_policy`) and hooks (:mod:`.ppo_hooks`). ``progress`` is update
index / number of updates. Everything is pure, so ``train`` vmaps over seeds
and over populations of objective or optimizer parameters.

Robust PLR / ACCEL: with ``task_resample="rollout"`` and a teacher that has
``train_mask(teacher_state, n) -> float32[n]``, each env's samples are weighted
by its mask entry in the actor, critic and entropy losses; masked minibatches
and batches leave params and optimizer state exactly unchanged (their loss
metrics are NaN). Feedback reaches the teacher for every env.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from envs.wrappers import RunningMeanStd
from metarl.agents import networks, random_bits
from metarl.agents.env_spec import EnvSpec, env_name, per_env_params
from metarl.agents.gae import gae
from metarl.agents.policy import ActFn
from metarl.agents.ppo_config import PPOConfig
from metarl.agents.ppo_hooks import PPOHooks
from metarl.agents.ppo_learn import learn, optimizer_view
from metarl.agents.ppo_loss import Batch, ppo_loss
from metarl.agents.progress import scan_updates
from metarl.agents.ppo_policy import flat_obs, make_policy, observe, policy_params
from metarl.agents.pytrees import strongly_typed
from metarl.agents.rollout import Rollout, last_episode_stats
from metarl.agents.teacher_feedback import per_env_feedback, per_episode_feedback, step_scores
from metarl.objectives.ppo_clip import PPOClip

__all__ = ["METRIC_NAMES", "PPO", "PPOConfig", "PPOHooks", "RunnerState", "make_train", "policy_params"]

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
    hook_state: Any = None  # whatever the hooks keep (PPOHooks.init)


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
        hooks: PPOHooks | None = None,
    ):
        config.validate(env, env_params)
        if teacher is not None and config.task_resample == "episode" and not hasattr(env, "step_env"):
            raise ValueError(f"task_resample='episode' needs a gymnax-style env with step_env; {env_name(env)} has none")
        self.config = config
        self.env = env
        self.drift = PPOClip(config.clip_eps) if drift is None else drift
        self.optimizer = optimizer
        self.teacher = teacher
        self.progress_callback = progress_callback
        self.hooks = hooks
        self.episode_tasks = teacher is not None and config.task_resample == "episode"
        # Robust PLR / ACCEL: envs on new or mutated levels are rolled out and
        # scored but get no gradient (a per-sample weight in the batch).
        self.masked = teacher is not None and not self.episode_tasks and hasattr(teacher, "train_mask")
        self.spec = EnvSpec.of(env)
        self.continuous, self.obs_dim, self.action_dim = self.spec.continuous, self.spec.obs_dim, self.spec.action_dim
        self.rollout = Rollout(config, env, self.spec, self.episode_tasks)
        n = config.num_envs
        self.env_params = per_env_params(env, env_params, n)
        self._default_tx = optax.adam(config.lr, eps=1e-5) if optimizer is None else None

    @property
    def log_env(self) -> Any:
        """The env as PPO steps it (episode statistics in ``info``)."""
        return self.rollout.log_env

    @property
    def preset_resets(self) -> bool:
        return self.rollout.preset_resets

    # --- policy --------------------------------------------------------------
    def policy(self, greedy: bool = False) -> ActFn:
        """``act(policy_params(state), obs, key) -> actions`` for env observations as returned."""
        return make_policy(self.spec, self.config.activation, self.config.normalize_obs, greedy)

    policy_params = staticmethod(policy_params)

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

    # --- init ----------------------------------------------------------------
    def init(
        self, key: jax.Array, objective_params: Any = None, optimizer_params: Any = None, hook_key: jax.Array | None = None,
        env_params: Any = None,
    ) -> RunnerState:
        """A fresh state; ``hook_key`` (default: drawn from ``key``) seeds the hooks' state; ``env_params`` (one task
        or a ``[num_envs]`` batch, traced) replaces the agent's own tasks, so one program trains on any task."""
        cfg = self.config
        n, w = cfg.num_envs, random_bits.key_width(key)
        keys = random_bits.keys_from_bits(key, jax.random.bits(key, (8 + n, w), jnp.uint32))
        k_net, k_teacher, k_sample, k_obj, k_opt, k_run, k_hooks, k_env = (
            keys[:2], keys[2], keys[3], keys[4], keys[5], keys[6], keys[7], keys[8:]
        )
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
        opt_state = self._transform(optimizer_params).init(optimizer_view(params, self.optimizer is None)[0])
        env_params = self.env_params if env_params is None else per_env_params(self.env, env_params, n)
        teacher_state = None
        if self.teacher is not None:
            teacher_state = self.teacher.init(k_teacher, self.env.task_space)
            teacher_state, env_params = self.teacher.sample(teacher_state, k_sample, cfg.num_envs)
        obs, env_state = jax.vmap(self.log_env.reset)(k_env, env_params)
        state = RunnerState(
            params=params,
            opt_state=opt_state,
            env_state=env_state,
            obs=flat_obs(obs, self.obs_dim),
            env_params=env_params,
            obs_rms=RunningMeanStd.create((self.obs_dim,)),
            teacher_state=teacher_state,
            objective_params=objective_params,
            optimizer_params=optimizer_params,
            key=k_run,
            update_step=jnp.zeros((), jnp.int32),
            last_episode=jnp.full((3,), jnp.nan, jnp.float32),
        )
        if self.hooks is not None:
            state = self.hooks.init(state, k_hooks if hook_key is None else hook_key)
        return strongly_typed(state)

    def reset_envs(self, state: RunnerState, key: jax.Array, env_params: Any) -> RunnerState:
        """Every env starts a fresh episode of ``env_params`` (one task per env)."""
        raw_obs, env_state = jax.vmap(self.log_env.reset)(jax.random.split(key, self.config.num_envs), env_params)
        fresh = strongly_typed((env_params, env_state))  # the same signature as init's (see pytrees)
        return state.replace(env_params=fresh[0], env_state=fresh[1], obs=flat_obs(raw_obs, self.obs_dim))

    # --- loss ----------------------------------------------------------------
    def loss(self, params: Any, batch: Batch, objective_params: Any, progress: jax.Array, hook_state: Any = None):
        """``(total, (loss metrics, dormancy))`` of one minibatch, the hooks' extra term included."""
        total, aux = ppo_loss(
            params, batch, objective_params, progress, config=self.config, drift=self.drift, continuous=self.continuous
        )
        if self.hooks is not None:
            extra = self.hooks.loss_extra(params, batch, hook_state)
            if extra is not None:
                total = total + extra
        return total, aux

    # --- update --------------------------------------------------------------
    def _batch(self, state: RunnerState, traj: dict, values, advantages, targets, teacher_state) -> Batch:
        cfg = self.config
        b = cfg.num_steps * cfg.num_envs
        flat = lambda x: x.reshape((b,) + x.shape[2:])  # noqa: E731
        weight = None
        if self.masked:
            mask = jnp.asarray(self.teacher.train_mask(teacher_state, cfg.num_envs), jnp.float32).reshape(cfg.num_envs)
            weight = flat(jnp.broadcast_to(mask, (cfg.num_steps, cfg.num_envs)))
        return Batch(
            obs=observe(state.obs_rms, traj["obs"], cfg.normalize_obs).reshape(b, self.obs_dim),
            action=flat(traj["action"]),
            old_logp=flat(traj["logp"]),
            old_value=flat(values),
            advantage=flat(advantages),
            target=flat(targets),
            weight=weight,
        )

    def update(self, state: RunnerState) -> tuple[RunnerState, dict]:
        """One rollout of ``num_envs x num_steps`` steps, then the epochs."""
        cfg = self.config
        t, n = cfg.num_steps, cfg.num_envs
        progress = jnp.minimum(state.update_step.astype(jnp.float32) / cfg.num_updates, 1.0)
        draws = self.rollout.draw(state.key)
        env_state, obs, env_params, teacher_state = state.env_state, state.obs, state.env_params, state.teacher_state
        if self.teacher is not None:
            teacher_state, env_params = self.teacher.sample(teacher_state, draws["teacher"], n)
            if not self.episode_tasks:
                raw_obs, env_state = jax.vmap(self.log_env.reset)(draws["reset"], env_params)
                obs = flat_obs(raw_obs, self.obs_dim)

        traj, env_state, obs = self.rollout.run(
            state.params, state.obs_rms, env_state, obs, env_params, draws["noise"], draws["step"]
        )

        # Critic once over the batch of observations and final observations.
        both = jnp.concatenate([traj["obs"], traj["final_obs"]], axis=0)
        values, _ = networks.apply_mlp(state.params["critic"], observe(state.obs_rms, both, cfg.normalize_obs), cfg.activation)
        values = values[..., 0]
        values, next_values = values[:t], values[t:]
        advantages, targets = gae(
            traj["reward"] * cfg.reward_scale, values, next_values, traj["terminated"], traj["done"], cfg.gamma,
            cfg.gae_lambda,
        )

        batch = self._batch(state, traj, values, advantages, targets, teacher_state)
        view, to_tree = optimizer_view(state.params, self.optimizer is None)

        def loss_of_view(view, minibatch):
            return self.loss(to_tree(view), minibatch, state.objective_params, progress, state.hook_state)

        tx = self._transform(state.optimizer_params)
        view, opt_state, losses = learn(cfg, loss_of_view, tx, view, state.opt_state, batch, progress, draws["perm"], draws["opt"])
        b = t * n
        obs_rms = state.obs_rms.update(traj["obs"].reshape(b, self.obs_dim)) if cfg.normalize_obs else state.obs_rms

        last_episode = last_episode_stats(traj, state.last_episode)

        if self.teacher is not None:
            score = step_scores(advantages, cfg.teacher_score)
            if self.episode_tasks:
                tasks, feedback = per_episode_feedback(traj, score)
            else:
                tasks, feedback = env_params, per_env_feedback(traj, env_state, score)
            teacher_state = self.teacher.update(teacher_state, tasks, feedback)

        update_step = state.update_step + 1
        metrics = {
            "episode_return": last_episode[0],
            "episode_length": last_episode[1],
            "success": last_episode[2],
            "episodes": jnp.sum(traj["episode_end"]).astype(jnp.int32),
            **losses,
            "timesteps": update_step * b,
        }
        new_state = state.replace(
            params=to_tree(view),
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
        if self.hooks is not None:
            new_state, hook_metrics = self.hooks.after_update(new_state)
            metrics.update(hook_metrics)
        return new_state, metrics

    # --- run -----------------------------------------------------------------
    def run(self, state: RunnerState, n_updates: int) -> tuple[RunnerState, dict]:
        """``n_updates`` updates in one ``lax.scan``; metrics have leading axis ``n_updates``."""
        return scan_updates(self.update, state, n_updates, self.progress_callback)


def make_train(config: PPOConfig, env: Any, env_params: Any, **agent_kwargs: Any) -> Callable[..., tuple[RunnerState, dict]]:
    """``train(key, objective_params=None, optimizer_params=None, task=None)``: a whole run, jitted; ``task``
    (params of one task, traced) replaces ``env_params``, so seeds vmapped over tasks share one program.

    ``agent_kwargs`` go to :class:`PPO` (``drift``, ``optimizer``, ``teacher``, ...)."""
    agent = PPO(config, env, env_params, **agent_kwargs)

    @jax.jit
    def train(key: jax.Array, objective_params: Any = None, optimizer_params: Any = None, task: Any = None):
        state = agent.init(key, objective_params, optimizer_params, env_params=task)
        return agent.run(state, config.num_updates)

    return train
