"""Pegs, balls and tools (peg-insert-side, peg-unplug-side, basketball, sweep, sweep-into, hammer, stick-pull).

Each task compiles one vmapped 500-step runner (``_runner``) that serves every rollout below: the scripted
expert, zero and random actions over N sampled tasks each, and the hand-built mechanics scenarios
(padded to the same batch).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.manipulation import Manipulation, world
from envs.manipulation.tasks import balls_and_blocks as balls
from envs.manipulation.tasks import pegs, tools

NAMES = tuple(t.name for family in (pegs, balls, tools) for t in family.TASKS)
T, N = 500, 40  # episode length, tasks per policy (CI size; scripts/manipulation_scripted.py runs 100)
B = 3 * N  # batch of the runner
KEY = jax.random.key(0)

# Meta-World v3's numbers (sawyer_<task>_v3.py): hand_init, rand_vec ranges, redraw distance, success threshold
V3 = {
    "peg-insert-side": dict(hand=(0, 0.6, 0.2), obj=((0, 0.5, 0.02), (0.2, 0.7, 0.02)),
                            goal=((-0.35, 0.4, -0.001), (-0.25, 0.7, 0.001)), sep=0.1, threshold=0.07),
    "peg-unplug-side": dict(hand=(0, 0.6, 0.2), obj=((-0.25, 0.6, -0.001), (-0.15, 0.8, 0.001)), sep=0.0,
                            threshold=0.07),
    "basketball": dict(hand=(0, 0.6, 0.2), obj=((-0.1, 0.6, 0.0299), (0.1, 0.7, 0.0301)),
                       goal=((-0.1, 0.85, 0.0), (0.1, 0.9, 0.0)), sep=0.15, threshold=0.08),
    "sweep": dict(hand=(0, 0.6, 0.2), obj=((-0.1, 0.6, 0.02), (0.1, 0.7, 0.02)), sep=0.0, threshold=0.05),
    "sweep-into": dict(hand=(0, 0.6, 0.2), obj=((-0.1, 0.6, 0.02), (0.1, 0.7, 0.02)),
                       goal=((-0.001, 0.8399, 0.0199), (0.001, 0.8401, 0.0201)), sep=0.15, threshold=0.05),
    "hammer": dict(hand=(0, 0.4, 0.2), obj=((-0.1, 0.4, 0.0), (0.1, 0.5, 0.0)),
                   goal=((0.24, 0.74, 0.11), (0.24, 0.74, 0.11)), sep=0.0, threshold=0.09),
    "stick-pull": dict(hand=(0, 0.6, 0.2), obj=((-0.1, 0.55, 0.0), (0.0, 0.65, 0.001)),
                       goal=((0.35, 0.45, 0.0199), (0.45, 0.55, 0.0201)), sep=0.1, threshold=0.12),
}
SNAPS_TO_10 = ("peg-insert-side", "basketball", "sweep", "sweep-into")  # v3: reward = 10 whenever successful


def _env(name):
    env = Manipulation(name)
    return env, env.tasks[0]


def _stack(items):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *items)


@functools.lru_cache(maxsize=None)
def _runner(name):
    """jit(vmap) of a T-step episode from a given state: the expert where ``scripted``, else ``actions``."""
    env, task = _env(name)

    def one(params, state, actions, scripted):
        frame = env._frame(state, task.observe_objects(state, params))
        state = state.replace(prev_frame=frame)
        obs = env._obs(task, frame, frame, params)

        def body(carry, a):
            obs, s = carry
            a = jnp.where(scripted, env.scripted_action(obs, params), a)
            obs, s, _, _, info = env.step_env(KEY, s, a, params)
            raw = task.reward(s, a, params)  # the task's own reward, before the env's clip
            out = dict(success=info["success"], reward=raw, obj=s.obj, obj2=s.obj2, q=s.q, q2=s.q2, hand=s.hand,
                       grasped=s.grasped)
            return (obs, s), out

        return jax.lax.scan(body, (obs, state), actions)[1]

    return jax.jit(jax.vmap(one))


def _simulate(name, params, states, actions, scripted=None):
    """Run the runner on n <= B episodes (padded with copies of the first); returns numpy arrays [n, T, ...]."""
    n = len(np.asarray(params.task_id))
    actions = jnp.broadcast_to(jnp.asarray(actions, jnp.float32), (n, T, 4)) if np.ndim(actions) < 3 \
        else jnp.asarray(actions, jnp.float32)
    scripted = jnp.zeros(n, bool) if scripted is None else jnp.asarray(scripted)
    pad = lambda x: jnp.concatenate([x, jnp.repeat(x[:1], B - n, axis=0)])
    out = _runner(name)(*(jax.tree.map(pad, tree) for tree in (params, states, actions, scripted)))
    return {k: np.asarray(v)[:n] for k, v in out.items()}


def _schedule(*segments):
    """A [T, 4] action sequence: (steps, action) segments, then zeros."""
    rows = [np.tile(np.asarray(a, np.float32), (k, 1)) for k, a in segments]
    rows.append(np.zeros((T - sum(k for k, _ in segments), 4), np.float32))
    return np.concatenate(rows)


def _one(name, state, params, schedule):
    out = _simulate(name, _stack([params]), _stack([state]), schedule[None])
    return {k: v[0] for k, v in out.items()}


def _held(task, params, obj, width):
    """``reset_state`` with object 1 at ``obj`` held between the fingers (TCP at the object)."""
    hand = jnp.asarray(obj, jnp.float32) - jnp.asarray(world.TCP_OFFSET, jnp.float32)
    return task.reset_state(params).replace(obj=jnp.asarray(obj, jnp.float32), hand=hand, mocap=hand,
                                            grasped=jnp.asarray(True), grip_offset=jnp.zeros(3, jnp.float32),
                                            closure=jnp.float32(width))


@functools.lru_cache(maxsize=None)
def _episodes(name):
    """N sampled tasks, each run with the expert, zero actions and uniform random actions."""
    env, task = _env(name)
    tasks = env.task_space.sample_batch(jax.random.key(1), N)
    params = jax.tree.map(lambda x: jnp.concatenate([x, x, x]), tasks)
    states = jax.vmap(task.reset_state)(params)
    rand = jax.random.uniform(jax.random.key(2), (N, T, 4), minval=-1.0, maxval=1.0)
    actions = jnp.concatenate([jnp.zeros((2 * N, T, 4)), rand])
    scripted = jnp.arange(3 * N) < N
    out = _simulate(name, params, states, actions, scripted)
    modes = ("expert", "zero", "random")
    return {mode: {k: v[i * N:(i + 1) * N] for k, v in out.items()} for i, mode in enumerate(modes)}


# --- registration, observation, ranges ---------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_registered_and_reset_observation(name):
    env, params = envs.make(f"{name}-v3")
    task = env.tasks[0]
    assert task.hand_init == V3[name]["hand"] and task.success_threshold == V3[name]["threshold"]
    obs, state = env.reset(KEY, params)
    obs = np.asarray(obs)
    assert obs.shape == (39,)
    np.testing.assert_allclose(obs[0:3], V3[name]["hand"], atol=1e-7)
    assert obs[3] == pytest.approx(1.0)
    np.testing.assert_allclose(obs[4:18], task.observe_objects(state, params), atol=1e-7)
    np.testing.assert_allclose(obs[7:11], task.obj_quat)
    np.testing.assert_array_equal(obs[18:36], obs[0:18])
    np.testing.assert_allclose(obs[36:39], task.target(params), atol=1e-7)
    if name == "hammer":  # object 2 = the nail (nail_link), scalar-first identity, as v3 reports it
        np.testing.assert_allclose(obs[11:18], [0.24, 0.64, 0.11, 1, 0, 0, 0], atol=1e-6)
    elif name == "stick-pull":  # object 2 = the thermos' insertion site, zero quaternion
        np.testing.assert_allclose(obs[11:18], [0.2, 0.6, 0.132, 0, 0, 0, 0], atol=1e-6)
    else:
        assert np.all(obs[11:18] == 0)


@pytest.mark.parametrize("name", NAMES)
def test_sampled_tasks_lie_in_v3_ranges_with_the_redraw_rule(name):
    env, task = _env(name)
    tasks = env.task_space.sample_batch(jax.random.key(3), 500)
    obj, goal = np.asarray(tasks.obj_init), np.asarray(tasks.goal)
    f32 = lambda v: np.asarray(v, np.float32)
    (lo, hi), spec = V3[name]["obj"], V3[name]
    assert np.all(obj >= f32(lo)) and np.all(obj <= f32(hi))
    assert (obj.max(0) - obj.min(0))[:2].min() > 0.5 * (np.subtract(hi, lo)[:2].min())  # really spread out
    if "goal" in spec:
        assert np.all(goal >= f32(spec["goal"][0]) - 1e-7) and np.all(goal <= f32(spec["goal"][1]) + 1e-7)
    if name == "peg-unplug-side":  # the goal is the plug pulled out: wall + (0.194, 0, 0.131)
        np.testing.assert_allclose(goal, obj + [0.194, 0.0, 0.131], atol=1e-6)
    if name == "sweep":  # v3: goal (0.5, obj_y, 0.01)
        np.testing.assert_allclose(goal, np.stack([np.full(500, 0.5), obj[:, 1], np.full(500, 0.01)], 1), atol=1e-7)
    assert task.min_separation == spec["sep"]
    if spec["sep"]:
        assert np.linalg.norm(obj[:, :2] - goal[:, :2], axis=1).min() >= spec["sep"]
    assert bool(jax.vmap(env.task_space.contains)(tasks).all())
    first = jax.tree.map(lambda x: x[0], tasks)
    assert not bool(env.task_space.contains(first.replace(obj_init=first.obj_init + 0.3)))


def test_peg_insert_side_target_is_the_hole_behind_the_box_entrance():
    env, task = _env("peg-insert-side")
    params = env.params_for("peg-insert-side", obj_init=[0.1, 0.6, 0.02], goal=[-0.3, 0.5, 0.0])
    np.testing.assert_allclose(task.target(params), [-0.27, 0.5, 0.13], atol=1e-6)  # box + (0.03, 0, 0.13)


# --- success rules against hand-placed states ------------------------------------------------------------
def _succ(task, state, params):
    return bool(task.success(state, params))


def test_success_rules_peg_insert_side_scales_y_and_z_by_two():
    env, task = _env("peg-insert-side")
    params = env.params_for("peg-insert-side")
    base = task.reset_state(params)
    at = lambda d: base.replace(obj=task.target(params) - jnp.asarray(pegs.PEG_HEAD) + jnp.asarray(d, jnp.float32))
    assert _succ(task, at([0.069, 0, 0]), params) and not _succ(task, at([0.071, 0, 0]), params)
    assert _succ(task, at([0, 0.034, 0]), params) and not _succ(task, at([0, 0.036, 0]), params)  # 2 x 0.035
    assert _succ(task, at([0, 0, -0.034]), params) and not _succ(task, at([0, 0, -0.036]), params)
    assert not _succ(task, base, params)


def test_success_rules_peg_unplug_side():
    env, task = _env("peg-unplug-side")
    params = env.params_for("peg-unplug-side")
    base = task.reset_state(params)
    at = lambda d: base.replace(obj=task.target(params) + jnp.asarray(d, jnp.float32))
    assert _succ(task, at([-0.069, 0, 0]), params) and not _succ(task, at([-0.071, 0, 0]), params)
    assert _succ(task, at([0, 0.0, 0.069]), params) and not _succ(task, at([0, 0.071, 0]), params)
    assert not _succ(task, base, params)  # plugged in: 0.11 from the target


def test_success_rules_basketball_scores_the_point_0_3_high_with_z_doubled():
    env, task = _env("basketball")
    params = env.params_for("basketball")
    base = task.reset_state(params)
    point = task.target(params).at[2].set(0.3)
    at = lambda d: base.replace(obj=point + jnp.asarray(d, jnp.float32))
    assert _succ(task, at([0.079, 0, 0]), params) and not _succ(task, at([0.081, 0, 0]), params)
    assert _succ(task, at([0, 0, 0.039]), params) and not _succ(task, at([0, 0, 0.041]), params)
    assert not _succ(task, base.replace(obj=task.target(params)), params)  # in the hoop's ring: 0.05 low x 2


def test_success_rules_sweep_and_sweep_into():
    env, task = _env("sweep")
    params = env.params_for("sweep")
    base = task.reset_state(params)
    at = lambda d: base.replace(obj=params.goal + jnp.asarray(d, jnp.float32))
    assert _succ(task, at([0.049, 0, 0]), params) and not _succ(task, at([0.051, 0, 0]), params)
    assert _succ(task, at([0, 0, 0.049]), params) and not _succ(task, at([0, 0, 0.051]), params)
    env, task = _env("sweep-into")
    params = env.params_for("sweep-into")
    base = task.reset_state(params)
    at = lambda d: base.replace(obj=params.goal + jnp.asarray(d, jnp.float32))
    assert _succ(task, at([0.0, -0.049, 0]), params) and not _succ(task, at([0.0, -0.051, 0]), params)
    assert _succ(task, at([0.03, 0.03, -0.05]), params)  # xy only: v3's target takes the block's height
    assert not _succ(task, base, params)


def test_success_rules_hammer_reads_the_nail_joint():
    env, task = _env("hammer")
    params = env.params_for("hammer")
    base = task.reset_state(params)
    assert _succ(task, base.replace(q2=jnp.float32(0.091)), params)
    assert not _succ(task, base.replace(q2=jnp.float32(0.089)), params)
    assert not _succ(task, base, params)


def test_success_rules_stick_pull_needs_the_stick_through_the_handle():
    env, task = _env("stick-pull")
    params = env.params_for("stick-pull")
    base = task.reset_state(params)
    target = task.target(params)

    def at(dx, stick_dx=0.02):
        handle = target.at[2].set(0.132).at[0].add(dx)
        stick = handle - jnp.asarray([tools.STICK_HALF[0] - stick_dx, 0.0, 0.0])  # end stick_dx past the handle
        return base.replace(obj2=handle, obj=stick)

    # |handle - target| <= 0.12 with the handle 0.112 above the target: dx <= 0.0431
    assert _succ(task, at(0.042), params) and not _succ(task, at(0.045), params)
    assert not _succ(task, at(0.0, stick_dx=-0.01), params)  # the stick's end short of the handle
    assert not _succ(task, base, params)


# --- rewards ---------------------------------------------------------------------------------------------
def test_rewards_snap_to_10_where_v3_does():
    env, task = _env("peg-unplug-side")
    params = env.params_for("peg-unplug-side")
    base, act = task.reset_state(params), jnp.zeros(4)
    at = lambda dx: base.replace(obj=task.target(params) - jnp.asarray([dx, 0.0, 0.0]))
    assert float(task.reward(at(0.049), act, params)) == 10.0
    assert bool(task.success(at(0.06), params)) and float(task.reward(at(0.06), act, params)) < 10.0

    env, task = _env("hammer")
    params = env.params_for("hammer")
    driven = task.reset_state(params).replace(q2=jnp.float32(0.095))
    assert float(task.reward(driven, act, params)) < 5.0  # the hammer still on the table: v3 refuses 10
    at_nail = driven.replace(obj=jnp.asarray([0.08, 0.658, 0.11]))  # the head on the driven nail
    assert float(task.reward(at_nail, act, params)) == 10.0

    env, task = _env("stick-pull")
    params = env.params_for("stick-pull")
    target = task.target(params)
    handle = target.at[2].set(0.132)
    stick = handle + jnp.asarray([0.0, 0.0, 0.0])
    state = _held(task, params, stick, tools.STICK_WIDTH).replace(obj2=handle)
    assert bool(task.success(state, params)) and float(task.reward(state, jnp.ones(4), params)) == 10.0


@pytest.mark.parametrize("name", NAMES)
def test_rewards_lie_in_0_10_and_are_10_at_success(name):
    eps = _episodes(name)
    for mode in ("expert", "zero", "random"):
        r = eps[mode]["reward"]
        assert np.all(np.isfinite(r)) and r.min() >= 0.0 and r.max() <= 10.0, mode
    expert = eps["expert"]
    assert expert["reward"][:, -1].mean() > 9.5  # the expert ends holding the success
    if name in SNAPS_TO_10:
        np.testing.assert_array_equal(expert["reward"][expert["success"]], 10.0)
    assert eps["zero"]["reward"].max() < 10.0


# --- the expert and doing nothing ------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_expert_solves_the_task_and_doing_nothing_never_does(name):
    eps = _episodes(name)
    expert = eps["expert"]["success"].any(1)
    assert expert.mean() >= 0.95, f"{name}: expert {expert.mean():.2f}"
    assert not eps["zero"]["success"].any(), name
    assert eps["random"]["success"].any(1).mean() <= 0.05, name
    first = eps["expert"]["success"].argmax(1)[expert]
    assert 20 < first.mean() < 300  # takes a real approach, well inside the 500 steps


@pytest.mark.parametrize("name", NAMES)
def test_nothing_moves_when_the_arm_does_nothing(name):
    zero = _episodes(name)["zero"]
    for key in ("obj", "obj2", "q", "q2"):
        np.testing.assert_allclose(zero[key], np.broadcast_to(zero[key][:, :1], zero[key].shape), atol=1e-6)
    assert not zero["grasped"].any()


# --- mechanics -------------------------------------------------------------------------------------------
def test_peg_enters_the_box_only_through_its_side_hole():
    env, task = _env("peg-insert-side")
    params = env.params_for("peg-insert-side", obj_init=[0.1, 0.6, 0.02], goal=[-0.3, 0.6, 0.0])
    box, target = jnp.asarray(params.goal), task.target(params)
    aligned = target - jnp.asarray(pegs.PEG_HEAD) + jnp.asarray([0.12, 0.0, 0.0])  # head 12 cm before the target
    push = _schedule((200, [-1.0, 0.0, 0.0, 1.0]))
    states = [_held(task, params, aligned + jnp.asarray(d), pegs.PEG_WIDTH)
              for d in ([0, 0, 0], [0, 0.03, 0], [0, 0, 0.05])]
    out = _simulate("peg-insert-side", _stack([params] * 3), _stack(states), np.stack([push] * 3))
    head_x = out["obj"][:, :, 0] + pegs.PEG_HEAD[0]
    assert out["grasped"][:, 199].all()
    entrance = float(box[0]) + pegs.PEG_BOX_HALF[0]
    assert head_x[0, 199] < float(target[0]) - 0.01 and out["success"][0].any()  # in the hole
    tcp_x = out["hand"][0, :, 0]
    assert tcp_x.min() >= float(box[0]) + pegs.PEG_BOX_HALF[0] + 0.01 - 1e-4  # the fingers stop at the face
    for i in (1, 2):  # off the hole: the face stops the peg
        assert head_x[i].min() >= entrance - 1e-4 and not out["success"][i].any()


def test_peg_and_fingers_never_enter_the_box_in_any_rollout():
    eps = _episodes("peg-insert-side")
    env, task = _env("peg-insert-side")
    tasks = env.task_space.sample_batch(jax.random.key(1), N)
    for mode in ("expert", "random"):
        obj, hand = eps[mode]["obj"], eps[mode]["hand"]
        collide = jax.vmap(jax.vmap(pegs._peg_collides, (0, None)))(jnp.asarray(obj), tasks.goal)
        fingers = jax.vmap(jax.vmap(pegs._peg_tcp_blocked, (0, None)))(world.tcp_of(jnp.asarray(hand)), tasks.goal)
        assert not bool(collide.any()) and not bool(fingers.any()), mode


def test_plug_slides_only_out_of_its_socket_then_falls_when_released():
    env, task = _env("peg-unplug-side")
    params = env.params_for("peg-unplug-side")
    plugged = task.plugged(params)
    held = _held(task, params, plugged, pegs.PLUG_WIDTH)
    sideways = _schedule((40, [0.0, 1.0, 1.0, 1.0]), (40, [-1.0, 0.0, 0.0, 1.0]))
    pull = _schedule((60, [1.0, 0.0, 0.0, 1.0]), (40, [0.0, 0.0, 0.0, -1.0]))
    loose = task.reset_state(params)  # not held: the fingers cannot drag it
    out = _simulate("peg-unplug-side", _stack([params] * 3), _stack([held, held, loose]),
                    np.stack([sideways, pull, pull]))
    np.testing.assert_allclose(out["obj"][0], np.broadcast_to(plugged, out["obj"][0].shape), atol=1e-5)
    assert out["grasped"][0, :80].all()  # held, yet neither y/z nor pushing deeper moves it
    obj = out["obj"][1]
    assert obj[59, 0] > float(plugged[0]) + pegs.PLUG_DEPTH and out["q"][1, 59] == pytest.approx(pegs.PLUG_DEPTH)
    np.testing.assert_allclose(obj[:20, 1:], np.broadcast_to(plugged[1:], (20, 2)), atol=1e-5)
    assert out["success"][1].any()
    assert obj[-1, 2] == pytest.approx(pegs.PLUG_REST_Z)  # released outside the socket: on the table
    np.testing.assert_allclose(out["obj"][2], np.broadcast_to(plugged, out["obj"][2].shape), atol=1e-6)


def test_ball_is_stopped_by_the_backboard_and_falls_through_the_hoop():
    env, task = _env("basketball")
    params = env.params_for("basketball")
    hoop, basket = task.target(params), jnp.asarray(params.goal)
    into_board = _held(task, params, hoop.at[2].set(0.3), balls.BALL_WIDTH)
    over_ring = _held(task, params, hoop.at[2].set(0.33), balls.BALL_WIDTH)
    over_rim = _held(task, params, hoop.at[2].set(0.33).at[0].add(balls.RIM_R), balls.BALL_WIDTH)
    forward = _schedule((60, [0.0, 1.0, 0.0, 1.0]))
    drop = _schedule((5, [0.0, 0.0, 0.0, -1.0]))
    out = _simulate("basketball", _stack([params] * 3), _stack([into_board, over_ring, over_rim]),
                    np.stack([forward, drop, drop]))
    board_front = float(basket[1]) + balls.BOARD_LO[1] - balls.BALL_R
    assert out["obj"][0, :, 1].max() <= board_front + 1e-4 and out["grasped"][0, 59]
    through = out["obj"][1]
    assert through[-1, 2] == pytest.approx(balls.BALL_R) and out["success"][1].any()  # through the ring
    np.testing.assert_allclose(through[-1, :2], hoop[:2], atol=1e-6)
    assert out["obj"][2, -1, 2] > 0.25  # resting on the rim


def test_block_is_carried_pushed_and_released_to_the_table():
    env, task = _env("sweep")
    params = env.params_for("sweep", obj_init=[0.0, 0.65, 0.02])
    start = task.reset_state(params)
    low = jnp.asarray([-0.1, 0.65, 0.06])  # closed fingers 10 cm before the block, low, sweeping +x
    sweeper = start.replace(hand=low, mocap=low)
    carried = _held(task, params, jnp.asarray([0.0, 0.65, 0.1]), balls.BLOCK_WIDTH)
    sweep = _schedule((50, [1.0, 0.0, 0.0, 1.0]))
    carry = _schedule((30, [1.0, 0.0, 0.0, 1.0]), (20, [0.0, 0.0, 0.0, -1.0]))
    out = _simulate("sweep", _stack([params] * 2), _stack([sweeper, carried]), np.stack([sweep, carry]))
    assert out["obj"][0, -1, 0] > 0.2 and not out["grasped"][0].any()  # pushed along, never held
    assert out["obj"][0, -1, 2] == pytest.approx(balls.BLOCK_HALF)
    assert out["obj"][1, 29, 2] == pytest.approx(0.1, abs=0.01) and out["obj"][1, 29, 0] > 0.15
    assert out["obj"][1, -1, 2] == pytest.approx(balls.BLOCK_HALF)  # released: back on the table


def test_block_drops_into_the_hole_and_not_through_the_table():
    env, task = _env("sweep-into")
    params = env.params_for("sweep-into")
    hole = jnp.asarray(params.goal)
    over_hole = _held(task, params, hole.at[2].set(0.05).at[1].add(0.06), balls.BLOCK_WIDTH)
    beside = _held(task, params, hole.at[2].set(0.05).at[1].add(-0.15), balls.BLOCK_WIDTH)
    drop = _schedule((10, [0.0, 0.0, 0.0, -1.0]))
    press = _schedule((30, [0.0, 0.0, -1.0, 1.0]))
    out = _simulate("sweep-into", _stack([params] * 3), _stack([over_hole, beside, beside]),
                    np.stack([drop, drop, press]))
    fallen = out["obj"][0, -1]
    assert fallen[2] == pytest.approx(balls.POCKET_Z)  # in the hole, against its wall
    assert abs(fallen[1] - float(hole[1])) <= balls.HOLE_HALF - balls.BLOCK_HALF + 1e-6
    assert out["obj"][1, -1, 2] == pytest.approx(balls.BLOCK_HALF)  # beside it: on the table
    assert out["obj"][2, :, 2].min() >= balls.BLOCK_HALF - 1e-4  # a held block is not pressed into the table


def test_hammer_head_drives_the_nail_and_the_fingers_alone_do_not():
    env, task = _env("hammer")
    params = env.params_for("hammer")
    strike = jnp.asarray([tools.NAIL[0] - tools.HAMMER_HEAD[0], 0.5, tools.NAIL[2]])
    swing = _held(task, params, strike, tools.HAMMER_WIDTH)
    fingers = task.reset_state(params)
    hand = jnp.asarray([tools.NAIL[0], 0.55, tools.NAIL[2]]) - jnp.asarray(world.TCP_OFFSET)
    fingers = fingers.replace(hand=hand, mocap=hand)
    forward = _schedule((60, [0.0, 1.0, 0.0, 1.0]))
    out = _simulate("hammer", _stack([params] * 2), _stack([swing, fingers]), np.stack([forward, forward]))
    q2 = out["q2"][0]
    assert np.all(np.diff(q2) >= 0) and q2[-1] > 0.09 and q2.max() <= tools.NAIL_MAX + 1e-6
    face = out["obj"][0, :, 1] + tools.HEAD_HALF[1]
    assert face.max() <= tools.NAIL[1] - tools.NAIL_HEAD_HALF[1] + tools.NAIL_MAX + 1e-4  # stopped by the driven nail
    assert out["success"][0].any()
    assert out["q2"][1].max() == 0.0 and not out["success"][1].any()
    assert not bool(jax.vmap(tools._block_tcp_blocked)(world.tcp_of(jnp.asarray(out["hand"][1]))).any())


def test_hammer_never_enters_the_block_in_any_rollout():
    eps = _episodes("hammer")
    for mode in ("expert", "random"):
        collide = jax.vmap(jax.vmap(tools._hammer_collides))(jnp.asarray(eps[mode]["obj"]))
        assert not bool(collide.any()), mode
        assert eps[mode]["q2"].max() <= tools.NAIL_MAX + 1e-6


def test_stick_drags_the_thermos_through_its_handle_and_the_hand_cannot():
    env, task = _env("stick-pull")
    params = env.params_for("stick-pull")
    handle = jnp.asarray(tools.THERMOS_HANDLE)
    through = _held(task, params, handle + jnp.asarray([-0.025, 0.0, 0.0]),
                    tools.STICK_WIDTH)  # fingers before the loop
    tip_push = _held(task, params, jnp.asarray([0.2, 0.69 - 0.062 - 0.1, 0.05]) - jnp.asarray([0.05, 0, 0]),
                     tools.STICK_WIDTH)  # the stick's tip just in front of the thermos' body, pointing +x
    hand = jnp.asarray([0.2, 0.69 - 0.15, 0.1]) - jnp.asarray(world.TCP_OFFSET)
    bare = task.reset_state(params).replace(hand=hand, mocap=hand)
    drag = _schedule((25, [0.0, -1.0, 0.0, 1.0]), (30, [0.0, 0.0, 1.0, 1.0]))
    poke = _schedule((40, [0.0, 1.0, 0.0, 1.0]))
    out = _simulate("stick-pull", _stack([params] * 3), _stack([through, tip_push, bare]),
                    np.stack([drag, poke, poke]))
    stick, thermos = out["obj"][0], out["obj2"][0]
    assert thermos[24, 1] < float(handle[1]) - 0.1  # dragged sideways
    assert np.all(np.abs(stick[:, 1] - thermos[:, 1]) <= tools.LOOP_SLACK_Y + 1e-5)
    assert stick[:, 2].max() <= float(handle[2]) + tools.LOOP_SLACK_Z + 1e-4  # the loop stops the lift
    np.testing.assert_allclose(thermos[:, 2], float(handle[2]))
    assert out["obj2"][1, -1, 1] > float(handle[1]) + 0.02  # the tip pushes the body along +y
    np.testing.assert_allclose(out["obj2"][2], np.broadcast_to(handle, out["obj2"][2].shape), atol=1e-6)


def test_thermos_stays_within_its_joint_limits_in_any_rollout():
    eps = _episodes("stick-pull")
    for mode in ("expert", "random"):
        xy = eps[mode]["obj2"][..., :2]
        assert np.all(xy >= np.asarray(tools.HANDLE_LO) - 1e-6) and np.all(xy <= np.asarray(tools.HANDLE_HI) + 1e-6)
        np.testing.assert_allclose(eps[mode]["obj2"][..., 2], tools.THERMOS_HANDLE[2])
