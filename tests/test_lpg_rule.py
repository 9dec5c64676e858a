"""LPG rule: shapes, the backward recurrence with episode resets, phi masking, TA inputs, the agent loss."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.lpg import LPGConfig, LPGInputs, LPGRule, lpg_agent_loss
from metarl.lpg import agents as A

T, B, M = 6, 3, 4


def _inputs(key, done=None, t=T):
    k = jax.random.split(key, 4)
    done = jnp.zeros((t, B), bool) if done is None else done
    return LPGInputs(
        reward=jax.random.normal(k[0], (t, B)),
        done=done,
        discount=0.99 * jnp.ones((t, B)),
        action_prob=jax.random.uniform(k[1], (t, B)),
        y=jax.nn.softmax(jax.random.normal(k[2], (t, B, M))),
        y_next=jax.nn.softmax(jax.random.normal(k[3], (t, B, M))),
    )


def _jitted(rule):
    # one compiled program per rule and shape (eager scans would recompile on every call)
    return jax.jit(rule.__call__)


def _slice(inputs, start, stop):
    return jax.tree.map(lambda x: x[start:stop], inputs)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_shapes_jit_and_population_vmap(cell):
    rule = LPGRule(LPGConfig(hidden=16, cell=cell, pred_dim=M))
    assert rule.name == "lpg"
    population = jax.vmap(rule.init)(jax.random.split(jax.random.key(0), 3))
    inputs = _inputs(jax.random.key(1))
    pi_hat, y_hat = jax.jit(jax.vmap(rule, in_axes=(0, None, None, None)))(population, inputs, 0.5, 100.0)
    assert pi_hat.shape == (3, T, B) and y_hat.shape == (3, T, B, M)
    assert pi_hat.dtype == jnp.float32
    np.testing.assert_allclose(y_hat.sum(-1), 1.0, rtol=1e-5)
    # different members of the population give different outputs
    assert not np.allclose(pi_hat[0], pi_hat[1])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_carry_resets_at_episode_boundaries(cell):
    rule = LPGRule(LPGConfig(hidden=16, cell=cell, pred_dim=M))
    params = rule.init(jax.random.key(0))
    rule = _jitted(rule)
    split = 3  # seg1 = steps 0..2, its episode ends at step 2
    done = jnp.zeros((T, B), bool).at[split - 1].set(True)
    joint = _inputs(jax.random.key(2), done)
    pi_joint, y_joint = rule(params, joint)
    pi_seg1, y_seg1 = rule(params, _slice(joint, 0, split))
    pi_seg2, y_seg2 = rule(params, _slice(joint, split, T))
    np.testing.assert_allclose(pi_joint[:split], pi_seg1, atol=1e-6)
    np.testing.assert_allclose(y_joint[:split], y_seg1, atol=1e-6)
    np.testing.assert_allclose(pi_joint[split:], pi_seg2, atol=1e-6)
    np.testing.assert_allclose(y_joint[split:], y_seg2, atol=1e-6)
    # with the reset, seg2's data cannot reach seg1; without it (no done), it does
    changed = joint.replace(reward=joint.reward.at[split:].add(5.0))
    np.testing.assert_allclose(rule(params, changed)[0][:split], pi_joint[:split], atol=1e-6)
    no_reset = joint.replace(done=jnp.zeros((T, B), bool))
    no_reset_changed = no_reset.replace(reward=changed.reward)
    assert not np.allclose(rule(params, no_reset)[0][:split], rule(params, no_reset_changed)[0][:split])
    # the recurrence runs backwards: the last step sees only itself
    changed_first = joint.replace(reward=joint.reward.at[0].add(5.0))
    np.testing.assert_allclose(rule(params, changed_first)[0][1:], pi_joint[1:], atol=1e-6)


def test_phi_of_next_prediction_is_zeroed_at_terminal_steps():
    rule = LPGRule(LPGConfig(hidden=16, pred_dim=M))
    params = rule.init(jax.random.key(0))
    rule = _jitted(rule)
    done = jnp.zeros((T, B), bool).at[2].set(True)
    inputs = _inputs(jax.random.key(3), done)
    pi, y = rule(params, inputs)
    other = jax.nn.softmax(10.0 * jax.random.normal(jax.random.key(4), (B, M)))
    at_done = inputs.replace(y_next=inputs.y_next.at[2].set(other))
    pi2, y2 = rule(params, at_done)
    np.testing.assert_allclose(pi2, pi, atol=1e-6)
    np.testing.assert_allclose(y2, y, atol=1e-6)
    not_done = inputs.replace(y_next=inputs.y_next.at[3].set(other))
    assert not np.allclose(rule(params, not_done)[0], pi)


def test_time_aware_inputs():
    inputs = _inputs(jax.random.key(5))
    ta = LPGRule(LPGConfig(hidden=16, pred_dim=M, time_aware=True, max_log_lifetime=math.log(1000.0)))
    assert ta.name == "ta_lpg" and ta.config.num_inputs == 8
    params = ta.init(jax.random.key(0))
    feats = ta.features(params, inputs, 0.25, 100.0)
    np.testing.assert_allclose(feats[..., 6], 0.25)
    np.testing.assert_allclose(feats[..., 7], math.log(100.0) / math.log(1000.0), rtol=1e-6)
    ta = _jitted(ta)
    assert not np.allclose(ta(params, inputs, 0.1, 100.0)[0], ta(params, inputs, 0.9, 100.0)[0])
    assert not np.allclose(ta(params, inputs, 0.5, 20.0)[0], ta(params, inputs, 0.5, 900.0)[0])
    plain = LPGRule(LPGConfig(hidden=16, pred_dim=M))
    p = plain.init(jax.random.key(0))
    plain = _jitted(plain)
    np.testing.assert_allclose(plain(p, inputs, 0.1, 100.0)[0], plain(p, inputs, 0.9, 5.0)[0])


def test_bad_config_raises():
    with pytest.raises(ValueError, match="cell"):
        LPGConfig(cell="rnn")
    with pytest.raises(ValueError, match="pred_dim"):
        LPGConfig(pred_dim=0)


def _tiny_agent():
    # 2 one-hot states (+ time entry), 5 actions, m = 2; state 1 prefers action 0 with pi = 4/8
    params = A.init_lpg_agent(jax.random.key(0), "tabular", 3, 5, 2)
    params["actor"]["kernel"] = params["actor"]["kernel"].at[1, 0].set(math.log(4.0))
    return params


def test_agent_loss_matches_hand_computation():
    params = _tiny_agent()
    obs = A.encode_tabular(jnp.eye(2, 3))
    action = jnp.array([1, 0])
    pi_hat = jnp.array([2.0, -1.0])
    y_hat = jnp.array([[0.75, 0.25], [0.5, 0.5]])
    loss, aux = lpg_agent_loss(params, obs, action, pi_hat, y_hat, 0.5)
    # policy: (2 log 0.2 - log 0.5) / 2; KL([.5,.5] || [.75,.25]) = .5 ln(2/3) + .5 ln 2, second KL 0
    policy = (2 * math.log(0.2) - math.log(0.5)) / 2
    kl = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    np.testing.assert_allclose(aux["policy_loss"], policy, rtol=1e-5)
    np.testing.assert_allclose(aux["pred_kl"], kl / 2, rtol=1e-5)
    np.testing.assert_allclose(loss, policy + 0.5 * kl / 2, rtol=1e-5)


def test_agent_loss_gradient_direction():
    """Descending the loss raises pi(a|s) where pi_hat < 0 and moves y towards y_hat."""
    params = _tiny_agent()
    obs, action = A.encode_tabular(jnp.eye(2, 3)), jnp.array([1, 3])
    pi_hat = jnp.array([-1.0, 1.0])
    y_hat = jnp.array([[0.9, 0.1], [0.9, 0.1]])
    grads, _ = jax.grad(lpg_agent_loss, has_aux=True)(params, obs, action, pi_hat, y_hat, 0.5)
    new = jax.tree.map(lambda p, g: p - 1.0 * g, params, grads)
    probs = lambda p: jax.nn.softmax(A.policy_logits(p, obs))  # noqa: E731
    assert probs(new)[0, 1] > probs(params)[0, 1]
    assert probs(new)[1, 3] < probs(params)[1, 3]
    assert np.all(A.predictions(new, obs)[:, 0] > A.predictions(params, obs)[:, 0])


def test_tabular_encoding_equals_the_one_hot_product():
    kernel = jax.random.normal(jax.random.key(0), (7, 5))
    obs = jnp.zeros((3, 7)).at[jnp.arange(3), jnp.array([0, 4, 5])].set(1.0).at[:, -1].set(jnp.array([0.0, 0.02, 0.5]))
    np.testing.assert_allclose(A.apply_network({"kernel": kernel}, A.encode_tabular(obs)), obs @ kernel, rtol=1e-6)
