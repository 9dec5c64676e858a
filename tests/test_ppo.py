"""PPO: loss equivalence, pluggable drift/optimizer/teacher, validation, learning."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import envs
from curricula.base import Feedback
from metarl.agents import networks
from metarl.agents.ppo import METRIC_NAMES, PPO, PPOConfig, PPOHooks, make_train
from metarl.agents.ppo_loss import Batch, pack

TINY = PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3, update_epochs=2, num_minibatches=2)


@pytest.fixture(scope="module")
def cartpole():
    return envs.make("CartPole-v1")


# --- the PPO-clip drift is exactly the clipped surrogate -------------------------------
def _fixed_batch(agent: PPO, params, key):
    k_obs, k_act, k_old, k_adv = jax.random.split(key, 4)
    b = 64
    obs = jax.random.normal(k_obs, (b, agent.obs_dim))
    actions = jax.random.bernoulli(k_act, 0.5, (b,)).astype(jnp.float32)
    logits, _ = networks.apply_mlp(params["actor"], obs, "tanh")
    logp_now = jax.nn.log_softmax(logits)[jnp.arange(b), actions.astype(jnp.int32)]
    # old log-probs off by up to +-0.5 so that many ratios fall outside [0.8, 1.2]
    old_logp = logp_now + jax.random.uniform(k_old, (b,), minval=-0.5, maxval=0.5)
    adv = jax.random.normal(k_adv, (b,))
    zeros = jnp.zeros((b,))
    batch = Batch(obs=obs, action=actions.astype(jnp.int32), old_logp=old_logp, old_value=zeros, advantage=adv, target=zeros)
    return batch, obs, actions.astype(jnp.int32), old_logp, adv


def test_ppo_clip_drift_matches_hand_written_clipped_surrogate(cartpole):
    env, env_params = cartpole
    config = dataclasses.replace(TINY, ent_coef=0.0, vf_coef=0.0, clip_eps=0.2)
    agent = PPO(config, env, env_params)
    params = agent.init(jax.random.key(0)).params
    # Make the policy non-trivial so ratios differ per sample.
    params = jax.tree.map(lambda p: p * 30.0, params)
    batch, obs, actions, old_logp, adv = _fixed_batch(agent, params, jax.random.key(1))

    def clipped_surrogate(params):
        logits, _ = networks.apply_mlp(params["actor"], obs, "tanh")
        logp = jax.nn.log_softmax(logits)[jnp.arange(obs.shape[0]), actions]
        ratio = jnp.exp(logp - old_logp)
        a = (adv - adv.mean()) / (adv.std() + 1e-8)
        return -jnp.mean(jnp.minimum(ratio * a, jnp.clip(ratio, 0.8, 1.2) * a))

    def ppo_loss(params):
        total, (aux, _) = agent.loss(params, batch, {}, jnp.float32(0.3))
        return total, aux

    (loss, aux), grads = jax.jit(jax.value_and_grad(ppo_loss, has_aux=True))(params)
    ref_loss, ref_grads = jax.jit(jax.value_and_grad(clipped_surrogate))(params)
    assert 0.1 < float(aux["clip_frac"]) < 0.9  # both branches of the clip are exercised
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6)
    np.testing.assert_allclose(aux["actor_loss"], ref_loss, rtol=1e-6)
    flat, ref_flat = jax.tree.leaves(grads["actor"]), jax.tree.leaves(ref_grads["actor"])
    assert any(float(jnp.abs(g).max()) > 1e-4 for g in flat)
    for g, r in zip(flat, ref_flat):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-7)


# --- outputs and composition ------------------------------------------------------------
def test_metrics_shapes_and_float32(cartpole):
    env, env_params = cartpole
    train = make_train(TINY, env, env_params)
    state, metrics = jax.vmap(train)(jax.random.split(jax.random.key(0), 2))
    assert set(metrics) == set(METRIC_NAMES)
    for name, value in metrics.items():
        assert value.shape == (2, TINY.num_updates), name
        assert value.dtype in (jnp.float32, jnp.int32), name
    np.testing.assert_array_equal(metrics["timesteps"][0], [64, 128, 192])
    assert all(x.dtype != jnp.float64 for x in jax.tree.leaves(state) if hasattr(x, "dtype"))
    # CartPole with a random-ish policy ends episodes in every 16-step rollout of 4 envs.
    assert np.all(np.isfinite(metrics["episode_return"][:, -1]))


def test_run_in_segments_equals_one_run(cartpole):
    env, env_params = cartpole
    agent = PPO(TINY, env, env_params)
    state = agent.init(jax.random.key(3))
    run = jax.jit(agent.run, static_argnums=1)
    full_state, full = run(state, 2)
    mid, first = run(state, 1)
    end_state, rest = run(mid, 1)
    np.testing.assert_allclose(rest["actor_loss"], full["actor_loss"][1:], rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), end_state.params, full_state.params)


def test_per_env_task_batch_and_swap(cartpole):
    env, env_params = cartpole
    tasks = env.task_space.sample_batch(jax.random.key(0), TINY.num_envs)
    agent = PPO(TINY, env, tasks)
    state = agent.init(jax.random.key(1))
    np.testing.assert_allclose(state.env_params.gravity, tasks.gravity)
    swapped = state.replace(env_params=env.task_space.sample_batch(jax.random.key(2), TINY.num_envs))
    new_state, _ = jax.jit(agent.update)(swapped)
    np.testing.assert_allclose(new_state.env_params.gravity, swapped.env_params.gravity)


@dataclasses.dataclass(frozen=True)
class SquaredDrift:
    """A drift with a meta-parameter: scale * (r - 1)^2 (a population = leading axis)."""

    name: str = "squared"

    def init(self, key):
        return {"scale": jnp.float32(1.0)}

    def __call__(self, meta_params, ratio, advantage, progress):
        return meta_params["scale"] * jnp.square(ratio - 1.0) * (1.0 + progress)


def test_population_of_objective_params_vmaps(cartpole):
    env, env_params = cartpole
    train = make_train(TINY, env, env_params, drift=SquaredDrift())
    population = {"scale": jnp.array([0.0, 1.0, 100.0], jnp.float32)}
    keys = jnp.stack([jax.random.key(0)] * 3)
    _, metrics = jax.vmap(train)(keys, population)
    assert metrics["actor_loss"].shape == (3, TINY.num_updates)
    # Same seed, different drift scale: the learning differs.
    assert not np.allclose(metrics["approx_kl"][0], metrics["approx_kl"][2])


class ScaledSignSGD:
    """A stand-in learned optimizer: meta-parameter = log learning rate.

    It checks the extra arguments PPO must pass (at trace time).
    """

    def init(self, key):
        return {"log_lr": jnp.log(jnp.float32(1e-3))}

    def transform(self, meta_params):
        def init_fn(params):
            return {"steps": jnp.zeros((), jnp.int32)}

        def update_fn(updates, state, params=None, *, progress, epoch_progress, key, dormancy):
            assert progress.shape == () and epoch_progress.shape == ()
            assert jax.tree.structure(dormancy) == jax.tree.structure(params)
            for leaf, score in zip(jax.tree.leaves(params), jax.tree.leaves(dormancy)):
                assert score.shape == leaf.shape[-1:]
            lr = jnp.exp(meta_params["log_lr"])
            step = jax.tree.map(lambda g: -lr * jnp.sign(g) * (1.0 - 0.5 * epoch_progress), updates)
            return step, {"steps": state["steps"] + 1}

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def test_learned_optimizer_population_vmaps(cartpole):
    env, env_params = cartpole
    train = make_train(TINY, env, env_params, optimizer=ScaledSignSGD())
    population = {"log_lr": jnp.log(jnp.array([1e-4, 1e-2], jnp.float32))}
    keys = jnp.stack([jax.random.key(0)] * 2)
    state, metrics = jax.vmap(train)(keys, None, population)
    steps = TINY.num_updates * TINY.update_epochs * TINY.num_minibatches
    np.testing.assert_array_equal(state.opt_state["steps"], [steps, steps])
    assert not np.allclose(metrics["approx_kl"][0], metrics["approx_kl"][1])


def test_plain_optax_optimizer_is_accepted(cartpole):
    env, env_params = cartpole
    train = make_train(TINY, env, env_params, optimizer=optax.sgd(1e-2, momentum=0.9))
    _, metrics = train(jax.random.key(0))
    assert np.all(np.isfinite(metrics["value_loss"]))


def test_dormancy_scores_average_one():
    params = networks.init_actor_critic(jax.random.split(jax.random.key(0)), 3, 2, (8, 8), continuous=True)
    obs = jax.random.normal(jax.random.key(1), (32, 3))
    _, a_h = networks.apply_mlp(params["actor"], obs, "relu")
    _, c_h = networks.apply_mlp(params["critic"], obs, "relu")
    scores = networks.dormancy_scores(params, a_h, c_h)
    np.testing.assert_allclose(jnp.mean(scores["actor"]["hidden_0"]["kernel"]), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(scores["critic"]["head"]["bias"], jnp.ones(1))
    np.testing.assert_array_equal(scores["log_std"], jnp.ones(2))
    manual = jnp.mean(jnp.abs(a_h[1]), 0)
    np.testing.assert_allclose(scores["actor"]["hidden_1"]["bias"], manual / manual.mean(), rtol=1e-5)


# --- teachers -----------------------------------------------------------------------------
class RecordingTeacher:
    """Uniform tasks; its state records what PPO fed back (to check the protocol)."""

    def init(self, key, task_space):
        self.task_space = task_space
        return {"updates": jnp.zeros((), jnp.int32), "masked_mean": jnp.float32(jnp.nan), "entries": jnp.int32(0),
                "scores_positive": jnp.bool_(True)}

    def sample(self, state, key, n):
        return state, self.task_space.sample_batch(key, n)

    def update(self, state, tasks, feedback: Feedback):
        m = feedback.mask.astype(jnp.float32)
        assert jax.tree.leaves(tasks)[0].shape[0] == feedback.returns.shape[0]
        mean = jnp.sum(feedback.returns * m) / jnp.maximum(m.sum(), 1.0)
        return {
            "updates": state["updates"] + 1,
            "masked_mean": mean,
            "entries": jnp.int32(feedback.returns.shape[0]),
            "scores_positive": state["scores_positive"] & jnp.all(feedback.scores >= 0),
        }


def test_teacher_episode_mode_feedback_per_finished_episode(cartpole):
    env, env_params = cartpole
    config = dataclasses.replace(TINY, task_resample="episode")
    train = make_train(config, env, env_params, teacher=RecordingTeacher())
    state, metrics = train(jax.random.key(0))
    ts = state.teacher_state
    assert int(ts["updates"]) == config.num_updates
    assert int(ts["entries"]) == config.num_steps * config.num_envs
    assert bool(ts["scores_positive"])
    # The teacher's masked mean of the last update is the reported episode return.
    np.testing.assert_allclose(ts["masked_mean"], metrics["episode_return"][-1], rtol=1e-6)


def test_teacher_rollout_mode_resets_to_sampled_tasks(cartpole):
    env, env_params = cartpole
    train = make_train(TINY, env, env_params, teacher=RecordingTeacher())
    state, _ = train(jax.random.key(0))
    assert int(state.teacher_state["entries"]) == TINY.num_envs
    assert env.task_space.contains(jax.tree.map(lambda x: x[0], state.env_params))
    assert float(jnp.std(state.env_params.gravity)) > 0  # one task per env


# --- robust PLR / ACCEL: no gradient on masked envs ------------------------------------------
class MaskingTeacher(RecordingTeacher):
    """RecordingTeacher with a fixed per-env ``train_mask``."""

    def __init__(self, mask):
        self.mask = jnp.asarray(mask, jnp.float32)

    def train_mask(self, state, n):
        return self.mask


def test_fully_masked_update_leaves_params_and_opt_state_unchanged(cartpole):
    env, env_params = cartpole
    agent = PPO(TINY, env, env_params, teacher=MaskingTeacher(jnp.zeros(TINY.num_envs)))
    state = agent.init(jax.random.key(0))
    new_state, metrics = jax.jit(agent.update)(state)
    for before, after in zip(jax.tree.leaves((state.params, state.opt_state)),
                             jax.tree.leaves((new_state.params, new_state.opt_state))):
        np.testing.assert_array_equal(before, after)
    assert np.isnan(float(metrics["actor_loss"]))  # no loss was computed
    assert int(new_state.teacher_state["updates"]) == 1  # feedback still reaches the teacher
    assert int(new_state.teacher_state["entries"]) == TINY.num_envs
    assert int(new_state.update_step) == 1


def test_unmasked_update_trains_and_matches_teacher_without_mask(cartpole):
    env, env_params = cartpole
    ones = PPO(TINY, env, env_params, teacher=MaskingTeacher(jnp.ones(TINY.num_envs)))
    plain = PPO(TINY, env, env_params, teacher=RecordingTeacher())
    assert ones.masked and not plain.masked
    state = ones.init(jax.random.key(0))
    plain.init(jax.random.key(0))  # gives the plain teacher its task space
    masked_state, masked_metrics = jax.jit(ones.update)(state)
    plain_state, plain_metrics = jax.jit(plain.update)(state)
    changed = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(masked_state.params))]
    assert all(changed)
    # An all-ones mask is the plain loss up to summation order.
    for a, b in zip(jax.tree.leaves(masked_state.params), jax.tree.leaves(plain_state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(masked_metrics["actor_loss"], plain_metrics["actor_loss"], rtol=1e-4, atol=1e-7)


def test_half_masked_loss_equals_loss_on_the_unmasked_half(cartpole):
    env, env_params = cartpole
    config = dataclasses.replace(TINY, ent_coef=0.01, vf_coef=0.5)
    masked = PPO(config, env, env_params, teacher=MaskingTeacher(jnp.ones(config.num_envs)))
    plain = PPO(config, env, env_params)
    params = jax.tree.map(lambda p: p * 30.0, plain.init(jax.random.key(0)).params)
    batch, *_ = _fixed_batch(plain, params, jax.random.key(1))
    # Give values/targets something to fit so the critic term matters.
    b = batch.obs.shape[0]
    batch = batch.replace(old_value=jax.random.normal(jax.random.key(2), (b,)),
                          target=jax.random.normal(jax.random.key(3), (b,)))
    weight = (jnp.arange(b) % 2).astype(jnp.float32)
    weighted = batch.replace(weight=weight)
    kept = jax.tree.map(lambda x: x[weight > 0], batch)

    def loss(agent, b):
        return jax.value_and_grad(lambda p: agent.loss(p, b, {}, jnp.float32(0.3)), has_aux=True)(params)

    (total, (aux, dormancy)), grads = jax.jit(lambda b: loss(masked, b))(weighted)
    (ref_total, (ref_aux, ref_dormancy)), ref_grads = jax.jit(lambda b: loss(plain, b))(kept)
    (all_total, _), _ = jax.jit(lambda b: loss(plain, b))(batch)
    assert abs(float(all_total) - float(ref_total)) > 1e-3  # the masked half matters
    np.testing.assert_allclose(total, ref_total, rtol=1e-5)
    for name in aux:
        np.testing.assert_allclose(aux[name], ref_aux[name], rtol=1e-5, atol=1e-7, err_msg=name)
    for a, b in zip(jax.tree.leaves((grads, dormancy)), jax.tree.leaves((ref_grads, ref_dormancy))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_robust_plr_trains_only_on_replayed_batches_under_jit(cartpole):
    from curricula.plr import PLR

    env, env_params = cartpole
    config = dataclasses.replace(TINY, total_timesteps=TINY.batch_size * 12)
    teacher = PLR(capacity=8, replay_prob=0.7, min_fill_ratio=0.25, robust=True, temperature=1.0)
    train = jax.jit(make_train(config, env, env_params, teacher=teacher))
    state, metrics = train(jax.random.key(0))
    trained = np.isfinite(np.asarray(metrics["actor_loss"]))
    # The first batches are new levels (buffer not yet filled): no gradient; replays later train.
    assert not trained[0] and trained.any() and not trained.all(), trained
    assert int(state.teacher_state.buffer.size) >= 2
    assert np.all(np.isfinite(metrics["episode_return"][-1]))


# --- the batch: named arrays, shuffled as one matrix ---------------------------------------
def test_pack_round_trips_named_arrays_with_their_dtypes():
    b = 6
    batch = Batch(obs=jnp.arange(b * 3, dtype=jnp.float32).reshape(b, 3), action=jnp.arange(b, dtype=jnp.int32),
                  old_logp=-jnp.ones(b), old_value=jnp.zeros(b), advantage=jnp.linspace(-1, 1, b),
                  target=jnp.ones(b), weight=(jnp.arange(b) % 2).astype(jnp.float32))
    packed, unpack = pack(batch)
    assert packed.shape == (b, 3 + 1 + 4 + 1) and packed.dtype == jnp.float32
    rows = unpack(packed[::-1])  # a shuffle of rows unpacks to the same shuffle of every field
    for field in ("obs", "action", "old_logp", "old_value", "advantage", "target", "weight"):
        np.testing.assert_array_equal(getattr(rows, field), getattr(batch, field)[::-1], err_msg=field)
    assert rows.action.dtype == jnp.int32
    unweighted, unpack_unweighted = pack(batch.replace(weight=None))
    assert unweighted.shape[1] == packed.shape[1] - 1 and unpack_unweighted(unweighted).weight is None


# --- the public policy ----------------------------------------------------------------------
def _trained(env, env_params, config, seed=0):
    agent = PPO(config, env, env_params)
    state, _ = jax.jit(agent.run, static_argnums=1)(agent.init(jax.random.key(seed)), config.num_updates)
    return agent, state


def test_greedy_policy_is_the_argmax_of_the_trained_actor(cartpole):
    env, env_params = cartpole
    agent, state = _trained(env, env_params, dataclasses.replace(TINY, normalize_obs=True))
    obs = jax.random.normal(jax.random.key(1), (32, 4))
    # the greedy act evaluators used before the policy API: normalise, actor, arg-max
    x = jnp.clip((obs - state.obs_rms.mean) / jnp.sqrt(state.obs_rms.var + 1e-8), -10.0, 10.0)
    expected = jnp.argmax(networks.apply_mlp(state.params["actor"], x, "tanh")[0], axis=-1)
    act = jax.jit(agent.policy(greedy=True))
    actions = act(PPO.policy_params(state), obs, jax.random.key(2))
    np.testing.assert_array_equal(actions, expected)
    assert actions.dtype == jnp.int32
    sampled = jax.jit(agent.policy())(PPO.policy_params(state), jnp.zeros((4000, 4)), jax.random.key(3))
    logits = networks.apply_mlp(state.params["actor"], jnp.clip(-state.obs_rms.mean / jnp.sqrt(state.obs_rms.var + 1e-8),
                                                                 -10, 10)[None], "tanh")[0][0]
    np.testing.assert_allclose(np.bincount(np.asarray(sampled), minlength=2) / 4000, jax.nn.softmax(logits), atol=0.03)


def test_gaussian_policy_mean_is_clipped_and_shaped_for_the_env():
    env, env_params = envs.make("Pendulum-v1")
    agent = PPO(TINY, env, env_params)
    state = agent.init(jax.random.key(0))
    params = dict(state.params, actor={**state.params["actor"], "head": jax.tree.map(
        lambda p: 1000.0 * p, state.params["actor"]["head"])})  # means far outside the [-2, 2] torque box
    obs = jax.random.normal(jax.random.key(1), (16, 3))
    mean = networks.apply_mlp(params["actor"], obs, "tanh")[0]
    expected = jnp.clip(mean, -2.0, 2.0).reshape(16, 1)
    pp = {"params": params, "obs_rms": state.obs_rms}
    greedy = agent.policy(greedy=True)(pp, obs, jax.random.key(0))
    np.testing.assert_allclose(greedy, expected)
    assert np.any(np.abs(np.asarray(mean)) > 2.0)
    sampled = agent.policy()(pp, obs, jax.random.key(0))
    assert sampled.shape == (16, 1) and float(jnp.max(jnp.abs(sampled))) <= 2.0


# --- hooks ----------------------------------------------------------------------------------
class CountingHooks(PPOHooks):
    """Counts updates in the hook state and pulls the critic head's bias towards 5."""

    def __init__(self, coef):
        self.coef = coef

    def init(self, state, key):
        return state.replace(hook_state={"updates": jnp.zeros((), jnp.int32)})

    def loss_extra(self, params, batch, hook_state):
        return self.coef * jnp.sum(jnp.square(params["critic"]["head"]["bias"] - 5.0))

    def after_update(self, state):
        updates = state.hook_state["updates"] + 1
        return state.replace(hook_state={"updates": updates}), {"hook_updates": updates}


def test_hooks_are_called_and_their_loss_term_is_trained(cartpole):
    env, env_params = cartpole
    plain = make_train(TINY, env, env_params)
    inert = make_train(TINY, env, env_params, hooks=PPOHooks())
    pulled = make_train(TINY, env, env_params, hooks=CountingHooks(coef=10.0))
    key = jax.random.key(0)
    (s_plain, m_plain), (s_inert, _), (s_pulled, m_pulled) = plain(key), inert(key), pulled(key)
    # default hooks change nothing
    for a, b in zip(jax.tree.leaves(s_plain.params), jax.tree.leaves(s_inert.params)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m_pulled["hook_updates"], [1, 2, 3])
    assert int(s_pulled.hook_state["updates"]) == TINY.num_updates
    assert not np.array_equal(s_pulled.params["critic"]["head"]["bias"], s_plain.params["critic"]["head"]["bias"])
    # the hook's term is part of the minibatch loss
    hooked, agent = PPO(TINY, env, env_params, hooks=CountingHooks(coef=10.0)), PPO(TINY, env, env_params)
    params = agent.init(key).params
    batch = _fixed_batch(agent, params, jax.random.key(1))[0]
    total, _ = hooked.loss(params, batch, {}, jnp.float32(0.3), {"updates": 0})
    plain_total, _ = agent.loss(params, batch, {}, jnp.float32(0.3))
    np.testing.assert_allclose(total - plain_total, 10.0 * 25.0, rtol=1e-5)


def test_reset_envs_starts_fresh_episodes_of_new_tasks(cartpole):
    env, env_params = cartpole
    agent = PPO(TINY, env, env_params)
    state, _ = jax.jit(agent.update)(agent.init(jax.random.key(0)))
    tasks = env.task_space.sample_batch(jax.random.key(1), TINY.num_envs)
    fresh = agent.reset_envs(state, jax.random.key(2), tasks)
    np.testing.assert_allclose(fresh.env_params.gravity, tasks.gravity)
    np.testing.assert_array_equal(fresh.env_state.episode_length, 0)
    assert fresh.obs.shape == state.obs.shape


# --- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, message",
    [
        ({"num_minibatches": 3}, "does not divide"),
        ({"total_timesteps": -5}, "total_timesteps must be positive"),
        ({"num_steps": 12.5}, "num_steps must be an integer"),
        ({"action_dist": "gaussian"}, "needs a continuous action space"),
        ({"activation": "gelu"}, "activation"),
        ({"gamma": 1.5}, "gamma"),
        ({"task_resample": "never"}, "task_resample"),
    ],
)
def test_bad_config_raises_one_line(cartpole, changes, message):
    env, env_params = cartpole
    with pytest.raises(ValueError, match=message) as info:
        PPO(dataclasses.replace(TINY, **changes), env, env_params)
    assert "\n" not in str(info.value)


def test_integral_float_step_counts_are_accepted():
    assert PPOConfig(total_timesteps=1e6).total_timesteps == 1_000_000


def test_task_batch_of_wrong_size_raises(cartpole):
    env, _ = cartpole
    tasks = env.task_space.sample_batch(jax.random.key(0), TINY.num_envs + 1)
    with pytest.raises(ValueError, match="num_envs"):
        PPO(TINY, env, tasks)


# --- the rollout's preset resets reproduce gymnax's auto-reset step exactly ---------------
@pytest.mark.parametrize("episode_tasks", [False, True])
def test_rollout_matches_gymnax_step(cartpole, episode_tasks):
    from envs.wrappers import LogWrapper, TaskResetWrapper

    env, env_params = cartpole
    config = dataclasses.replace(TINY, num_steps=64, total_timesteps=256, task_resample="episode")
    teacher = RecordingTeacher() if episode_tasks else None
    agent = PPO(config, env, env.task_space.sample_batch(jax.random.key(5), config.num_envs), teacher=teacher)
    assert agent.preset_resets
    state = agent.init(jax.random.key(0))
    draws = agent.rollout.draw(state.key)
    traj, _, _ = agent.rollout.run(
        state.params, state.obs_rms, state.env_state, state.obs, state.env_params, draws["noise"], draws["step"]
    )
    reference = LogWrapper(TaskResetWrapper(env) if episode_tasks else env)
    env_state, obs = state.env_state, state.obs
    for t in range(config.num_steps):
        np.testing.assert_allclose(traj["obs"][t], obs, rtol=1e-5, atol=1e-5)  # XLA fusion rounding
        obs, env_state, reward, terminated, truncated, info = jax.vmap(reference.step)(
            draws["step"][t], env_state, traj["action"][t], state.env_params
        )
        np.testing.assert_array_equal(traj["reward"][t], reward)
        np.testing.assert_array_equal(traj["done"][t], terminated | truncated)
        np.testing.assert_allclose(traj["final_obs"][t], info["final_observation"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(traj["episode_return"][t], info["returned_episode_return"])
    assert int(traj["episode_end"].sum()) > 0  # the comparison covered resets


# --- learning -------------------------------------------------------------------------------
@pytest.mark.slow
def test_ppo_solves_cartpole_four_vmapped_seeds(cartpole):
    env, env_params = cartpole
    config = PPOConfig(total_timesteps=500_000)  # PureJaxRL's CartPole setting
    _, metrics = jax.jit(jax.vmap(make_train(config, env, env_params)))(jax.random.split(jax.random.key(42), 4))
    final = np.asarray(metrics["episode_return"][:, -1])
    assert final.mean() >= 475, final


@pytest.mark.slow
def test_continuous_ppo_learns_pendulum():
    env, env_params = envs.make("Pendulum-v1")
    config = PPOConfig(lr=3e-3, num_envs=16, num_steps=64, total_timesteps=100_000, update_epochs=10,
                       num_minibatches=8, gamma=0.9, ent_coef=0.0, normalize_obs=True)
    _, metrics = jax.jit(jax.vmap(make_train(config, env, env_params)))(jax.random.split(jax.random.key(0), 2))
    returns = np.asarray(metrics["episode_return"])
    first = np.nanmean(returns[:, :10])  # initial, near-random Gaussian policy: about -1200
    final = returns[:, -10:].mean()
    assert first < -1000, first
    assert final > -950 and final > first + 250, (first, final)


@pytest.mark.slow
def test_ppo_reaches_90_percent_of_optimal_on_tabular_gridworld():
    import envs.gridworld  # noqa: F401  (registers gridworld-*)
    from envs import gridworld_dp

    env, env_params = envs.make("gridworld-sparse")  # 13x13, 50 steps, +1 / -1 terminal objects
    optimal = float(gridworld_dp.optimal_return(env, env_params))
    config = PPOConfig(lr=5e-4, num_envs=64, num_steps=20, total_timesteps=100_000, ent_coef=0.05)
    # Seed 0 of the split below; at this budget about half the seeds find the +1 object in time.
    key = jax.random.split(jax.random.key(0), 2)[0]
    _, metrics = jax.jit(make_train(config, env, env_params))(key)
    final = float(np.mean(metrics["episode_return"][-10:]))
    assert final >= 0.9 * optimal, (final, optimal)
