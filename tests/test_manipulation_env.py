"""The manipulation family's shared interface: Meta-World v3's observation, action, arm and episode rules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.manipulation import ML1, ML10, MT1, MT10, TASK_NAMES, Manipulation, implemented, world
from envs.manipulation.rewards import caging, hamacher, tolerance

KEY = jax.random.key(0)


def _reach(**kw):
    env = Manipulation("reach", **kw)
    return env, env.default_params


def _run(env, params, actions):
    """Step ``actions`` [T, 4] from reset; returns obs [T+1, D], rewards, infos (jitted scan)."""

    @jax.jit
    def go(actions):
        obs, state = env.reset_env(KEY, params)

        def body(state, a):
            obs, state, r, term, info = env.step_env(KEY, state, a, params)
            return state, (obs, r, term, info, state)

        _, out = jax.lax.scan(body, state, actions)
        return obs, out

    first, (obs, rewards, terms, infos, states) = go(jnp.asarray(actions, jnp.float32))
    return np.concatenate([np.asarray(first)[None], np.asarray(obs)]), np.asarray(rewards), terms, infos, states


def test_tolerance_and_hamacher_match_hand_computed_values():
    assert float(tolerance(0.03, 0.0, 0.05, 0.2)) == 1.0  # inside the bounds
    np.testing.assert_allclose(tolerance(0.25, 0.0, 0.05, 0.2), 0.1, rtol=1e-6)  # exactly 0.1 at the margin
    np.testing.assert_allclose(tolerance(0.15, 0.0, 0.05, 0.2), 1 / (1 + 1.5**2), rtol=1e-6)  # d = m/2
    assert float(tolerance(0.06, 0.0, 0.05, 0.0)) == 0.0  # margin 0: an indicator
    np.testing.assert_allclose(hamacher(0.5, 0.5), 0.25 / 0.75, rtol=1e-6)
    assert float(hamacher(0.0, 0.0)) == 0.0 and float(hamacher(1.0, 0.3)) == pytest.approx(0.3)
    tcp = jnp.array([0.0, 0.6, 0.02])
    full = caging(tcp, tcp, jnp.array([0.0, 0.6, 0.02]), jnp.array([0.0, 0.6, 0.155]), 0.3, 1.0)
    assert 0.0 <= float(full) <= 1.0


def test_observation_layout_at_reset():
    env, params = _reach()
    obs, _ = env.reset(KEY, params)
    obs = np.asarray(obs)
    assert obs.shape == (39,) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[0:3], [0.0, 0.6, 0.2])  # hand_init
    assert obs[3] == pytest.approx(1.0)  # gripper open
    np.testing.assert_allclose(obs[4:7], params.obj_init)
    np.testing.assert_allclose(obs[7:11], [0, 0, 0, 1])  # reach: scalar-last identity
    assert np.all(obs[11:18] == 0)  # no second object
    np.testing.assert_array_equal(obs[18:36], obs[0:18])  # previous frame = current at reset
    np.testing.assert_allclose(obs[36:39], params.goal)
    hidden, _ = _reach(goal_observable=False)[0].reset(KEY, params)
    assert np.all(np.asarray(hidden)[36:39] == 0)  # ML: goal zeroed


def test_previous_frame_is_the_last_observation_frame():
    env, params = _reach()
    obs, *_ = _run(env, params, np.tile([1.0, 0.0, 0.0, -1.0], (5, 1)))
    for t in range(1, 6):
        np.testing.assert_array_equal(obs[t, 18:36], obs[t - 1, 0:18])


def test_mocap_moves_by_action_scale_and_is_clipped_to_the_hand_bounds():
    env, params = _reach()
    _, _, _, _, states = _run(env, params, np.tile([1.0, 0.0, 0.0, 0.0], (3, 1)))
    np.testing.assert_allclose(np.asarray(states.mocap)[:, 0], [0.01, 0.02, 0.03], atol=1e-6)
    _, _, _, _, big = _run(env, params, np.tile([7.0, 0.0, 0.0, 0.0], (3, 1)))  # actions clip to [-1, 1]
    np.testing.assert_array_equal(np.asarray(big.mocap), np.asarray(states.mocap))
    _, _, _, _, far = _run(env, params, np.tile([1.0, 1.0, 1.0, 0.0], (200, 1)))
    np.testing.assert_allclose(np.asarray(far.mocap)[-1], world.HAND_HIGH, atol=1e-6)
    assert np.all(np.asarray(far.hand) <= np.asarray(world.HAND_HIGH) + 1e-6)
    _, _, _, _, low = _run(env, params, np.tile([-1.0, -1.0, -1.0, 0.0], (200, 1)))
    np.testing.assert_allclose(np.asarray(low.hand)[-1], world.HAND_LOW, atol=1e-3)


def test_hand_lags_the_mocap_like_meta_world():
    """Measured in Meta-World: x after 1, 5, 10 steps of a_x = +1 is 0.001, 0.021, 0.064 m."""
    env, params = _reach()
    _, _, _, _, states = _run(env, params, np.tile([1.0, 0.0, 0.0, 0.0], (40, 1)))  # mocap stays inside x < 0.5
    x = np.asarray(states.hand)[:, 0]
    np.testing.assert_allclose(x[[0, 4, 9]], [0.001, 0.021, 0.064], atol=0.002)
    assert np.diff(x)[-10:].mean() == pytest.approx(0.01, abs=0.001)  # steady state follows the mocap


def test_tcp_is_below_the_hand():
    np.testing.assert_allclose(world.tcp_of(jnp.array([0.1, 0.6, 0.2])), [0.1, 0.6, 0.155], atol=1e-7)


def test_positive_gripper_action_closes_and_negative_opens():
    env, params = _reach()
    obs, *_ = _run(env, params, np.tile([0.0, 0.0, 0.0, 1.0], (30, 1)))
    assert obs[-1, 3] == pytest.approx(world.CLOSED_OPENING, abs=1e-3) and np.all(np.diff(obs[:, 3]) <= 1e-7)
    actions = np.concatenate([np.tile([0.0, 0.0, 0.0, 1.0], (30, 1)), np.tile([0.0, 0.0, 0.0, -1.0], (30, 1))])
    obs, *_ = _run(env, params, actions)
    assert obs[-1, 3] == pytest.approx(1.0, abs=1e-3)


def test_grasp_carries_the_object_and_release_drops_it_back_to_the_table():
    env = Manipulation("reach")
    params = env.params_for("reach", obj_init=[0.0, 0.65, 0.02], goal=[0.0, 0.85, 0.2])
    hover = [0.0, 0.65, 0.02 - world.TCP_OFFSET[2]]
    state = env.reset_env(KEY, params)[1].replace(hand=jnp.asarray(hover), mocap=jnp.asarray(hover))

    @jax.jit
    def steps(state, actions):
        def body(s, a):
            _, s, *_ = env.step_env(KEY, s, a, params)
            return s, s
        return jax.lax.scan(body, state, actions)[1]

    close = steps(state, jnp.tile(jnp.array([0.0, 0.0, 0.0, 1.0]), (10, 1)))
    assert bool(close.grasped[-1])
    held = jax.tree.map(lambda x: x[-1], close)
    lift = steps(held, jnp.tile(jnp.array([0.0, 0.0, 1.0, 1.0]), (20, 1)))
    assert bool(lift.grasped[-1]) and float(lift.obj[-1, 2]) > 0.1  # carried up with the hand
    np.testing.assert_allclose(lift.obj[-1] - world.tcp_of(lift.hand[-1]), held.grip_offset, atol=1e-6)
    lifted = jax.tree.map(lambda x: x[-1], lift)
    drop = steps(lifted, jnp.tile(jnp.array([0.0, 0.0, 0.0, -1.0]), (30, 1)))
    assert not bool(drop.grasped[-1])
    assert float(drop.obj[-1, 2]) == pytest.approx(0.02)  # fell back to its resting height
    never = steps(state.replace(closure=jnp.float32(1.0)), jnp.tile(jnp.array([0.0, 0.0, 0.0, 1.0]), (10, 1)))
    assert not bool(never.grasped.any())  # fingers already shut do not grasp


def test_episode_is_truncated_exactly_at_500_steps_and_never_terminates():
    env, params = envs.make("reach-v3")
    step = jax.jit(env.step)
    obs, state = env.reset(KEY, params)
    for t in range(1, 501):
        obs, state, _, terminated, truncated, _ = step(KEY, state, jnp.zeros(4), params)
        assert not bool(terminated)
        assert bool(truncated) == (t == 500)
    assert int(state.time) == 0  # gymnax auto-reset after the truncation


def test_vmap_gives_every_env_its_own_task_and_is_deterministic():
    env = Manipulation("reach")
    tasks = env.task_space.sample_batch(jax.random.key(1), 8)
    obs, _ = jax.vmap(env.reset)(jax.random.split(KEY, 8), tasks)
    np.testing.assert_allclose(np.asarray(obs)[:, 36:39], np.asarray(tasks.goal))
    assert len(np.unique(np.asarray(obs)[:, 4], axis=0)) == 8

    def rollout(key):
        def body(carry, k):
            s, total = carry
            a = jax.random.uniform(k, (8, 4), minval=-1, maxval=1)
            _, s, r, *_ = jax.vmap(env.step)(jax.random.split(k, 8), s, a, tasks)
            return (s, total + r), None
        _, s0 = jax.vmap(env.reset)(jax.random.split(key, 8), tasks)
        return jax.lax.scan(body, (s0, jnp.zeros(8)), jax.random.split(key, 100))[0][1]

    first, second = jax.jit(rollout)(KEY), jax.jit(rollout)(KEY)
    np.testing.assert_array_equal(first, second)
    assert np.all((np.asarray(first) >= 0) & (np.asarray(first) <= 10 * 100))


def test_mixed_batch_dispatches_each_env_to_its_own_task():
    names = implemented()[:4]
    if len(names) < 2:
        pytest.skip("needs two implemented tasks")
    env = Manipulation(names, one_hot=True)
    tasks = env.task_space.sample_batch(jax.random.key(2), 64)
    assert set(np.asarray(tasks.task_id).tolist()) == {envs.manipulation.TASK_NAMES.index(n) for n in names}
    obs, state = jax.vmap(env.reset)(jax.random.split(KEY, 64), tasks)
    onehot = np.asarray(obs)[:, 39:]
    np.testing.assert_array_equal(onehot.argmax(1), np.asarray(env.local_index(tasks)))
    for i in range(64):  # each row equals the single-task env's reset
        task = jax.tree.map(lambda x: x[i], tasks)
        single = Manipulation(names[int(env.local_index(task))])
        np.testing.assert_allclose(np.asarray(obs)[i, :39], np.asarray(single.reset(KEY, task)[0]), atol=1e-6)


def test_task_space_samples_inside_ranges_with_the_redraw_rule():
    env = Manipulation("reach")
    tasks = env.task_space.sample_batch(jax.random.key(3), 500)
    obj, goal = np.asarray(tasks.obj_init), np.asarray(tasks.goal)
    f32 = lambda v: np.asarray(v, np.float32)
    assert np.all(obj >= f32([-0.1, 0.6, 0.02])) and np.all(obj <= f32([0.1, 0.7, 0.02]))
    assert np.all(goal >= f32([-0.1, 0.8, 0.05])) and np.all(goal <= f32([0.1, 0.9, 0.3]))
    assert np.linalg.norm(obj[:, :2] - goal[:, :2], axis=1).min() >= 0.15
    assert bool(jax.vmap(env.task_space.contains)(tasks).all())
    first = jax.tree.map(lambda x: x[0], tasks)
    assert not bool(env.task_space.contains(first.replace(goal=jnp.array([0.0, 0.85, 0.5]))))  # z above 0.3
    assert not bool(env.task_space.contains(first.replace(task_id=jnp.int32(5))))  # not this env's class


def test_ml1_has_50_unique_train_goals_and_50_disjoint_test_goals():
    bench = ML1("reach")
    train, test = bench.train_tasks(), bench.test_tasks()
    assert train.goal.shape == (50, 3) and test.goal.shape == (50, 3)
    vec = lambda t: np.concatenate([np.asarray(t.obj_init), np.asarray(t.goal)], 1)
    assert len(np.unique(vec(train), axis=0)) == 50
    assert not set(map(tuple, vec(train))) & set(map(tuple, vec(test)))
    np.testing.assert_array_equal(vec(ML1("reach").train_tasks()), vec(train))  # seeded: same sets every time
    assert not bench.train_env().goal_observable and MT1("reach").train_env().goal_observable


def test_ml10_and_mt10_have_meta_worlds_classes_counts_and_observations():
    ml10, mt10 = ML10(), MT10()
    assert ml10.train_classes == ("reach", "push", "pick-place", "door-open", "drawer-close", "button-press-topdown",
                                  "peg-insert-side", "window-open", "sweep", "basketball")
    assert ml10.test_classes == ("drawer-open", "door-close", "shelf-place", "sweep-into", "lever-pull")
    assert set(mt10.train_classes) == {"reach", "push", "pick-place", "door-open", "drawer-open", "drawer-close",
                                       "button-press-topdown", "peg-insert-side", "window-open", "window-close"}
    train, test = ml10.train_tasks(), ml10.test_tasks()
    assert train.task_id.shape == (500,) and test.task_id.shape == (250,)
    counts = np.bincount(np.asarray(train.task_id), minlength=len(TASK_NAMES))
    assert [counts[TASK_NAMES.index(c)] for c in ml10.train_classes] == [50] * 10
    assert not set(np.asarray(train.task_id).tolist()) & set(np.asarray(test.task_id).tolist())
    for env, tasks in ((ml10.train_env(), train), (ml10.test_env(), test), (mt10.train_env(), mt10.train_tasks())):
        assert bool(jax.vmap(env.task_space.contains)(tasks).all())
    obs, _ = jax.vmap(ml10.train_env().reset)(jax.random.split(KEY, 500), train)
    assert obs.shape == (500, 39) and np.all(np.asarray(obs)[:, 36:39] == 0)  # ML hides the goal
    env = mt10.train_env()
    obs, _ = jax.vmap(env.reset)(jax.random.split(KEY, 500), mt10.train_tasks())
    assert obs.shape == (500, 49) and np.all(np.asarray(obs)[:, 39:].sum(1) == 1)  # MT: goal and class one-hot
    assert np.any(np.asarray(obs)[:, 36:39] != 0)
    assert envs.make("mt10")[0] == env and envs.make("ml10-test")[0] == ml10.test_env()


def test_benchmark_specs_and_bad_input_give_one_clear_line():
    assert envs.benchmark_tasks("MT1:reach-v3:test").goal.shape == (50, 3)
    with pytest.raises(ValueError, match="unknown environment 'rech-v3'; did you mean reach-v3"):
        envs.make("rech-v3")
    with pytest.raises(ValueError, match=r"goal=\[5.0, 5.0, 5.0\] is outside reach-v3's range"):
        envs.make("reach-v3", goal=[5.0, 5.0, 5.0])
    with pytest.raises(ValueError, match="task_id=99 is not a task of this env"):
        envs.make("reach-v3", task_id=99)
    with pytest.raises(ValueError, match=r"action must have shape \(4,\), got \(3,\)"):
        env, params = envs.make("reach-v3")
        env.step(KEY, env.reset(KEY, params)[1], jnp.zeros(3), params)
    with pytest.raises(ValueError, match="unknown benchmark 'ML7'"):
        envs.benchmark_tasks("ML7:train")
    with pytest.raises(ValueError, match="must look like ML1:<task>-v3:train|test"):
        envs.benchmark_tasks("ML1:reach-v3")
    with pytest.raises(ValueError, match="unknown manipulation task 'rach'"):
        ML1("rach")
