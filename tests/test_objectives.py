"""Drift objectives: DPO's closed form, LPO / TA-LPO mirror-learning guarantees, artifacts."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.io.artifacts import load_artifact, save_artifact
from metarl.objectives.io import load_objective, save_objective
from metarl.objectives import DPO, LPO, TALPO, PPOClip, dpo_drift, make_objective, ppo_clip_drift, ratio_features


def _dpo_by_hand(r: float, a: float, alpha: float = 2.0, beta: float = 0.6) -> float:
    if a >= 0:
        x = (r - 1.0) * a
        return max(0.0, x - alpha * math.tanh(x / alpha))
    x = math.log(r) * a
    return max(0.0, x - beta * math.tanh(x / beta))


def test_dpo_matches_hand_computed_points():
    # r=1.5, A=1: 0.5 - 2 tanh(0.25) = 0.0101627; r=0.5, A=-1: ln2 - 0.6 tanh(ln2/0.6) = 0.2014566
    points = [(1.5, 1.0, 0.0101627), (0.5, -1.0, 0.2014566), (1.0, 2.0, 0.0), (1.0, -2.0, 0.0)]
    for r, a, expected in points:
        assert float(dpo_drift(jnp.float32(r), jnp.float32(a))) == pytest.approx(expected, abs=2e-6)
    # Off-grid points against the formula evaluated in float64 by hand.
    rs = [0.3, 0.8, 1.1, 2.5, 4.0]
    as_ = [-3.0, -0.7, 0.4, 1.3, 5.0]
    got = DPO()({}, jnp.array(rs), jnp.array(as_), 0.0)
    np.testing.assert_allclose(got, [_dpo_by_hand(r, a) for r, a in zip(rs, as_)], rtol=2e-5, atol=1e-6)


def test_dpo_rejects_bad_constants():
    with pytest.raises(ValueError, match="alpha"):
        DPO(alpha=0.0)


def test_ppo_clip_drift_hand_values():
    # r=1.5, A=2: (1.5 - 1.2) * 2 = 0.6; r=0.5, A=-1: (0.5 - 0.8) * -1 = 0.3; inside the band: 0.
    got = PPOClip()({}, jnp.array([1.5, 0.5, 1.1, 1.5]), jnp.array([2.0, -1.0, 3.0, -1.0]), 0.0)
    np.testing.assert_allclose(got, [0.6, 0.3, 0.0, 0.0], atol=1e-6)


def test_features_vanish_at_ratio_one():
    features = ratio_features(jnp.ones(3), jnp.array([-1.0, 0.0, 2.0]))
    assert features.shape == (3, 8)
    np.testing.assert_array_equal(features, 0.0)
    f = ratio_features(jnp.float32(2.0), jnp.float32(3.0))
    np.testing.assert_allclose(f[:4], [1.0, 1.0, math.log(2), math.log(2) ** 2], rtol=1e-6)
    np.testing.assert_allclose(f[4:], 3.0 * f[:4], rtol=1e-6)


def _random_weights(objective: LPO, seed: int, scale: float = 1.0) -> dict:
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return {
        "w1": scale * jax.random.normal(k1, (objective.num_features, objective.hidden_size)),
        "w2": scale * jax.random.normal(k2, (objective.hidden_size, 1)),
    }


OBJECTIVES = [
    LPO(ppo_init=False),
    LPO(ppo_init=True),
    TALPO(ppo_init=False),
    TALPO(ppo_init=True, use_log_lifetime=True, lifetime=100),
]


@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: f"{o.name}-ppoinit{o.ppo_init}")
def test_learned_drift_is_a_valid_drift_for_random_weights(objective):
    ratios = jnp.exp(jnp.linspace(-1.5, 1.5, 41))
    advantages = jnp.linspace(-3.0, 3.0, 13)
    r, a = jnp.meshgrid(ratios, advantages)

    @jax.jit
    def check(weights, progress):
        drift = objective(weights, r, a, progress)
        at_one = objective(weights, jnp.ones_like(advantages), advantages, progress)
        slope = jax.vmap(jax.grad(lambda rr, aa: objective(weights, rr, aa, progress)))(
            jnp.ones_like(advantages), advantages
        )
        return drift, at_one, slope

    for seed in range(4):
        weights = _random_weights(objective, seed)
        for progress in (0.0, 0.37, 1.0):
            drift, at_one, slope = check(weights, jnp.float32(progress))
            assert bool(jnp.all(drift >= 0.0)), "drift must be non-negative"
            assert bool(jnp.all(jnp.isfinite(drift)))
            np.testing.assert_allclose(at_one, 0.0, atol=1e-6)
            np.testing.assert_allclose(slope, 0.0, atol=1e-5)
    # The learned part really is non-trivial (not identically zero) away from r = 1,
    # and the relu leaves some of it positive.
    weights = _random_weights(objective, 0)
    assert float(jnp.max(jnp.abs(objective.learned_part(weights, r, a, 0.5)))) > 1e-2
    assert float(jnp.max(check(weights, jnp.float32(0.5))[0])) > 1e-3


@pytest.mark.parametrize("objective", OBJECTIVES[:2], ids=["lpo", "lpo-ppoinit"])
def test_zero_gradient_holds_numerically_near_one(objective):
    # Central differences around r = 1: |D(1 +- h)| = O(h^2), so the slope vanishes.
    weights = _random_weights(objective, 7)
    a = jnp.linspace(-2.0, 2.0, 9)
    for h in (1e-2, 3e-3):
        plus = objective(weights, jnp.full_like(a, 1.0 + h), a, 0.0)
        minus = objective(weights, jnp.full_like(a, 1.0 - h), a, 0.0)
        assert float(jnp.max(jnp.abs(plus - minus) / (2 * h))) < 50 * h


def test_ppo_initialised_lpo_with_zero_weights_equals_ppo():
    r = jnp.exp(jnp.linspace(-1.0, 1.0, 57))
    a = jnp.linspace(-3.0, 3.0, 57)
    for objective in (LPO(ppo_init=True, clip_eps=0.2), TALPO(ppo_init=True, clip_eps=0.3)):
        zeros = jax.tree.map(jnp.zeros_like, objective.init(jax.random.PRNGKey(0)))
        for progress in (0.0, 0.8):
            np.testing.assert_allclose(
                objective(zeros, r, a, progress), ppo_clip_drift(r, a, objective.clip_eps), atol=1e-7
            )
    # Default PPO-init keeps a random first layer but a zero output layer: still PPO.
    lpo = LPO()
    init = lpo.init(jax.random.PRNGKey(3))
    assert float(jnp.abs(init["w1"]).sum()) > 0
    np.testing.assert_allclose(lpo(init, r, a, 0.5), ppo_clip_drift(r, a, 0.2), atol=1e-7)


def test_ta_lpo_depends_on_progress_and_lpo_does_not():
    r = jnp.array([0.6, 0.9, 1.3, 1.7])
    a = jnp.array([-1.5, 1.0, 2.0, -0.5])
    ta = TALPO(ppo_init=False)
    weights = _random_weights(ta, 11)
    early, late = ta.learned_part(weights, r, a, 0.0), ta.learned_part(weights, r, a, 1.0)
    assert float(jnp.max(jnp.abs(early - late))) > 1e-3
    lpo = LPO(ppo_init=False)
    w = _random_weights(lpo, 11)
    np.testing.assert_array_equal(lpo.learned_part(w, r, a, 0.0), lpo.learned_part(w, r, a, 1.0))
    assert ta.num_features == 16 and TALPO(use_log_lifetime=True, lifetime=50).num_features == 17


def test_drift_vmaps_over_a_population_of_meta_params():
    lpo = LPO(hidden_size=16, ppo_init=False)
    population = jax.vmap(lambda k: _random_weights(lpo, 0) | {"w2": jax.random.normal(k, (16, 1))})(
        jax.random.split(jax.random.PRNGKey(0), 5)
    )
    r, a = jnp.array([0.7, 1.4]), jnp.array([1.0, -1.0])
    batched = jax.jit(jax.vmap(lambda p: lpo(p, r, a, 0.5)))(population)
    assert batched.shape == (5, 2)
    one = lpo(jax.tree.map(lambda x: x[3], population), r, a, 0.5)
    np.testing.assert_allclose(batched[3], one, rtol=1e-5, atol=1e-6)


def test_make_objective_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown objective 'lpp'.*lpo"):
        make_objective("lpp")
    with pytest.raises(ValueError, match="no option 'hidden'"):
        make_objective("lpo", hidden=3)
    with pytest.raises(ValueError, match="lifetime"):
        make_objective("ta_lpo", use_log_lifetime=True)
    assert isinstance(make_objective("TA-LPO"), TALPO)


def test_objective_artifact_round_trip_without_pickle(tmp_path):
    objective = TALPO(hidden_size=8, ppo_init=False, use_log_lifetime=True, lifetime=64)
    weights = _random_weights(objective, 5)
    path = save_objective(tmp_path / "obj.npz", objective, weights, extra={"generations": 3})
    with np.load(path, allow_pickle=False) as data:  # readable with pickle disabled
        assert set(data.files) == {"__header__", "w1", "w2"}
    loaded, params, header = load_objective(path)
    assert loaded == objective
    assert header["extra"] == {"generations": 3} and header["kind"] == "objective"
    r, a = jnp.array([0.5, 1.5]), jnp.array([1.0, -2.0])
    np.testing.assert_array_equal(loaded(params, r, a, 0.3), objective(weights, r, a, 0.3))


def test_artifact_nested_lists_and_bad_input(tmp_path):
    tree = {"layers": [{"k": np.arange(3.0)}, {"k": np.ones((2, 2))}], "scale": np.float32(2.0)}
    save_artifact(tmp_path / "a.npz", tree, kind="optimizer", name="toy", config={"n": 2})
    loaded, header = load_artifact(tmp_path / "a.npz")
    assert header["name"] == "toy" and header["config"] == {"n": 2}
    np.testing.assert_array_equal(loaded["layers"][1]["k"], np.ones((2, 2)))
    assert isinstance(loaded["layers"], list) and float(loaded["scale"]) == 2.0
    with pytest.raises(ValueError, match=".npz"):
        save_artifact(tmp_path / "a.bin", tree, kind="x", name="y")
    with pytest.raises(ValueError, match="no artifact"):
        load_artifact(tmp_path / "missing.npz")
    np.savez(tmp_path / "plain.npz", x=np.ones(2))
    with pytest.raises(ValueError, match="not a metarl artifact"):
        load_artifact(tmp_path / "plain.npz")
