"""Bandit algorithms, progress signals and the generic bandit teacher."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from curricula import Feedback
from curricula import bandits as B
from curricula import progress as P
from curricula.arms import BinnedArms, TaskSetArms
from curricula.bandit_teacher import BanditTeacher
from envs.task_space import Field, TaskSpace, stack_tasks


def upd(alg, state, counts, rewards, played=None):
    counts = jnp.asarray(counts, jnp.float32)
    played = counts > 0 if played is None else jnp.asarray(played)
    return alg.update(state, counts, jnp.asarray(rewards, jnp.float32), played)


# --- algorithms: probabilities after a few updates, by hand ---------------------
def test_exp3_hand_computed():
    alg = B.Exp3(gamma=0.3)
    s = alg.init(3)
    np.testing.assert_allclose(alg.probabilities(s), [1 / 3] * 3, rtol=1e-6)
    # arm 0 played once with reward 1: x̂ = 1 / (1/3) = 3, log w0 += 0.3 * 3 / 3 = 0.3
    s = upd(alg, s, [1, 0, 0], [1.0, 0, 0])
    e = math.exp(0.3)
    np.testing.assert_allclose(
        alg.probabilities(s), [0.7 * e / (e + 2) + 0.1, 0.7 / (e + 2) + 0.1, 0.7 / (e + 2) + 0.1], rtol=1e-5
    )
    np.testing.assert_allclose(alg.probabilities(s), [0.382072, 0.308964, 0.308964], rtol=1e-5)
    # a batched round: 2 plays of arm 1 out of n = 4 with reward 0.5 -> x̂1 = 2*0.5/(4 p1)
    p = np.asarray(alg.probabilities(s))
    s2 = upd(alg, s, [2, 2, 0], [0.0, 0.5, 0.0])
    lw = np.array([0.3, 0.3 * (2 * 0.5 / (4 * p[1])) / 3, 0.0])
    q = np.exp(lw) / np.exp(lw).sum()
    np.testing.assert_allclose(alg.probabilities(s2), 0.7 * q + 0.1, rtol=1e-5)


def test_exp3s_fixed_share_hand_computed():
    alg = B.Exp3S(gamma=0.3, alpha=0.1)
    s = upd(alg, alg.init(3), [1, 0, 0], [1.0, 0, 0])
    # w = [e^0.3, 1, 1] + (e * 0.1 / 3) * 3
    share = math.e * 0.1 / 3 * 3
    w = np.array([math.exp(0.3) + share, 1 + share, 1 + share])
    np.testing.assert_allclose(alg.probabilities(s), 0.7 * w / w.sum() + 0.1, rtol=1e-5)


def test_graves_exp3s_hand_computed():
    alg = B.GravesExp3S(eta=1.0, epsilon=0.05, beta=0.0)
    s = upd(alg, alg.init(3), [0, 1, 0], [0.0, 1.0, 0.0])
    # alpha_1 = 1/2; r̃ = [0, 3, 0]; w0 = log(.5 e^0 + .25 (e^3 + e^0)), w1 = log(.5 e^3 + .25 * 2)
    np.testing.assert_allclose(alg.probabilities(s), [0.264920, 0.470159, 0.264920], rtol=1e-5)


def test_ucb1_hand_computed():
    alg = B.UCB1()
    s = alg.init(3)
    np.testing.assert_allclose(alg.probabilities(s), [1 / 3] * 3)  # all unplayed: uniform
    s = upd(alg, s, [2, 1, 0], [0.5, 1.0, 0.0])
    np.testing.assert_allclose(alg.probabilities(s), [0, 0, 1])  # the unplayed arm first
    s = upd(alg, s, [0, 0, 1], [0.0, 0.0, 0.2])
    # t = 4: 0.5 + sqrt(2 ln4 / 2) = 1.677, 1 + sqrt(2 ln4) = 2.665, 0.2 + sqrt(2 ln4) = 1.865
    np.testing.assert_allclose(alg.index(s), [1.677410, 2.665109, 1.865109], rtol=1e-5)
    np.testing.assert_allclose(alg.probabilities(s), [0, 1, 0])


def test_discounted_ucb_hand_computed():
    alg = B.DiscountedUCB(gamma=0.5, bound=1.0, xi=0.6)
    s = upd(alg, alg.init(2), [1, 1], [1.0, 0.0])
    s = upd(alg, s, [1, 0], [0.0, 0.0])
    # N = [1.5, 0.5], S = [0.5, 0], n = 2
    np.testing.assert_allclose(s.counts, [1.5, 0.5])
    np.testing.assert_allclose(alg.index(s), [1.386441, 1.824036], rtol=1e-5)
    np.testing.assert_allclose(alg.probabilities(s), [0, 1])


def test_sliding_window_ucb_forgets_old_rounds():
    alg = B.SlidingWindowUCB(window=2, bound=1.0, xi=0.6)
    s = alg.init(2)
    for counts, rewards in [([1, 0], [1.0, 0]), ([0, 1], [0, 0.5]), ([1, 0], [0.2, 0])]:
        s = upd(alg, s, counts, rewards)
    # window = last 2 rounds: arm0 mean 0.2, arm1 mean 0.5, one play each, n = 2
    pad = math.sqrt(0.6 * math.log(2))
    np.testing.assert_allclose(alg.index(s), [0.2 + pad, 0.5 + pad], rtol=1e-5)
    np.testing.assert_allclose(alg.probabilities(s), [0, 1])  # full history would prefer arm 0 (0.6)


def test_thompson_posterior_and_sampling():
    alg = B.ThompsonSampling(noise_std=0.1, gamma=0.5, prior_count=1.0)
    s = upd(alg, alg.init(3), [1, 1, 0], [1.0, 0.0, 0.0])
    s = upd(alg, s, [1, 0, 0], [0.5, 0.0, 0.0])
    mean, std = alg.posterior(s)
    # N = [1.5, 0.5, 0], S = [1.0, 0, 0]
    np.testing.assert_allclose(mean, [1.0 / 2.5, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(std, [0.1 / math.sqrt(2.5), 0.1 / math.sqrt(1.5), 0.1], rtol=1e-6)
    key = jax.random.PRNGKey(3)
    draws = mean + std * jax.random.normal(key, (5, 3))
    np.testing.assert_array_equal(alg.sample_arms(s, key, 5), np.argmax(np.asarray(draws), axis=1))
    p = alg.probabilities(s)
    assert float(jnp.sum(p)) == pytest.approx(1.0) and float(p[0]) > 0.99


def test_epsilon_greedy_and_boltzmann_hand_computed():
    alg = B.EpsilonGreedy(epsilon=0.2)
    s = upd(alg, alg.init(4), [1, 3, 0, 0], [0.2, 0.5, 0, 0])
    np.testing.assert_allclose(alg.probabilities(s), [0.05, 0.85, 0.05, 0.05], rtol=1e-6)
    s = upd(alg, s, [0, 1, 0, 0], [0, 0.1, 0, 0])  # sample mean of arm 1: (3*0.5 + 0.1)/4 = 0.4
    np.testing.assert_allclose(s.q[1], 0.4, rtol=1e-6)
    soft = B.Boltzmann(temperature=0.5, step_size=0.5)
    s = upd(soft, soft.init(3), [1, 0, 0], [1.0, 0, 0])  # Q0 = 0.5 -> softmax([1, 0, 0])
    e = math.e
    np.testing.assert_allclose(soft.probabilities(s), [e / (e + 2), 1 / (e + 2), 1 / (e + 2)], rtol=1e-6)


def test_bad_hyper_parameters_raise():
    with pytest.raises(ValueError, match="gamma"):
        B.Exp3(gamma=0.0)
    with pytest.raises(ValueError, match="xi"):
        B.DiscountedUCB(xi=0.4)
    with pytest.raises(ValueError, match="metric"):
        P.AbsoluteLearningProgress(metric="loss")


# --- signals -----------------------------------------------------------------------
def stats(counts, returns=None, success=None, scores=None):
    z = jnp.zeros(len(counts), jnp.float32)
    f = lambda x: z if x is None else jnp.asarray(x, jnp.float32)  # noqa: E731
    return P.ArmStats(jnp.asarray(counts, jnp.float32), f(returns), f(success), f(scores))


def test_absolute_learning_progress_signal():
    sig = P.AbsoluteLearningProgress()
    s = sig.init(2)
    s, r, v = sig.update(s, stats([1, 0], returns=[1.0, 0]), 0.0)
    np.testing.assert_array_equal(v, [False, False])  # first visit only records
    s, r, v = sig.update(s, stats([1, 1], returns=[3.0, 2.0]), 1.0)
    np.testing.assert_array_equal(v, [True, False])
    assert float(r[0]) == 2.0


def test_windowed_slope_signal():
    sig = P.WindowedSlope(window=3)
    s = sig.init(2)
    s, r, v = sig.update(s, stats([1, 0], returns=[1.0, 0]), 0.0)
    assert float(r[0]) == 1.0  # one point: optimistic slope 1
    s, r, v = sig.update(s, stats([1, 0], returns=[3.0, 0]), 1.0)
    s, r, v = sig.update(s, stats([1, 0], returns=[2.0, 0]), 2.0)
    assert float(r[0]) == pytest.approx(0.5)  # points (0,1), (1,3), (2,2): cov 1 / var 2
    s, r, v = sig.update(s, stats([1, 0], returns=[0.0, 0]), 3.0)
    # window 3 keeps (1,3), (2,2), (3,0): slope -1.5, absolute value 1.5
    assert float(r[0]) == pytest.approx(1.5)
    np.testing.assert_array_equal(v, [True, False])


def test_fast_slow_signal():
    sig = P.FastSlowProgress(alpha=0.1, theta=0.1)
    s, r, v = sig.update(sig.init(1), stats([2], success=[1.0]), 0.0)
    # fast = 0.1, slow = 0.01; rw(0.1) = 0.09/0.18 = 0.5, rw(0.01) = 0.009/0.108
    np.testing.assert_allclose(s.fast, [0.1]) and np.testing.assert_allclose(s.slow, [0.01], rtol=1e-6)
    assert float(r[0]) == pytest.approx(0.5 - 0.009 / 0.108, rel=1e-5)


# --- the generic teacher ------------------------------------------------------------------
@struct.dataclass
class Params:
    a: jax.Array
    b: jax.Array


def space():
    return TaskSpace(Params(np.float32(0), np.int32(0)), (Field("a", 0.0, 1.0), Field("b", 0, 3, kind="int")))


def task_set():
    return stack_tasks([Params(jnp.float32(v), jnp.int32(i)) for i, v in enumerate([0.1, 0.5, 0.9])])


def test_teacher_credits_feedback_to_arms_hand_computed():
    teacher = BanditTeacher(TaskSetArms(task_set()), B.Exp3(gamma=0.3), P.MeanAbsAdvantage())
    state = teacher.init(jax.random.PRNGKey(0), space())
    tasks = jax.tree.map(lambda x: x[jnp.array([0, 2, 0, 1])], task_set())
    fb = Feedback.from_returns(jnp.zeros(4), scores=[0.4, 0.9, 0.8, 5.0], mask=[True, True, True, False])
    st = teacher.arm_stats(tasks, fb)
    np.testing.assert_allclose(st.counts, [2, 0, 1])
    np.testing.assert_allclose(st.scores, [0.6, 0.0, 0.9], rtol=1e-6)  # masked entry ignored
    state = jax.jit(teacher.update)(state, tasks, fb)
    # n = 3 plays: x̂0 = 2*0.6/(3/3) = 1.2, x̂2 = 1*0.9/1 = 0.9; log w += 0.3 x̂ / 3
    lw = np.array([0.12, 0.0, 0.09])
    q = np.exp(lw) / np.exp(lw).sum()
    np.testing.assert_allclose(teacher.probabilities(state), 0.7 * q + 0.1, rtol=1e-5)


def test_teacher_quantile_scaling():
    teacher = BanditTeacher(TaskSetArms(task_set()), B.Boltzmann(1.0, 1.0), P.MeanAbsAdvantage(),
                            reward_scaling="quantile", history=8)
    state = teacher.init(jax.random.PRNGKey(0), space())
    scaled = teacher._quantile_scale(jnp.array([0.0, 5.0]), state.history)
    np.testing.assert_allclose(scaled, [0.0, 0.0])  # empty history
    hist = jnp.array([0.0, 1.0, 2.0, 3.0, 4.0, jnp.nan, jnp.nan, jnp.nan])  # q20 = 0.8, q80 = 3.2
    np.testing.assert_allclose(teacher._quantile_scale(jnp.array([0.5, 2.0, 4.0]), hist), [-1.0, 0.0, 1.0], atol=1e-6)
    fb = Feedback.from_returns(jnp.zeros(3), scores=[1.0, 2.0, 3.0])
    state = teacher.update(state, task_set(), fb)
    np.testing.assert_allclose(state.history[:3], [1.0, 2.0, 3.0])
    assert int(state.cursor) == 3


def test_binned_arms_round_trip():
    arms = BinnedArms(bins=(4,), dims=(0,)).bind(space())
    assert arms.num_arms == 4
    idx = jnp.array([0, 1, 2, 3, 3, 1])
    tasks = jax.jit(arms.tasks_for)(jax.random.PRNGKey(0), idx)
    np.testing.assert_array_equal(jax.jit(arms.arm_of)(tasks), idx)
    assert bool(jnp.all((tasks.a >= idx / 4) & (tasks.a <= (idx + 1) / 4)))
    grid = BinnedArms(bins=2).bind(space())  # both entries: 2 x 2 cells
    assert grid.num_arms == 4
    t = jax.jit(grid.tasks_for)(jax.random.PRNGKey(1), jnp.arange(4))
    np.testing.assert_array_equal(jax.jit(grid.arm_of)(t), np.arange(4))
    with pytest.raises(ValueError, match="dims"):
        BinnedArms(bins=2, dims=(5,)).bind(space())


ALGOS = [B.Exp3(0.2), B.Exp3S(0.2, 0.01), B.GravesExp3S(eta=0.1), B.UCB1(), B.DiscountedUCB(0.95),
         B.SlidingWindowUCB(20), B.ThompsonSampling(0.1), B.EpsilonGreedy(0.1), B.Boltzmann(0.1)]
SIGNALS = [P.AbsoluteLearningProgress(), P.WindowedSlope(5), P.FastSlowProgress(metric="return"),
           P.MeanAbsAdvantage()]


def student_run(teacher, rounds=60, seed=0):
    """Synthetic student: only arm 2 makes progress (its return climbs while played)."""

    def step(carry, key):
        state, skill = carry
        state, tasks = teacher.sample(state, key, 8)
        arm = teacher.arms.arm_of(tasks)
        on_2 = jnp.sum(arm == 2)
        skill = jnp.minimum(skill + 0.002 * on_2, 1.0)  # saturates after ~60 rounds on arm 2
        returns = jnp.where(arm == 2, skill, 0.3)
        fb = Feedback.from_returns(returns, success=returns, scores=jnp.where(arm == 2, 1.0, 0.1))
        return (teacher.update(state, tasks, fb), skill), jnp.mean(arm == 2)

    state = teacher.init(jax.random.PRNGKey(seed), space())
    (state, _), share = jax.lax.scan(step, (state, jnp.float32(0)), jax.random.split(jax.random.PRNGKey(seed), rounds))
    return state, share


def test_every_algorithm_and_every_signal_run_in_jit_scan_and_vmap():
    # each algorithm paired with a signal (cycling), all traced in one jit to keep compile time low
    teachers = [BanditTeacher(TaskSetArms(task_set()), alg, SIGNALS[i % len(SIGNALS)]) for i, alg in enumerate(ALGOS)]
    run = jax.jit(jax.vmap(lambda seed: [student_run(t, rounds=4, seed=seed)[1] for t in teachers]))
    for shares in run(jnp.arange(2)):
        assert shares.shape == (2, 4) and bool(jnp.all(jnp.isfinite(shares)))


def test_teacher_concentrates_on_the_arm_that_makes_progress():
    teacher = BanditTeacher(TaskSetArms(task_set()), B.Exp3(gamma=0.2), P.MeanAbsAdvantage())
    state, share = jax.jit(lambda: student_run(teacher, rounds=60))()
    p = teacher.probabilities(state)
    assert float(p[2]) > 0.8 and float(jnp.mean(share[-10:])) > 0.7
    # with the windowed-slope signal, epsilon-greedy also moves to arm 2 (its return keeps climbing)
    teacher = BanditTeacher(TaskSetArms(task_set()), B.EpsilonGreedy(0.1, step_size=0.5), P.WindowedSlope(5))
    state, share = jax.jit(lambda: student_run(teacher, rounds=40))()
    assert float(jnp.mean(share[-10:])) > 0.6
