"""PLR level buffer, score functions, PLR / robust PLR / ACCEL teachers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from curricula import Feedback
from curricula import level_buffer as lb
from curricula import scores
from curricula.plr import ACCEL, MUTATE, NEW, PLR, REPLAY
from toy_levels import level_space, levels, lvl


# --- score functions ------------------------------------------------------
ADV = jnp.array([1.0, -2.0, 3.0, -1.0])
DONES = jnp.array([0, 1, 0, 0])
VALUES = jnp.array([0.5, 1.0, 0.0, 2.0])


def test_scores_hand_computed():
    # episodes: steps {0,1} (finished) and {2,3} (unfinished)
    assert float(scores.positive_value_loss(ADV, DONES)) == pytest.approx((0.5 + 1.5) / 2)
    assert float(scores.positive_value_loss(ADV, DONES, include_incomplete=False)) == pytest.approx(0.5)
    assert float(scores.mean_abs_gae(ADV, DONES)) == pytest.approx((1.5 + 2.0) / 2)
    assert float(scores.max_mc(VALUES, DONES, 3.0)) == pytest.approx((2.25 + 2.0) / 2)
    assert float(scores.positive_value_loss(ADV, jnp.zeros(4), include_incomplete=False)) == -np.inf


def test_scores_batched_columns():
    adv = jnp.stack([ADV, jnp.array([1.0, 1.0, 1.0, -5.0])], axis=1)
    dones = jnp.stack([DONES, jnp.array([0, 0, 0, 1])], axis=1)
    np.testing.assert_allclose(scores.positive_value_loss(adv, dones), [1.0, 0.75])
    np.testing.assert_allclose(scores.max_mc(jnp.zeros((4, 2)), dones, jnp.array([3.0, 1.0])), [3.0, 1.0])
    rewards = jnp.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
    np.testing.assert_allclose(
        scores.max_episode_return(rewards, jnp.array([[0, 0], [1, 0], [0, 0], [1, 0]])), [7.0, -np.inf]
    )


def test_scores_bad_shapes():
    with pytest.raises(ValueError, match="matching"):
        scores.positive_value_loss(jnp.zeros((3, 2)), jnp.zeros(3))


# --- replay weights -------------------------------------------------------
def filled_buffer():
    buf = lb.create(lvl(0.0), 4)
    return buf.replace(
        scores=jnp.array([0.5, 2.0, 1.0, 9.0]),
        timestamps=jnp.array([4, 9, 7, 0]),
        filled=jnp.array([True, True, True, False]),
        episode_count=jnp.array(10),
    )


def test_rank_weights_with_staleness_hand_computed():
    buf = filled_buffer()
    # ranks 3, 1, 2 -> (1/rank)^(1/0.5) = 1/9, 1, 1/4 -> x36 = 4, 36, 9 (sum 49)
    p_s = lb.score_weights(buf.scores, buf.filled, "rank", 0.5)
    np.testing.assert_allclose(p_s, [4 / 49, 36 / 49, 9 / 49, 0.0], rtol=1e-6)
    # staleness c - C_i = 6, 1, 3 (empty slot ignored)
    p_c = lb.staleness_weights(buf.timestamps, buf.filled, buf.episode_count)
    np.testing.assert_allclose(p_c, [0.6, 0.1, 0.3, 0.0], rtol=1e-6)
    p = lb.replay_weights(buf, "rank", 0.5, staleness_coef=0.3)
    expected = 0.7 * np.array([4 / 49, 36 / 49, 9 / 49, 0]) + 0.3 * np.array([0.6, 0.1, 0.3, 0])
    np.testing.assert_allclose(p, expected, rtol=1e-6)


def test_proportional_weights_hand_computed():
    buf = filled_buffer()
    # S^(1/T) with T=0.5: 0.25, 4, 1 (sum 5.25)
    np.testing.assert_allclose(
        lb.replay_weights(buf, "proportional", 0.5, 0.0), [1 / 21, 16 / 21, 4 / 21, 0.0], rtol=1e-6
    )
    # T=1, rho=0.5: 0.5*[0.5,2,1]/3.5 + 0.5*[.6,.1,.3]
    np.testing.assert_allclose(
        lb.replay_weights(buf, "proportional", 1.0, 0.5),
        0.5 * np.array([0.5, 2, 1, 0]) / 3.5 + 0.5 * np.array([0.6, 0.1, 0.3, 0]),
        rtol=1e-6,
    )


def test_rank_ties_and_all_zero_fallbacks():
    filled = jnp.array([True, True, True])
    # equal scores: ranks by slot order 1, 2, 3 -> T=1: 1, 1/2, 1/3 (sum 11/6)
    np.testing.assert_allclose(lb.score_weights(jnp.ones(3), filled, "rank", 1.0), [6 / 11, 3 / 11, 2 / 11], rtol=1e-6)
    # all-zero proportional scores and zero staleness fall back to uniform
    np.testing.assert_allclose(lb.score_weights(jnp.zeros(3), filled, "proportional", 1.0), [1 / 3] * 3)
    np.testing.assert_allclose(lb.staleness_weights(jnp.full(3, 5), filled, jnp.array(5)), [1 / 3] * 3)
    with pytest.raises(ValueError, match="temperature"):
        lb.score_weights(jnp.ones(3), filled, "rank", 0.0)
    with pytest.raises(ValueError, match="prioritization"):
        lb.score_weights(jnp.ones(3), filled, "topk", 1.0)


# --- insertion and eviction -----------------------------------------------
def test_insert_fill_evict_and_duplicates():
    buf = lb.create(lvl(0.0), 3)
    buf, slots = lb.insert_batch(buf, levels([0.1, 0.2, 0.3]), jnp.array([1.0, 2.0, 3.0]), jnp.ones(3, bool))
    np.testing.assert_array_equal(slots, [0, 1, 2])
    assert int(buf.size) == 3
    # a lower score than the worst (1.0) is rejected; a higher one evicts slot 0
    buf, slot = lb.insert(buf, lvl(0.4), 0.5)
    assert int(slot) == -1
    buf, slot = lb.insert(buf, lvl(0.5), 5.0)
    assert int(slot) == 0
    np.testing.assert_allclose(buf.levels.x, [0.5, 0.2, 0.3])
    np.testing.assert_allclose(buf.scores, [5.0, 2.0, 3.0])
    # duplicate check: an equal level updates its slot instead of evicting another
    buf, slot = lb.insert(buf, lvl(0.2), 7.0, max_return=1.5, duplicate_check=True)
    assert int(slot) == 1
    np.testing.assert_allclose(buf.scores, [5.0, 7.0, 3.0])
    assert float(buf.max_returns[1]) == 1.5
    # without the check the duplicate is a new entry (evicts the worst, slot 2)
    buf2, slot = lb.insert(buf, lvl(0.2), 8.0)
    assert int(slot) == 2
    # masked entries are skipped
    buf3, slots = lb.insert_batch(buf, levels([0.7, 0.8]), jnp.array([9.0, 9.0]), jnp.array([False, True]))
    np.testing.assert_array_equal(slots, [-1, 2])


def test_update_scores_keeps_best_return_and_sampling_sets_staleness():
    buf = filled_buffer().replace(max_returns=jnp.array([1.0, 2.0, 3.0, -np.inf]))
    buf = lb.update_scores(buf, jnp.array([0, 2, 1]), jnp.array([4.0, 0.0, 9.0]), jnp.array([True, True, False]),
                           max_returns=jnp.array([0.5, 3.5, 9.0]))
    np.testing.assert_allclose(buf.scores[:3], [4.0, 2.0, 0.0])
    np.testing.assert_allclose(buf.max_returns[:3], [1.0, 2.0, 3.5])
    buf, slots, lv = lb.sample_replay(buf, jax.random.PRNGKey(0), 5, "rank", 1.0, 0.0)
    assert int(buf.episode_count) == 15
    assert bool(jnp.all(slots < 3))  # never the empty slot
    np.testing.assert_array_equal(buf.timestamps[slots], 15)
    np.testing.assert_allclose(lv.x, buf.levels.x[slots])


def test_sampling_frequencies_match_weights():
    buf = filled_buffer()
    p = lb.replay_weights(buf, "rank", 0.5, 0.3)
    _, slots, _ = lb.sample_replay(buf, jax.random.PRNGKey(1), 20000, "rank", 0.5, 0.3)
    freq = np.bincount(np.asarray(slots), minlength=4) / 20000
    np.testing.assert_allclose(freq, p, atol=0.015)


# --- teachers ---------------------------------------------------------------
def feedback(scores_, max_returns=None):
    s = jnp.asarray(scores_, jnp.float32)
    fb = Feedback.from_returns(jnp.zeros_like(s), scores=s)
    return fb if max_returns is None else fb.replace(max_returns=jnp.asarray(max_returns, jnp.float32))


def test_plr_fills_then_replays_and_robust_trains_only_on_replay():
    teacher = PLR(capacity=8, replay_prob=1.0, min_fill_ratio=0.5, robust=True, temperature=1.0, staleness_coef=0.0)
    state = teacher.init(jax.random.PRNGKey(0), level_space())
    sample = jax.jit(teacher.sample, static_argnums=2)
    update = jax.jit(teacher.update)
    state, tasks = sample(state, jax.random.PRNGKey(1), 4)
    assert int(state.branch) == NEW and not bool(teacher.should_train(state))
    np.testing.assert_array_equal(teacher.train_mask(state, 4), np.zeros(4))
    state = update(state, tasks, feedback([1.0, 4.0, 2.0, 3.0]))
    assert int(state.buffer.size) == 4  # fill ratio 0.5 reached
    state, replayed = sample(state, jax.random.PRNGKey(2), 4)
    assert int(state.branch) == REPLAY and bool(teacher.should_train(state))
    # every replayed level is one of the stored ones, and their scores get overwritten
    state = update(state, replayed, feedback([10.0] * 4))
    for x in np.asarray(replayed.x):
        slot = int(np.argmin(np.abs(np.asarray(state.buffer.levels.x) - x)))
        assert float(state.buffer.scores[slot]) == 10.0
    assert int(state.buffer.size) == 4  # replay never inserts


def test_plain_plr_trains_on_everything_and_runs_under_scan():
    teacher = PLR(capacity=16, replay_prob=0.5, robust=False)
    state = teacher.init(jax.random.PRNGKey(0), level_space())
    assert bool(teacher.should_train(state))

    def step(state, key):
        k1, k2 = jax.random.split(key)
        state, tasks = teacher.sample(state, k1, 4)
        state = teacher.update(state, tasks, feedback(jax.random.uniform(k2, (4,))))
        return state, state.branch

    state, branches = jax.lax.scan(step, state, jax.random.split(jax.random.PRNGKey(3), 30))
    assert set(np.unique(branches)) == {NEW, REPLAY}
    assert int(state.buffer.size) == 16
    np.testing.assert_allclose(float(jnp.sum(teacher.replay_probabilities(state))), 1.0, rtol=1e-5)


def test_max_mc_is_corrected_to_the_all_time_best_return():
    teacher = PLR(capacity=4, replay_prob=1.0, min_fill_ratio=0.25, score="max_mc", duplicate_check=True)
    state = teacher.init(jax.random.PRNGKey(0), level_space())
    update = jax.jit(teacher.update)
    tasks = levels([0.5])
    state = update(state, tasks, feedback([2.0], max_returns=[5.0]))
    assert float(state.buffer.scores[0]) == 2.0 and float(state.buffer.max_returns[0]) == 5.0
    # later the batch's best return is 3 and mean(3 - V) = 1 -> mean(5 - V) = 3
    state = state.replace(branch=jnp.array(REPLAY))
    state = update(state, tasks, feedback([1.0], max_returns=[3.0]))
    assert float(state.buffer.scores[0]) == pytest.approx(3.0)
    assert float(state.buffer.max_returns[0]) == 5.0
    with pytest.raises(ValueError, match="rank"):
        PLR(score="max_mc", prioritization="proportional")


def test_accel_mutates_the_last_replayed_batch():
    def mutate(key, level):
        return level.replace(n=level.n + 1)

    teacher = ACCEL(mutate, batch_size=2, capacity=8, replay_prob=1.0, min_fill_ratio=0.25)
    state = teacher.init(jax.random.PRNGKey(0), level_space())
    with pytest.raises(ValueError, match="batches of 2"):
        teacher.sample(state, jax.random.PRNGKey(0), 3)
    sample = jax.jit(teacher.sample, static_argnums=2)
    update = jax.jit(teacher.update)
    state, tasks = sample(state, jax.random.PRNGKey(1), 2)
    assert int(state.branch) == NEW
    state = update(state, tasks, feedback([1.0, 2.0]))
    state, replayed = sample(state, jax.random.PRNGKey(2), 2)
    assert int(state.branch) == REPLAY and bool(teacher.should_train(state))
    state = update(state, replayed, feedback([3.0, 3.0]))
    state, children = sample(state, jax.random.PRNGKey(3), 2)
    assert int(state.branch) == MUTATE and not bool(teacher.should_train(state))
    np.testing.assert_allclose(children.x, replayed.x)
    np.testing.assert_array_equal(children.n, np.asarray(replayed.n) + 1)
    state = update(state, children, feedback([5.0, 5.0]))
    stored = {(round(float(x), 6), int(n)) for x, n, f in zip(state.buffer.levels.x, state.buffer.levels.n,
                                                             state.buffer.filled) if f}
    for x, n in zip(np.asarray(children.x), np.asarray(children.n)):
        assert (round(float(x), 6), int(n)) in stored


@pytest.mark.slow
def test_accel_on_mazes_children_stay_valid():
    maze = pytest.importorskip("envs.maze")
    import envs

    env, _ = envs.make("maze")
    teacher = ACCEL(lambda k, l: maze.mutate_level(k, l, 5), batch_size=8, capacity=16, replay_prob=1.0,
                    min_fill_ratio=0.25, task_space=env.task_space)
    state = teacher.init(jax.random.PRNGKey(0))

    @jax.jit
    def cycle(state, key):
        k1, k2, k3 = jax.random.split(key, 3)
        state, new = teacher.sample(state, k1, 8)
        state = teacher.update(state, new, feedback(jnp.arange(8.0)))
        state, replayed = teacher.sample(state, k2, 8)
        state = teacher.update(state, replayed, feedback(jnp.ones(8)))
        state, children = teacher.sample(state, k3, 8)
        return state, replayed, children

    state, replayed, children = cycle(state, jax.random.PRNGKey(1))
    assert int(state.branch) == MUTATE
    assert bool(jnp.all(jax.vmap(maze.is_valid_level)(children)))
    # children differ from their parents (5 edits each; a few may be no-ops)
    changed = jnp.any(children.wall_map != replayed.wall_map, axis=(1, 2)) | jnp.any(
        children.goal_pos != replayed.goal_pos, axis=1)
    assert bool(jnp.any(changed))
