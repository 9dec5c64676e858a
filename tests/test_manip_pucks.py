"""Puck and block tasks (reach, push, pick-place, push-wall, push-back, shelf-place): v3 numbers, rules, experts.

One jitted, vmapped 500-step rollout per task serves the rate, reward and
no-penetration checks: 40 tasks from the task space, each run by the scripted
expert, by zero actions and by uniform random actions.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.manipulation import Manipulation, get_task, world
from envs.manipulation.tasks import pucks

KEY = jax.random.key(0)
NAMES = ("reach", "push", "pick-place", "push-wall", "push-back", "shelf-place")
N_TASKS, T = 40, 500  # CI size; scripts/manipulation_scripted.py --tasks 100 runs the 100
EXPERT, NOOP, RANDOM = 0, 1, 2
EPS = 1e-5  # float32 slack on box faces

# v3: hand_init, obj range, goal range, redraw distance, success threshold (sawyer_*_v3.py).
V3 = {
    "reach": ((0, 0.6, 0.2), (-0.1, 0.6, 0.02), (0.1, 0.7, 0.02), (-0.1, 0.8, 0.05), (0.1, 0.9, 0.3), 0.15, 0.05),
    "push": ((0, 0.6, 0.2), (-0.1, 0.6, 0.02), (0.1, 0.7, 0.02), (-0.1, 0.8, 0.01), (0.1, 0.9, 0.02), 0.15, 0.05),
    "pick-place": ((0, 0.6, 0.2), (-0.1, 0.6, 0.02), (0.1, 0.7, 0.02), (-0.1, 0.8, 0.05), (0.1, 0.9, 0.3), 0.15,
                   0.07),
    "push-wall": ((0, 0.6, 0.2), (-0.05, 0.6, 0.015), (0.05, 0.65, 0.015), (-0.05, 0.85, 0.01), (0.05, 0.9, 0.02),
                  0.15, 0.07),
    "push-back": ((0, 0.6, 0.2), (-0.1, 0.8, 0.02), (0.1, 0.85, 0.02), (-0.1, 0.6, 0.0199), (0.1, 0.7, 0.0201),
                  0.15, 0.07),
    "shelf-place": ((0, 0.6, 0.2), (-0.1, 0.5, 0.019), (0.1, 0.6, 0.021), (-0.1, 0.8, 0.299), (0.1, 0.9, 0.301),
                    0.1, 0.07),
}


@functools.lru_cache(maxsize=None)
def _env(name):
    return Manipulation(name)


@functools.lru_cache(maxsize=None)
def rollouts(name):
    """Expert, no-op and random rollouts over the same 100 sampled tasks (numpy, leading axis = run)."""
    env = _env(name)
    task = env.tasks[0]

    def run(p, mode, key):
        obs, state = env.reset_env(key, p)

        def body(carry, k):
            obs, state = carry
            noise = jax.random.uniform(k, (4,), minval=-1.0, maxval=1.0)
            a = jnp.where(mode == EXPERT, env.scripted_action(obs, p), jnp.where(mode == NOOP, 0.0, noise))
            obs, state, r, _, info = env.step_env(k, state, a, p)
            raw = task.reward(state, a, p)
            out = dict(success=info["success"], episode=info["episode_success"], reward=r, raw=raw, obj=state.obj,
                       tcp=world.tcp_of(state.hand), grasped=state.grasped)
            return (obs, state), out

        return jax.lax.scan(body, (obs, state), jax.random.split(key, T))[1]

    @jax.jit
    def all_runs(key):
        tasks = env.task_space.sample_batch(key, N_TASKS)
        params = jax.tree.map(lambda x: jnp.concatenate([x] * 3), tasks)
        modes = jnp.repeat(jnp.arange(3), N_TASKS)
        return params, modes, jax.vmap(run)(params, modes, jax.random.split(KEY, 3 * N_TASKS))

    params, modes, out = all_runs(jax.random.key(1))
    out = {k: np.asarray(v) for k, v in out.items()}
    out["params"] = jax.tree.map(np.asarray, params)
    out["mode"] = np.asarray(modes)
    return out


def _runs(out, mode):
    keep = out["mode"] == mode
    return {k: (v[keep] if k != "params" else jax.tree.map(lambda x: x[keep], v)) for k, v in out.items()}


def _params(name, obj=None, goal=None):
    env = _env(name)
    return env, env.params_for(name, obj_init=obj, goal=goal)


@functools.lru_cache(maxsize=None)
def _stepper(env):
    @jax.jit
    def go(state, params, actions):
        def body(s, a):
            _, s, *_ = env.step_env(KEY, s, a, params)
            return s, s
        return jax.lax.scan(body, state, actions)[1]

    return go


def _steps(env, params, state, actions):
    """Step fixed actions [T, 4] from ``state``; returns the stacked states (one compile per env and length)."""
    return _stepper(env)(state, params, jnp.asarray(actions, jnp.float32))


def _last(states):
    return jax.tree.map(lambda x: x[-1], states)


def _hold(env, params, obj_pos, spec=pucks.PUCK):
    """A state holding object 1 at ``obj_pos`` (TCP at its centre, fingers shut on it)."""
    hand = jnp.asarray(obj_pos, jnp.float32) - jnp.asarray(world.TCP_OFFSET)
    state = env.reset_env(KEY, params)[1]
    return state.replace(hand=hand, mocap=hand, obj=jnp.asarray(obj_pos, jnp.float32), grasped=jnp.bool_(True),
                         closure=jnp.float32(spec["width"]), grip_offset=jnp.zeros(3))


# --- interfaces and v3 numbers ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_make_and_reset_observation(name):
    env, params = envs.make(f"{name}-v3")
    obs, state = env.reset(KEY, params)
    obs = np.asarray(obs)
    task = get_task(name)
    assert obs.shape == (39,) and env.name == f"{name}-v3"
    np.testing.assert_allclose(obs[0:3], task.hand_init)
    np.testing.assert_allclose(obs[4:7], [*np.asarray(params.obj_init)[:2], 0.02], atol=1e-7)  # resting puck
    np.testing.assert_allclose(obs[7:11], [0, 0, 0, 1])  # scipy scalar-last identity, as v3 reports it
    assert np.all(obs[11:18] == 0)
    np.testing.assert_allclose(obs[36:39], task.target(params), atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_v3_numbers(name):
    hand, obj_low, obj_high, goal_low, goal_high, separation, threshold = V3[name]
    task = get_task(name)
    np.testing.assert_allclose(task.hand_init, hand)
    np.testing.assert_allclose(task.obj_low, obj_low)
    np.testing.assert_allclose(task.obj_high, obj_high)
    np.testing.assert_allclose(task.goal_low, goal_low)
    np.testing.assert_allclose(task.goal_high, goal_high)
    assert task.min_separation == separation and task.success_threshold == threshold
    assert task.goal_offset is None


@pytest.mark.parametrize("name", NAMES)
def test_sampled_tasks_lie_in_the_ranges_and_keep_the_redraw_distance(name):
    task = get_task(name)
    tasks = _runs(rollouts(name), EXPERT)["params"]  # the tasks the experts are scored on
    obj, goal = np.asarray(tasks.obj_init), np.asarray(tasks.goal)
    assert np.all(obj >= np.asarray(task.obj_low, np.float32) - 1e-7)
    assert np.all(obj <= np.asarray(task.obj_high, np.float32) + 1e-7)
    assert np.all(goal >= np.asarray(task.goal_low, np.float32) - 1e-7)
    assert np.all(goal <= np.asarray(task.goal_high, np.float32) + 1e-7)
    assert np.linalg.norm(obj[:, :2] - goal[:, :2], axis=1).min() >= task.min_separation
    assert len(np.unique(obj, axis=0)) == N_TASKS and len(np.unique(goal, axis=0)) == N_TASKS
    env = _env(name)
    for i in range(3):  # the env's own range check agrees
        env.task_space.check(jax.tree.map(lambda x: x[i], tasks))


def test_targets_follow_v3():
    _, push = _params("push", goal=[0.05, 0.85, 0.01])
    np.testing.assert_allclose(get_task("push").target(push), [0.05, 0.85, 0.02], atol=1e-7)  # (goal_xy, obj_z)
    for name in ("push-wall", "push-back"):
        _, params = _params(name)
        np.testing.assert_allclose(get_task(name).target(params)[2], 0.02, atol=1e-7)
    _, pick = _params("pick-place", goal=[0.0, 0.85, 0.25])
    np.testing.assert_allclose(get_task("pick-place").target(pick), [0.0, 0.85, 0.25], atol=1e-7)
    _, shelf = _params("shelf-place", goal=[0.05, 0.85, 0.3])
    np.testing.assert_allclose(get_task("shelf-place").target(shelf), [0.05, 0.85, 0.3], atol=1e-7)  # goal site


# --- success rule and reward at hand-placed states ---------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_success_rule_and_reward_at_the_threshold(name):
    env, params = _params(name)
    task = env.tasks[0]
    target = np.asarray(task.target(params))
    threshold = task.success_threshold
    direction = np.array([0.6, -0.8, 0.0])
    base = task.reset_state(params)

    def placed(d):
        point = jnp.asarray(target + d * direction, jnp.float32)
        if name == "reach":  # reach scores the TCP, not the puck
            return base.replace(hand=point - jnp.asarray(world.TCP_OFFSET))
        return base.replace(obj=point)

    score = lambda d: (bool(task.success(placed(d), params)), float(task.reward(placed(d), jnp.zeros(4), params)))
    assert score(threshold - 1e-3)[0] and not score(threshold + 1e-3)[0]
    assert score(0.0) == (True, 10.0) and score(0.045) == (True, 10.0)  # v3 snaps to 10 below 0.05
    if threshold > 0.05:  # success up to 0.07, but the reward is 10 only below 0.05
        ok, reward = score(0.06)
        assert ok and reward < 10.0
    assert not bool(task.success(base, params))  # never solved at reset
    if name == "reach":
        return
    # the object's distance counts in 3-D: the right xy at the wrong height is no success
    high = base.replace(obj=jnp.asarray(target + np.array([0.0, 0.0, threshold + 0.01]), jnp.float32))
    assert not bool(task.success(high, params))


# --- the experts and doing nothing --------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_expert_solves_noop_and_random_do_not(name):
    out = rollouts(name)
    rates = {mode: _runs(out, mode)["episode"][:, -1].mean() for mode in (EXPERT, NOOP, RANDOM)}
    assert rates[EXPERT] >= 0.95, rates
    assert rates[NOOP] == 0.0, rates
    assert rates[RANDOM] <= 0.05, rates
    expert = _runs(out, EXPERT)
    first = expert["success"].argmax(1)[expert["success"].any(1)]
    assert first.mean() < 150  # v3's experts: 34-74 steps for reach / push / pick-place
    np.testing.assert_array_equal(expert["episode"], np.maximum.accumulate(expert["success"], axis=1))


@pytest.mark.parametrize("name", NAMES)
def test_reward_in_range_and_10_at_success_like_v3(name):
    out = rollouts(name)
    raw, env_reward = out["raw"], out["reward"]
    assert np.all(np.isfinite(raw)) and raw.min() >= 0.0 and raw.max() <= 10.0 + 1e-6
    np.testing.assert_allclose(env_reward, raw, atol=1e-5)
    expert = _runs(out, EXPERT)
    assert expert["raw"].max() == pytest.approx(10.0)
    noop = _runs(out, NOOP)
    assert noop["raw"].max() < 2.0  # far below the expert's, never the success reward
    if name != "reach":  # v3: 10 whenever the object is strictly within 0.05 of the target
        params = out["params"]
        target = jax.vmap(get_task(name).target)(params)
        dist = np.linalg.norm(out["obj"] - np.asarray(target)[:, None], axis=-1)
        assert np.all(raw[dist < 0.049] == pytest.approx(10.0))
        assert np.all(raw[dist > 0.051] < 10.0)


@pytest.mark.parametrize("name", NAMES)
def test_objects_stay_on_or_above_the_table(name):
    out = rollouts(name)
    assert out["obj"][..., 2].min() >= 0.02 - EPS
    assert out["tcp"][..., 2].min() >= world.HAND_LOW[2] + world.TCP_OFFSET[2] - EPS


def test_pick_and_place_experts_lift_and_hold_the_object():
    for name in ("pick-place", "shelf-place"):
        expert = _runs(rollouts(name), EXPERT)
        assert expert["grasped"].any(1).mean() >= 0.95
        lifted = expert["obj"][..., 2].max(1)
        assert np.mean(lifted > 0.04) >= 0.95
    noop = _runs(rollouts("pick-place"), NOOP)
    assert not noop["grasped"].any()
    np.testing.assert_allclose(noop["obj"], np.broadcast_to(noop["obj"][:, :1], noop["obj"].shape))  # untouched


# --- mechanics -----------------------------------------------------------------------------------------------
def test_closed_fingers_push_the_puck_and_a_hand_above_does_not():
    env, params = _params("push", obj=[0.0, 0.65, 0.02], goal=[0.0, 0.85, 0.02])
    start = env.reset_env(KEY, params)[1]
    behind = jnp.array([0.0, 0.58, 0.02]) - jnp.asarray(world.TCP_OFFSET)
    low = start.replace(hand=behind, mocap=behind, closure=jnp.float32(1.0))
    states = _steps(env, params, low, np.tile([0.0, 1.0, 0.0, 1.0], (40, 1)))
    obj = np.asarray(states.obj)
    assert not np.asarray(states.grasped).any()
    assert obj[-1, 1] > 0.75 and abs(obj[-1, 0]) < 1e-3  # pushed ahead along +y
    gap = obj[:, 1] - np.asarray(world.tcp_of(states.hand))[:, 1]
    assert gap.min() >= pucks.PUCK["radius"] - 1e-4  # the puck stays on the rim of the finger disc
    high = start.replace(hand=behind.at[2].add(0.1), mocap=behind.at[2].add(0.1), closure=jnp.float32(1.0))
    states = _steps(env, params, high, np.tile([0.0, 1.0, 0.0, 1.0], (40, 1)))
    np.testing.assert_allclose(np.asarray(states.obj)[-1], [0.0, 0.65, 0.02], atol=1e-7)  # passed over it


def test_grasp_carry_release_and_the_table_stops_a_carried_puck():
    env, params = _params("pick-place", obj=[0.0, 0.65, 0.02], goal=[0.0, 0.85, 0.2])
    state = env.reset_env(KEY, params)[1]
    hover = jnp.array([0.0, 0.65, 0.025]) - jnp.asarray(world.TCP_OFFSET)
    state = state.replace(hand=hover, mocap=hover)
    close = _steps(env, params, state, np.tile([0.0, 0.0, 0.0, 1.0], (20, 1)))
    assert bool(close.grasped[-1])
    np.testing.assert_allclose(close.obj[-1], [0.0, 0.65, 0.02], atol=1e-6)  # closing did not shove it
    down = _steps(env, params, _last(close), np.tile([0.0, 0.0, -1.0, 1.0], (20, 1)))
    assert float(down.obj[:, 2].min()) >= 0.02 - 1e-6  # the table holds the held puck up ...
    assert float(world.tcp_of(down.hand)[-1, 2]) >= 0.02 - 0.005 - 1e-6  # ... and the hand with it
    up = _steps(env, params, _last(down), np.tile([0.0, 0.0, 1.0, 1.0], (20, 1)))
    assert bool(up.grasped[-1]) and float(up.obj[-1, 2]) > 0.12
    np.testing.assert_allclose(up.obj[-1] - world.tcp_of(up.hand[-1]), _last(close).grip_offset, atol=1e-5)
    drop = _steps(env, params, _last(up), np.tile([0.0, 0.0, 0.0, -1.0], (20, 1)))
    assert not bool(drop.grasped[-1]) and float(drop.obj[-1, 2]) == pytest.approx(0.02)


def test_wall_stops_a_carried_puck_and_the_hand_but_not_a_hand_above_it():
    env, params = _params("push-wall", obj=[0.1, 0.65, 0.015], goal=[0.0, 0.88, 0.015])
    lo, hi = (np.asarray(b[0]) for b in pucks.wall_boxes())
    held = _hold(env, params, [0.1, 0.65, 0.02])
    states = _steps(env, params, held, np.tile([0.0, 1.0, 0.0, 1.0], (60, 1)))
    obj, tcp = np.asarray(states.obj), np.asarray(world.tcp_of(states.hand))
    assert bool(states.grasped[-1])
    np.testing.assert_allclose(obj[-1, 1], lo[1] - pucks.HALF[1], atol=1e-6)  # resting against the near face
    assert obj[:, 1].max() <= lo[1] - pucks.HALF[1] + EPS and tcp[:, 1].max() <= lo[1] - pucks.HALF[1] + EPS
    # closed fingers pushing a loose puck into the wall: the puck stops at the face, the hand behind it
    start = env.reset_env(KEY, params)[1]
    behind = jnp.array([0.1, 0.6, 0.02]) - jnp.asarray(world.TCP_OFFSET)
    states = _steps(env, params, start.replace(hand=behind, mocap=behind, closure=jnp.float32(1.0)),
                    np.tile([0.0, 1.0, 0.0, 1.0], (60, 1)))
    obj, tcp = np.asarray(states.obj), np.asarray(world.tcp_of(states.hand))
    assert obj[:, 1].max() <= lo[1] - pucks.HALF[1] + EPS and obj[-1, 1] > lo[1] - pucks.HALF[1] - 1e-3
    assert tcp[:, 1].max() <= lo[1] - pucks.HALF[1] - pucks.PUCK["radius"] + 1e-3
    # fingers alone cannot enter the wall either ...
    empty = env.reset_env(KEY, params.replace(obj_init=jnp.array([-0.05, 0.6, 0.015])))[1]
    at = jnp.array([0.1, 0.68, 0.05]) - jnp.asarray(world.TCP_OFFSET)
    states = _steps(env, params, empty.replace(hand=at, mocap=at), np.tile([0.0, 1.0, 0.0, -1.0], (60, 1)))
    assert np.asarray(world.tcp_of(states.hand))[:, 1].max() <= lo[1] - pucks.FINGER + EPS
    # ... but a hand above the wall's top passes over it
    above = jnp.array([0.1, 0.68, hi[2] + 0.03]) - jnp.asarray(world.TCP_OFFSET)
    states = _steps(env, params, empty.replace(hand=above, mocap=above), np.tile([0.0, 1.0, 0.0, -1.0], (60, 1)))
    assert float(world.tcp_of(states.hand)[-1, 1]) > hi[1] + 0.1


def test_push_wall_experts_go_around_the_wall_and_nothing_enters_it():
    out = rollouts("push-wall")
    lo, hi = (np.asarray(b[0]) for b in pucks.wall_boxes())
    half = np.asarray(pucks.HALF)
    assert not np.all((out["obj"] > lo - half + EPS) & (out["obj"] < hi + half - EPS), -1).any()
    assert not np.all((out["tcp"] > lo - pucks.FINGER + EPS) & (out["tcp"] < hi + pucks.FINGER - EPS), -1).any()
    expert = _runs(out, EXPERT)
    solved = expert["episode"][:, -1]
    passed_left = expert["obj"][..., 0].min(1) < lo[0] - half[0]  # the puck went round the wall's end
    assert passed_left[solved].all()


def _shelf_boxes(params):
    lo, hi = jax.vmap(pucks.shelf_boxes)(params.goal)
    return np.asarray(lo), np.asarray(hi)


def test_shelf_is_solid_for_the_block_and_the_fingers():
    out = rollouts("shelf-place")
    lo, hi = _shelf_boxes(out["params"])  # [runs, parts, 3]
    for points, pad in ((out["obj"], np.asarray(pucks.HALF)), (out["tcp"], pucks.FINGER)):
        p = points[:, :, None]
        inside = np.all((p > lo[:, None] - pad + EPS) & (p < hi[:, None] + pad - EPS), -1)
        assert not inside.any()
    expert = _runs(out, EXPERT)
    rest = np.asarray(jax.vmap(get_task("shelf-place").rest_height)(expert["params"]))
    on_board = np.abs(expert["obj"][:, -1, 2] - rest) < 1e-4
    assert on_board.mean() >= 0.95 and not expert["grasped"][:, -1].any()  # set down and let go ...
    assert expert["success"][:, -1].mean() >= 0.95  # ... and still a success, resting on the board


def test_block_released_over_the_board_rests_on_it_and_one_carried_low_is_stopped():
    env, params = _params("shelf-place", obj=[0.0, 0.55, 0.02], goal=[0.0, 0.85, 0.3])
    task = env.tasks[0]
    rest = float(task.rest_height(params))
    assert rest == pytest.approx(0.27, abs=1e-6)
    held = _hold(env, params, [0.0, 0.85, 0.33], pucks.BLOCK)
    drop = _steps(env, params, held, np.tile([0.0, 0.0, 0.0, -1.0], (60, 1)))
    assert not bool(drop.grasped[-1])
    np.testing.assert_allclose(drop.obj[-1], [0.0, 0.85, rest], atol=1e-6)  # on the board, not through it
    assert bool(task.success(_last(drop), params))
    # closed fingers sweeping the compartment under the board do not touch the block above it
    under_hand = jnp.array([0.0, 0.8, 0.15]) - jnp.asarray(world.TCP_OFFSET)
    sweep = _steps(env, params, _last(drop).replace(hand=under_hand, mocap=under_hand, closure=jnp.float32(1.0)),
                   np.tile([0, 1.0, 0, 1.0], (60, 1)))
    np.testing.assert_allclose(sweep.obj[-1], [0.0, 0.85, rest], atol=1e-6)
    assert float(world.tcp_of(sweep.hand)[-1, 1]) == pytest.approx(0.85 + 0.08 - pucks.FINGER, abs=1e-5)  # back
    # dropped beside the shelf it falls to the table
    beside = _steps(env, params, _hold(env, params, [0.3, 0.85, 0.33], pucks.BLOCK), np.tile([0, 0, 0, -1.0], (60, 1)))
    assert float(beside.obj[-1, 2]) == pytest.approx(0.02)
    # carried toward the shelf at the board's height: stopped at the board's front edge
    low = _steps(env, params, _hold(env, params, [0.0, 0.6, 0.24], pucks.BLOCK), np.tile([0, 1.0, 0, 1.0], (60, 1)))
    front = 0.85 - 0.015 - 0.095
    assert bool(low.grasped[-1])
    np.testing.assert_allclose(low.obj[-1, 1], front - pucks.HALF[1], atol=1e-6)
    assert float(world.tcp_of(low.hand)[-1, 1]) == pytest.approx(front - pucks.HALF[1], abs=1e-5)  # hand stopped
    assert not bool(task.success(_last(low), params))
    # carried into the compartment under the board: stopped by the back panel, not through it
    under = _steps(env, params, _hold(env, params, [0.0, 0.6, 0.15], pucks.BLOCK), np.tile([0, 1.0, 0, 1.0], (60, 1)))
    back = 0.85 + 0.09 - 0.01
    np.testing.assert_allclose(under.obj[-1], [0.0, back - pucks.HALF[1], 0.15], atol=1e-5)
    assert not bool(task.success(_last(under), params))
    # pressed down onto the board while held: the board holds block and hand up
    press = _steps(env, params, _hold(env, params, [0.0, 0.85, 0.3], pucks.BLOCK), np.tile([0, 0, -1.0, 1.0], (60, 1)))
    assert float(press.obj[:, 2].min()) >= rest - 1e-6 and bool(press.grasped[-1])


def test_mixed_env_dispatches_the_puck_tasks():
    """Under ``lax.switch`` each env follows its own task: the same expert trajectory as the single-task env."""
    env = Manipulation(NAMES)
    steps = 80
    picks = [jax.tree.map(lambda x: x[:2], _runs(rollouts(name), EXPERT)["params"]) for name in NAMES]
    tasks = jax.tree.map(lambda *xs: jnp.concatenate(xs), *picks)

    def run(p):
        obs, state = env.reset_env(KEY, p)

        def body(carry, _):
            obs, state = carry
            obs, state, r, _, info = env.step_env(KEY, state, env.scripted_action(obs, p), p)
            return (obs, state), state.obj

        return jax.lax.scan(body, (obs, state), None, steps)[1]

    obj = np.asarray(jax.jit(jax.vmap(run))(tasks))
    single = np.concatenate([_runs(rollouts(name), EXPERT)["obj"][:2, :steps] for name in NAMES])
    np.testing.assert_allclose(obj, single, atol=1e-5)
