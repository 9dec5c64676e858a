"""EM in JAX and the ALP-GMM teacher."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from curricula import Feedback
from curricula import gmm as G
from curricula.alp_gmm import ALPGMM
from envs.task_space import Field, TaskSpace

TRUE_MEANS = np.array([[0.2, 0.2], [0.8, 0.3], [0.5, 0.8]], np.float32)


def mixture_data(n_per=100, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([m + 0.04 * rng.standard_normal((n_per, 2)) for m in TRUE_MEANS]).astype(np.float32)
    return jnp.asarray(x)


def test_em_recovers_three_component_means_and_bic_picks_three():
    x = mixture_data()
    mask = jnp.ones(x.shape[0], bool).at[-5:].set(False)  # masked rows are ignored
    x = x.at[-5:].set(100.0)
    gmm, scores = jax.jit(lambda k: G.select(k, x, mask, ks=(2, 3, 4, 5), criterion="bic", n_iter=60))(
        jax.random.PRNGKey(0)
    )
    assert int(jnp.sum(gmm.active)) == 3
    assert int(jnp.argmin(scores)) == 1
    found = np.asarray(gmm.means)[np.asarray(gmm.active)]
    for m in TRUE_MEANS:
        assert np.min(np.linalg.norm(found - m, axis=1)) < 0.02
    np.testing.assert_allclose(np.exp(np.asarray(gmm.log_weights)[np.asarray(gmm.active)]), [1 / 3] * 3, atol=0.03)


def test_information_criteria_hand_computed():
    # k = 2, d = 3: p = 6 + 12 + 1 = 19
    assert float(G.n_parameters(2, 3)) == 19
    assert float(G.information_criterion(-10.0, 2, 3, 50, "aic")) == pytest.approx(2 * 19 + 20)
    assert float(G.information_criterion(-10.0, 2, 3, 50, "bic")) == pytest.approx(19 * np.log(50) + 20, rel=1e-6)
    with pytest.raises(ValueError, match="criterion"):
        G.information_criterion(0.0, 2, 3, 50, "aicc2")


def test_log_likelihood_matches_scipy_free_hand_formula():
    gmm = G.GMM(jnp.array([[0.0, 0.0], [1.0, 1.0]]), jnp.stack([jnp.eye(2), 2 * jnp.eye(2)]), jnp.log(jnp.array([0.25, 0.75])))
    x = jnp.array([[0.5, -0.5]])
    n1 = 0.25 * np.exp(-0.5 * 0.5) / (2 * np.pi)
    n2 = 0.75 * np.exp(-0.5 * (0.25 + 2.25) / 2) / (2 * np.pi * 2)
    assert float(G.log_likelihood(x, jnp.array([True]), gmm)) == pytest.approx(np.log(n1 + n2), rel=1e-5)


@struct.dataclass
class Task:
    x: jax.Array


def line_space():
    return TaskSpace(Task(np.float32(0)), (Field("x", 0.0, 10.0),))


def tasks(xs):
    return Task(jnp.asarray(xs, jnp.float32))


def test_alp_against_hand_computation():
    teacher = ALPGMM(fit_rate=20, history_size=20, ks=(2,), em_iters=5, return_range=(0.0, 10.0))
    state = teacher.init(jax.random.PRNGKey(0), line_space())
    update = jax.jit(teacher.update)
    state = update(state, tasks([0, 2, 4, 6, 8, 10]), Feedback.from_returns([0, 1, 2, 3, 4, 5]))
    np.testing.assert_allclose(state.alps[:6], 0.0)  # at most 5 earlier pairs: ALP 0
    # x = 3.5 (unit 0.35): nearest earlier task is x = 4 with return 2 -> |10 - 2| / 10
    # x = 3.6 in the same batch: its nearest is now x = 3.5 (return 10) -> |1 - 10| / 10
    fb = Feedback.from_returns([10.0, 1.0, 7.0], mask=[True, True, False])
    state = update(state, tasks([3.5, 3.6, 9.9]), fb)
    np.testing.assert_allclose(state.alps[6:8], [0.8, 0.9], rtol=1e-5)
    assert int(state.count) == 8  # the masked entry is not recorded


def test_recent_mask_follows_the_ring_buffer():
    teacher = ALPGMM(fit_rate=3, history_size=5)
    np.testing.assert_array_equal(teacher.recent_mask(jnp.array(2)), [True, True, False, False, False])
    # 7 pairs: sequence numbers 4, 5, 6 sit in slots 4, 0, 1
    np.testing.assert_array_equal(teacher.recent_mask(jnp.array(7)), [True, True, False, False, True])


def test_bootstrap_then_sampling_follows_high_alp_region():
    teacher = ALPGMM(fit_rate=60, random_task_ratio=0.1, ks=(2, 3), history_size=120, em_iters=30,
                     return_range=(0.0, 1.0))
    state = teacher.init(jax.random.PRNGKey(0), line_space())
    sample = jax.jit(teacher.sample, static_argnums=2)
    update = jax.jit(teacher.update)
    key = jax.random.PRNGKey(1)
    for i in range(4):  # 4 x 15 = fit_rate pairs; the student improves only near x = 8 (progress there)
        state, t = sample(state, jax.random.fold_in(key, i), 15)
        assert not bool(state.has_gmm)
        near = jnp.abs(t.x - 8.0) < 1.0
        noise = jax.random.uniform(jax.random.fold_in(key, 100 + i), (15,))
        returns = jnp.where(near, noise, 0.1)  # alternating returns near 8 -> large ALP
        state = update(state, t, Feedback.from_returns(returns))
    assert bool(state.has_gmm)
    probs = teacher.component_probabilities(state.gmm)
    assert float(jnp.sum(probs)) == pytest.approx(1.0, rel=1e-5)
    _, t = sample(state, jax.random.PRNGKey(7), 400)
    share_near = float(jnp.mean(jnp.abs(t.x - 8.0) < 1.5))
    assert share_near > 0.6  # uniform would give 0.3
    assert bool(jnp.all((t.x >= 0) & (t.x <= 10)))


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="history_size"):
        ALPGMM(fit_rate=100, history_size=50)
    with pytest.raises(ValueError, match="criterion"):
        ALPGMM(criterion="aicc2")
