"""RISC's switching rule, the bootstrapping switch and the success critic's target, against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.reset_free import success_critic as sc
from metarl.reset_free.switching import draw_switch, switch_probability
from metarl.reset_free.targets import discount, success_target


def test_switch_probability_by_hand():
    # 0.8 * (1 - 0.9**10) = 0.8 * 0.6513215599
    assert float(switch_probability(0.8, 10, 0.9, 5)) == pytest.approx(0.52105724792, rel=1e-6)
    assert float(switch_probability(0.8, 10, 0.9, 5, trajectory_proportion=0.5)) == pytest.approx(0.26052862396,
                                                                                                  rel=1e-6)
    assert float(switch_probability(0.8, 4, 0.9, 5)) == 0.0  # before minimum_steps: never
    assert float(switch_probability(0.8, 5, 0.9, 5)) == pytest.approx(0.8 * (1 - 0.9 ** 5), rel=1e-6)
    assert float(switch_probability(1.7, 3, 0.5, 0)) == pytest.approx(0.875)  # P_succ clipped to 1
    assert float(switch_probability(-0.2, 3, 0.5, 0)) == 0.0


def test_switch_probability_under_jit_and_vmap():
    p = jnp.array([0.0, 0.5, 1.0])
    n = jnp.array([3, 3, 2])
    got = jax.jit(jax.vmap(lambda a, b: switch_probability(a, b, 0.95, 3)))(p, n)
    np.testing.assert_allclose(got, [0.0, 0.5 * (1 - 0.95 ** 3), 0.0], rtol=1e-6)


def test_draw_switch_frequency_matches_the_probability():
    keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
    draws = jax.vmap(lambda k: draw_switch(k, 0.6, 4, 0.5, 2))(keys)
    assert float(draws.mean()) == pytest.approx(0.6 * (1 - 0.5 ** 4), abs=0.01)


@pytest.mark.parametrize("terminated, truncated, correct, as_terminal", [
    (False, False, 0.9, 0.9),
    (True, False, 0.0, 0.0),
    (False, True, 0.9, 0.0),  # a timeout/switch/intervention: the correct rule still bootstraps
    (True, True, 0.0, 0.0),
])
def test_discount_by_bootstrap_rule(terminated, truncated, correct, as_terminal):
    t, u = jnp.bool_(terminated), jnp.bool_(truncated)
    assert float(discount(t, u, 0.9, "correct")) == pytest.approx(correct)
    assert float(discount(t, u, 0.9, "timeout_as_terminal")) == pytest.approx(as_terminal)


def test_unknown_bootstrap_rule_is_one_clear_error():
    with pytest.raises(ValueError, match="bootstrap='sometimes'"):
        discount(jnp.bool_(False), jnp.bool_(False), 0.9, "sometimes")


def test_success_target_by_hand():
    got = jax.vmap(lambda s, p: success_target(s, p, 0.9))(jnp.array([1.0, 0.0, 0.0]), jnp.array([0.7, 0.7, 0.2]))
    np.testing.assert_allclose(got, [1.0, 0.63, 0.18], rtol=1e-6)


def _constant_critic(critic, state, value):
    """Heads whose every output is ``value`` (zero kernels, constant head bias)."""
    def fix(path, leaf):
        name = jax.tree_util.keystr(path)
        if "head" in name and "bias" in name:
            return jnp.full_like(leaf, value)
        return jnp.zeros_like(leaf) if "kernel" in name else leaf
    params = jax.tree_util.tree_map_with_path(fix, state.params)
    return state.replace(params=params, target=params)


def test_success_critic_min_over_heads_and_clip():
    critic = sc.SuccessCritic(obs_dim=3, num_actions=2, hidden=(8,))
    state = critic.init(jax.random.PRNGKey(0))
    state = _constant_critic(critic, state, 0.4)
    params = jax.tree.map(lambda x: x.at[1].multiply(2.0) if x.ndim else x, state.params)  # head 1 says 0.8
    obs = jnp.ones((5, 3))
    np.testing.assert_allclose(critic.p_success(params, obs, jnp.zeros(5, jnp.int32)), 0.4, rtol=1e-6)
    big = _constant_critic(critic, state, 3.0)
    np.testing.assert_allclose(critic.p_success(big.params, obs[0], jnp.int32(1)), 1.0)


def test_success_critic_learns_its_target():
    # constant heads at 0.5; a batch of successes (target 1) and failures whose next state is worth 0.5
    # (target 0.9 * 0.5 = 0.45): the loss is the mean squared gap, and a step moves the values toward it
    critic = sc.SuccessCritic(obs_dim=2, num_actions=2, hidden=(4,), lr=1e-2, gamma=0.9)
    state = _constant_critic(critic, critic.init(jax.random.PRNGKey(1)), 0.5)
    batch = {"obs": jnp.ones((4, 2)), "action": jnp.array([0, 1, 0, 1], jnp.int32),
             "success": jnp.array([1.0, 1.0, 0.0, 0.0]), "next_obs": jnp.ones((4, 2))}
    new, metrics = jax.jit(critic.learn)(state, batch, jnp.zeros(4, jnp.int32))
    expected = np.mean([(0.5 - 1.0) ** 2] * 2 + [(0.5 - 0.45) ** 2] * 2)
    assert float(metrics["success_critic_loss"]) == pytest.approx(expected, rel=1e-5)
    before = critic.values(state.params, batch["obs"][:1])
    after = critic.values(new.params, batch["obs"][:1])
    assert float(after.mean()) > float(before.mean())  # most targets are above 0.5
