"""RL²: recurrent PPO across the episodes of a trial (Duan et al. 2016), one jitted program.

    train = make_train(env, RL2Config(...), teacher=None, env_params=None)
    state, metrics = train(key)          # metrics per trial: episode_returns [num_trials, k], trial_return, losses
    returns = evaluate(state.params, env, tasks, key, k, config=cfg)   # [num_tasks, k]

**Trial.** Every update draws one task per env from the teacher (default:
domain randomisation over ``env.task_space``; any object with the curricula
``init/sample/update`` API plugs in), resets the envs and runs ``k * H`` steps
(:mod:`.rl2_config`). Episodes auto-reset inside the trial under the same
task. Each task's ``max_steps_in_episode`` is set to the env's ``H`` (the
static trial length needs one horizon; a sampler with its own time limit,
such as the bandit's, is overridden).

**Inputs** at step ``t``: ``[obs_t, a_{t-1}, r_{t-1}, d_{t-1}]`` with ``a``
one-hot (discrete) or the clipped env action (continuous) and ``d`` the
episode-ended flag of the previous step. All three are **zero at trial start**
and **carry across episode boundaries** inside the trial (as xland-minigrid,
unlike Meta-World+'s wrapper that zeroes them per episode): the first step of
episode ``j + 1`` sees the last action and reward of episode ``j``.

**Carry.** Zero at trial start only; never reset at an episode end. With
``cell="transformer"`` the carry is the attention context of the last
``context_window`` steps (:mod:`.rl2_transformer`); zero is the empty context.

**PPO over the trial.** The rollout is a ``lax.scan`` over TBPTT chunks (each
a ``lax.scan`` over its steps) that stores the carry at every chunk start.
GAE runs over the whole trial; only the trial boundary masks it
(:func:`trial_advantages`): an episode end inside the trial cuts neither the
trace nor the bootstrap, since the value of the next step (the next episode's
first input, same carry) is the value of the same meta-episode. The last step
bootstraps with ``V(next input, final carry)`` (``trial_end="bootstrap"``) or
not at all (``"terminal"``). The loss replays each chunk from its stored
carry (:func:`metarl.agents.rl2_network.replay`), so no gradient crosses a
chunk boundary. Minibatches are whole trials (envs); ``update_epochs`` epochs.

**Actions.** Discrete (categorical) and continuous (diagonal Gaussian with a
state-independent ``log_std``, as PPO's) are both supported.

Not done: robust-PLR ``train_mask`` (every env is trained on), observation normalisation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from curricula.base import Feedback
from curricula.simple import DomainRandomization
from metarl.agents import rl2_network
from metarl.agents.distributions import env_action, log_prob_entropy, sample_with_noise
from metarl.agents.env_spec import EnvSpec
from metarl.agents.gae import gae
from metarl.agents.rl2_config import RL2Config, TrialLayout, env_horizon, trial_layout

__all__ = [
    "RL2Config",
    "RL2State",
    "TrialLayout",
    "evaluate",
    "input_dim",
    "input_parts",
    "make_train",
    "rl2_loss",
    "run_trial",
    "trial_advantages",
    "trial_gae",
    "trial_layout",
    "with_horizon",
]

LOSS_NAMES = ("actor_loss", "value_loss", "entropy", "approx_kl", "clip_frac")


@struct.dataclass
class RL2State:
    """What changes during training (a pytree)."""

    params: Any
    opt_state: Any
    teacher_state: Any
    key: jax.Array
    trial: jax.Array  # int32, trials done


@struct.dataclass
class TrialCarry:
    """The rollout's loop state, one entry per env."""

    env_state: Any
    obs: jax.Array  # [N, obs_dim] flat float32
    prev: jax.Array  # [N, action_dim + 2]: previous action, reward, episode-ended flag
    core: jax.Array  # [N, carry width] recurrent carry
    running: jax.Array  # [N] return of the episode in progress
    count: jax.Array  # [N] int32 episodes finished in this trial
    returns: jax.Array  # [N, k] returns of the first k episodes
    successes: jax.Array  # [N, k] 1 where episode j succeeded at any step (info["episode_success"]; else 0)


# --- inputs ------------------------------------------------------------------------------------------
def input_dim(spec: EnvSpec) -> int:
    return spec.obs_dim + spec.action_dim + 2


def input_parts(inputs: jax.Array, spec: EnvSpec) -> dict:
    """Split network inputs ``[..., in]`` into ``obs``, ``prev_action``, ``prev_reward``, ``prev_done``."""
    o, a = spec.obs_dim, spec.action_dim
    return {
        "obs": inputs[..., :o],
        "prev_action": inputs[..., o : o + a],
        "prev_reward": inputs[..., o + a],
        "prev_done": inputs[..., o + a + 1],
    }


def _action_features(spec: EnvSpec, action: jax.Array) -> jax.Array:
    """What the next step sees of ``action``: one-hot, or the (clipped, flat) env action."""
    if spec.continuous:
        return jnp.clip(action, spec.action_low, spec.action_high).astype(jnp.float32)
    return jax.nn.one_hot(action, spec.action_dim, dtype=jnp.float32)


def with_horizon(tasks: Any, horizon: int) -> Any:
    """``tasks`` with every ``max_steps_in_episode`` set to the env's fixed ``horizon``."""
    steps = jnp.asarray(tasks.max_steps_in_episode)
    return tasks.replace(max_steps_in_episode=jnp.full(steps.shape, horizon, steps.dtype))


# --- rollout -----------------------------------------------------------------------------------------
def _episode_success(info: Any, n: int) -> jax.Array:
    """``[n]`` float: whether the episode that a step ends succeeded at any step (envs without the flag: 0)."""
    flag = info.get("episode_success") if isinstance(info, dict) else None
    return jnp.zeros((n,), jnp.float32) if flag is None else jnp.reshape(flag, (n,)).astype(jnp.float32)


def _policy_action(spec: EnvSpec, out, noise, log_std, greedy: bool):
    if not greedy:
        return sample_with_noise(out, noise, log_std)
    action = out if spec.continuous else jnp.argmax(out, axis=-1)
    return action, log_prob_entropy(out, action, log_std)[0]


def run_trial(
    params: Any,
    env: Any,
    tasks: Any,
    key: jax.Array,
    layout: TrialLayout,
    activation: str = "tanh",
    greedy: bool = False,
) -> dict:
    """One trial per task (``tasks``: batched params, leading axis N), from a zero carry.

    Returns time-major ``[T, N, ...]`` records (``inputs``, ``action``, ``logp``,
    ``value``, ``reward``, ``done``), ``carries [C, N, width]`` (the carry at
    each chunk start), ``last_value [N]`` (``V`` of the input after the last
    step under the final carry), ``episode_returns [N, k]``, ``episode_success [N, k]``
    (1 where episode j succeeded at some step, from the env's ``info["episode_success"]``;
    0 for envs without it) and ``trial_return [N]``.
    """
    spec = EnvSpec.of(env)
    n = jax.tree.leaves(tasks)[0].shape[0]
    c, length, k = layout.num_chunks, layout.chunk, layout.episodes
    k_reset, k_step, k_noise = jax.random.split(key, 3)
    obs, env_state = jax.vmap(env.reset)(jax.random.split(k_reset, n), tasks)
    step_keys = jax.random.split(k_step, c * length * n)
    step_keys = step_keys.reshape((c, length, n) + step_keys.shape[1:])
    draw = jax.random.normal if spec.continuous else jax.random.gumbel
    noise = draw(k_noise, (c, length, n, spec.action_dim))
    log_std = params.get("log_std")
    env_step = jax.vmap(env.step)

    def step(carry: TrialCarry, xs):
        key_t, noise_t = xs
        x = jnp.concatenate([carry.obs, carry.prev], axis=-1)
        core, out, value = rl2_network.step(params, carry.core, x, activation)
        action, logp = _policy_action(spec, out, noise_t, log_std, greedy)
        next_obs, env_state, reward, terminated, truncated, info = env_step(
            key_t, carry.env_state, env_action(spec, action), tasks
        )
        reward = reward.astype(jnp.float32)
        done = jnp.logical_or(terminated, truncated)
        ended = done.astype(jnp.float32)
        episode_return = carry.running + reward
        # one_hot of an index >= k is all zeros: episodes after the k-th are not recorded
        slot = jax.nn.one_hot(carry.count, k)
        returns = carry.returns + slot * (ended * episode_return)[:, None]
        succeeded = _episode_success(info, n)
        successes = carry.successes + slot * (ended * succeeded)[:, None]
        new = TrialCarry(
            env_state=env_state,
            obs=next_obs.reshape(n, -1).astype(jnp.float32),
            prev=jnp.concatenate([_action_features(spec, action), reward[:, None], ended[:, None]], axis=-1),
            core=core,
            running=episode_return * (1.0 - ended),
            count=carry.count + done.astype(jnp.int32),
            returns=returns,
            successes=successes,
        )
        record = {"inputs": x, "action": action, "logp": logp, "value": value, "reward": reward, "done": done}
        return new, record

    def chunk(carry: TrialCarry, xs):
        start = carry.core  # stored for the loss's replay of this chunk
        carry, records = jax.lax.scan(step, carry, xs)
        return carry, (start, records)

    init = TrialCarry(
        env_state=env_state,
        obs=obs.reshape(n, -1).astype(jnp.float32),
        prev=jnp.zeros((n, spec.action_dim + 2), jnp.float32),  # no previous step at trial start
        core=rl2_network.initial_carry(params, n),
        running=jnp.zeros((n,), jnp.float32),
        count=jnp.zeros((n,), jnp.int32),
        returns=jnp.zeros((n, k), jnp.float32),
        successes=jnp.zeros((n, k), jnp.float32),
    )
    final, (carries, records) = jax.lax.scan(chunk, init, (step_keys, noise))
    traj = jax.tree.map(lambda x: x.reshape((c * length,) + x.shape[2:]), records)
    _, _, last_value = rl2_network.step(params, final.core, jnp.concatenate([final.obs, final.prev], -1), activation)
    return {
        **traj,
        "carries": carries,
        "last_value": last_value,
        "episode_returns": final.returns,
        "episode_success": final.successes,
        "trial_return": jnp.sum(traj["reward"], axis=0),
    }


# --- advantages --------------------------------------------------------------------------------------
def trial_gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    trial_end: jax.Array,
    gamma: float,
    gae_lambda: float,
    rule: str,
) -> tuple[jax.Array, jax.Array]:
    """GAE where only ``trial_end`` masks; ``rule`` says whether a trial end bootstraps.

    ``next_values[t]`` is the value of the input that follows step ``t`` (the next
    episode's first input after an in-trial episode end). Episode ends are not an
    argument: inside a trial they cut nothing.
    """
    terminal = trial_end if rule == "terminal" else jnp.zeros_like(trial_end)
    return gae(rewards, values, next_values, terminal, trial_end, gamma, gae_lambda)


def trial_advantages(traj: dict, last_value: jax.Array, config: RL2Config) -> tuple[jax.Array, jax.Array]:
    """Advantages and targets ``[T, N]`` for one trial per column: the last step is the only boundary.

    ``traj["done"]`` (in-trial episode ends) is deliberately not used.
    """
    values = traj["value"]
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    trial_end = jnp.zeros(values.shape, bool).at[-1].set(True)
    return trial_gae(traj["reward"], values, next_values, trial_end, config.gamma, config.gae_lambda, config.trial_end)


# --- loss --------------------------------------------------------------------------------------------
@struct.dataclass
class TrialBatch:
    """Trials cut into chunks: step fields ``[C, L, N, ...]``, ``carries [C, N, width]``."""

    carries: jax.Array
    inputs: jax.Array
    action: jax.Array
    old_logp: jax.Array
    old_value: jax.Array
    advantage: jax.Array
    target: jax.Array

    def take_envs(self, index: jax.Array) -> TrialBatch:
        """The trials of the envs in ``index`` (a minibatch); the env axis is 1 for carries, 2 for steps."""
        steps = jax.tree.map(lambda x: jnp.take(x, index, axis=2), self.replace(carries=None))
        return steps.replace(carries=jnp.take(self.carries, index, axis=1))


def make_batch(traj: dict, advantages: jax.Array, targets: jax.Array, layout: TrialLayout) -> TrialBatch:
    chunked = lambda x: x.reshape((layout.num_chunks, layout.chunk) + x.shape[1:])  # noqa: E731
    return TrialBatch(
        carries=traj["carries"],
        inputs=chunked(traj["inputs"]),
        action=chunked(traj["action"]),
        old_logp=chunked(traj["logp"]),
        old_value=chunked(traj["value"]),
        advantage=chunked(advantages),
        target=chunked(targets),
    )


def rl2_loss(params: Any, batch: TrialBatch, config: RL2Config) -> tuple[jax.Array, dict]:
    """PPO-clip loss of a minibatch of trials, each chunk replayed from its stored carry."""
    cfg = config
    outs, values = rl2_network.replay(params, batch.carries, batch.inputs, cfg.activation)
    logp, entropy = log_prob_entropy(outs, batch.action, params.get("log_std"))
    log_ratio = logp - batch.old_logp
    ratio = jnp.exp(log_ratio)
    advantage = batch.advantage
    if cfg.normalize_advantages:
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    clipped_ratio = jnp.clip(ratio, 1.0 - cfg.clip_eps, 1.0 + cfg.clip_eps)
    actor_loss = -jnp.mean(jnp.minimum(ratio * advantage, clipped_ratio * advantage))
    value_err = jnp.square(values - batch.target)
    if cfg.clip_value:
        clipped = batch.old_value + jnp.clip(values - batch.old_value, -cfg.clip_eps, cfg.clip_eps)
        value_err = jnp.maximum(value_err, jnp.square(clipped - batch.target))
    value_loss = 0.5 * jnp.mean(value_err)
    entropy = jnp.mean(entropy)
    total = actor_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
    metrics = {
        "actor_loss": actor_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
        "clip_frac": jnp.mean((jnp.abs(ratio - 1.0) > cfg.clip_eps).astype(jnp.float32)),
    }
    return total, metrics


def make_optimizer(config: RL2Config) -> optax.GradientTransformation:
    """Adam (eps 1e-5) after global-norm clipping; lr linear to 0 over every minibatch step with ``anneal_lr``."""
    steps = config.num_trials * config.update_epochs * config.num_minibatches
    lr = optax.linear_schedule(config.lr, 0.0, steps) if config.anneal_lr else config.lr
    adam = optax.adam(lr, eps=1e-5)
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), adam) if config.max_grad_norm > 0 else adam


def learn(params, opt_state, batch: TrialBatch, key, config: RL2Config, tx) -> tuple[Any, Any, dict]:
    """``update_epochs`` passes over the trials in ``num_minibatches`` minibatches of envs."""
    n = batch.carries.shape[1]
    grad_fn = jax.value_and_grad(rl2_loss, has_aux=True)

    def minibatch(carry, index):
        params, opt_state = carry
        (_, metrics), grads = grad_fn(params, batch.take_envs(index), config)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), metrics

    def epoch(carry, key):
        order = jax.random.permutation(key, n).reshape(config.num_minibatches, -1)
        return jax.lax.scan(minibatch, carry, order)

    (params, opt_state), metrics = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, config.update_epochs))
    return params, opt_state, jax.tree.map(jnp.mean, metrics)


def teacher_feedback(traj: dict, advantages: jax.Array) -> Feedback:
    """One entry per env: mean and best of its k episode returns, the share of its episodes that succeeded
    (0 for envs without a success flag), PVL score (mean positive advantage)."""
    returns = traj["episode_returns"]
    return Feedback(
        returns=jnp.mean(returns, axis=1),
        success=jnp.mean(traj["episode_success"], axis=1),
        mask=jnp.ones(returns.shape[:1], bool),
        scores=jnp.mean(jnp.maximum(advantages, 0.0), axis=0),
        max_returns=jnp.max(returns, axis=1),
    )


# --- training ----------------------------------------------------------------------------------------
def make_train(
    env: Any, config: RL2Config, teacher: Any = None, *, env_params: Any = None
) -> Callable[[jax.Array], tuple[RL2State, dict]]:
    """``train(key) -> (state, metrics)``, jitted; the whole run is one ``lax.scan`` over trials.

    ``train.init(key) -> RL2State`` and ``train.update(state, None) -> (state, metrics of one trial)``
    (both unjitted) are its two pieces, for running the trials in chunks; ``train.layout`` is the trial shape.

    ``env_params`` (default ``env.default_params``) only fixes the horizon ``H``;
    tasks come from ``teacher`` (default :class:`curricula.simple.DomainRandomization`).
    Metrics have leading axis ``num_trials``: ``episode_returns [.., k]`` (mean over
    envs of the return of episode j of the trial), ``episode_success [.., k]`` (its success rate),
    ``trial_return``, the losses, ``timesteps``.
    Raises ``ValueError`` when ``bptt_chunk`` does not divide the trial length.
    """
    cfg = config
    layout = trial_layout(cfg, env, env_params)
    spec = EnvSpec.of(env)
    teacher = DomainRandomization() if teacher is None else teacher
    task_space = env.task_space  # built here, not under jit (an env's default params may be made with jnp)
    tx = make_optimizer(cfg)
    n = cfg.num_envs

    def update(state: RL2State, _) -> tuple[RL2State, dict]:
        key, k_teacher, k_trial, k_learn = jax.random.split(state.key, 4)
        teacher_state, tasks = teacher.sample(state.teacher_state, k_teacher, n)
        tasks = with_horizon(tasks, layout.horizon)
        traj = run_trial(state.params, env, tasks, k_trial, layout, cfg.activation)
        advantages, targets = trial_advantages(traj, traj["last_value"], cfg)
        batch = make_batch(traj, advantages, targets, layout)
        params, opt_state, losses = learn(state.params, state.opt_state, batch, k_learn, cfg, tx)
        teacher_state = teacher.update(teacher_state, tasks, teacher_feedback(traj, advantages))
        trial = state.trial + 1
        metrics = {
            "episode_returns": jnp.mean(traj["episode_returns"], axis=0),
            "episode_success": jnp.mean(traj["episode_success"], axis=0),
            "trial_return": jnp.mean(traj["trial_return"]),
            **losses,
            "timesteps": trial * (n * layout.trial_steps),
        }
        return RL2State(params, opt_state, teacher_state, key, trial), metrics

    def init(key: jax.Array) -> RL2State:
        k_net, k_teacher, k_run = jax.random.split(key, 3)
        params = rl2_network.init_network(
            k_net,
            input_dim(spec),
            spec.action_dim,
            cell=cfg.cell,
            hidden=cfg.hidden_size,
            encoder_widths=cfg.encoder_widths,
            head_widths=cfg.head_widths,
            continuous=spec.continuous,
            context_window=cfg.context_window,
            num_layers=cfg.num_layers,
            num_heads=cfg.num_heads,
        )
        return RL2State(
            params=params,
            opt_state=tx.init(params),
            teacher_state=teacher.init(k_teacher, task_space),
            key=k_run,
            trial=jnp.zeros((), jnp.int32),
        )

    @jax.jit
    def train(key: jax.Array) -> tuple[RL2State, dict]:
        return jax.lax.scan(update, init(key), None, length=cfg.num_trials)

    train.layout = layout  # the static trial shape, for callers and tests
    # the pieces, unjitted, for a caller that runs the trials in chunks (metarl.in_context.runner):
    # scanning ``update`` over ``num_trials`` from ``init(key)`` is ``train(key)``
    train.init, train.update = init, update
    return train


def evaluate(
    params: Any,
    env: Any,
    tasks: Any,
    key: jax.Array,
    episodes_per_trial: int,
    *,
    config: RL2Config | None = None,
    greedy: bool = False,
    env_params: Any = None,
) -> jax.Array:
    """Returns ``[num_tasks, k]``: episode j's return in one trial per held-out task (carry kept across episodes).

    ``tasks`` is a batched params pytree; its horizons are set to the env's
    (``env_params`` or the default). ``config`` supplies the activation (the
    cell is read from ``params``). Actions are sampled, or the mode with ``greedy``.
    """
    cfg = RL2Config() if config is None else config
    k, horizon = int(episodes_per_trial), env_horizon(env, env_params)
    if k < 1:
        raise ValueError(f"RL2 evaluate: episodes_per_trial must be positive, got {episodes_per_trial}")
    layout = TrialLayout(horizon, k, k * horizon)  # one chunk: nothing is replayed, so bptt_chunk does not apply
    tasks = with_horizon(tasks, layout.horizon)
    return _evaluate(params, env, tasks, key, layout, cfg.activation, greedy)


@functools.partial(jax.jit, static_argnums=(1, 4, 5, 6))
def _evaluate(params, env, tasks, key, layout, activation, greedy):
    return run_trial(params, env, tasks, key, layout, activation, greedy)["episode_returns"]
