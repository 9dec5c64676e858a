"""LPG and A2C lifetimes on a tiny tabular level: learning, jit/vmap, lifetime masking, optimizer plug-in."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from envs.gridworld import GridWorld
from envs.gridworld_dp import uniform_policy_return
from envs.gridworld_levels import Level, ObjType, params_from_level
from metarl.lpg import AgentConfig, LPGConfig, LPGRule, make_a2c_lifetime, make_lpg_lifetime
from metarl.optimizers import LearnedOptimizer

# 4x4 room: +1 object at (3,3), -1 object at (0,3); both end the episode; 20 steps.
ENV = GridWorld(6, 3, 3, tabular=True, level="small")  # small padding: 289-dim one-hot observations
TYPES = (ObjType(1.0, 1.0, 0.0), ObjType(-1.0, 1.0, 0.0))
TINY = params_from_level(Level(4, 20, TYPES, ((0, (3, 3)), (1, (0, 3))), start=(0, 0)), 6, 3, 3)
TINY_MIRROR = params_from_level(Level(4, 20, TYPES, ((0, (3, 0)), (1, (3, 3))), start=(0, 0)), 6, 3, 3)
A2C_CONFIG = AgentConfig(num_envs=16, num_steps=10, eval_episodes=16)
# LPG: one SGD lr for both heads so that OPEN at its SGD point reproduces the default optimizer
CONFIG = AgentConfig(num_envs=16, num_steps=10, eval_episodes=16, critic_lr=40.0)
RULE = LPGRule(LPGConfig(hidden=16, pred_dim=4))
UPDATES = 60


def _stack(*trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


@pytest.fixture(scope="module")
def lpg_train():
    return make_lpg_lifetime(CONFIG, ENV, RULE)


@pytest.fixture(scope="module")
def static_run(lpg_train):
    """3 updates of a random rule on the mirrored level (shared by two tests: one compile)."""
    key = jax.random.split(jax.random.key(2), 2)[1]
    return lpg_train(key, RULE.init(jax.random.key(1)), TINY_MIRROR, num_updates=3)


def test_a2c_learns_the_tiny_level():
    uniform = float(uniform_policy_return(ENV, TINY))
    result = make_a2c_lifetime(A2C_CONFIG, ENV)(jax.random.key(0), TINY, num_updates=UPDATES)
    assert result.returns.shape == (UPDATES,) and np.all(np.isfinite(result.returns))
    assert float(result.final_return) > uniform + 0.7, (float(result.final_return), uniform)


def test_lpg_lifetime_vmapped_learns_with_policy_gradient_rule_and_masks(lpg_train, static_run):
    """Two agents in one vmapped program: (hand-set REINFORCE rule, TINY, full lifetime) and
    (random rule, mirrored level, lifetime 3); the second must equal a static 3-update run."""
    pg = RULE.policy_gradient_params(jax.random.key(0))
    random_rule = RULE.init(jax.random.key(1))
    keys = jax.random.split(jax.random.key(2), 2)
    batched = jax.jit(jax.vmap(lambda k, m, lvl, n: lpg_train(k, m, lvl, num_updates=UPDATES, lifetime=n)))
    out = batched(keys, _stack(pg, random_rule), _stack(TINY, TINY_MIRROR), jnp.array([UPDATES, 3]))
    assert out.returns.shape == (2, UPDATES)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(out))
    uniform = float(uniform_policy_return(ENV, TINY))
    assert float(out.final_return[0]) > uniform + 0.7, (float(out.final_return[0]), uniform)

    # traced lifetime 3 == static run of 3 updates (same key, rule, level)
    static = static_run
    masked = jax.tree.map(lambda x: x[1], out.agent_params)
    for a, b in zip(jax.tree.leaves(masked), jax.tree.leaves(static.agent_params)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(out.returns[1, :3], static.returns, atol=1e-6)
    # the policy moved in those 3 updates, and a different rule trains a different policy
    assert float(jnp.abs(static.agent_params["actor"]["kernel"]).max()) > 0
    other = lpg_train(keys[1], pg, TINY_MIRROR, num_updates=3)
    assert not np.allclose(other.agent_params["actor"]["kernel"], static.agent_params["actor"]["kernel"])


def test_learned_optimizer_plugs_in_with_one_line(static_run):
    """OPEN at its SGD point (lr 40) reproduces the default tabular SGD lifetime."""
    opt = LearnedOptimizer()
    learned = make_lpg_lifetime(CONFIG, ENV, RULE, optimizer=opt)
    key = jax.random.split(jax.random.key(2), 2)[1]
    out = learned(key, RULE.init(jax.random.key(1)), TINY_MIRROR, num_updates=3,
                  optimizer_params=opt.sgd_meta_params(40.0))
    for x, y in zip(jax.tree.leaves(out.agent_params), jax.tree.leaves(static_run.agent_params)):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="kind"):
        AgentConfig(kind="cnn")
    with pytest.raises(ValueError, match="num_envs"):
        AgentConfig(num_envs=0)
    with pytest.raises(ValueError, match="rule"):
        make_lpg_lifetime(CONFIG, ENV, rule=object())
