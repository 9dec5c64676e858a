"""Dark Room / Dark Room Hard: dynamics, rewards, task space and exact optimal returns."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import dark_room as D

NOOP, UP, RIGHT, DOWN, LEFT = range(5)


def _params(goal, steps=20):
    return D.DarkRoomParams(goal=jnp.asarray(goal, jnp.int32), max_steps_in_episode=jnp.asarray(steps, jnp.int32))


def _play(env, params, actions, start=None):
    """Positions, rewards and flags along a fixed action sequence (gymnax ``step``, auto-reset included)."""
    key = jax.random.key(0)
    _, state = env.reset(key, params)
    if start is not None:
        state = state.replace(pos=jnp.asarray(start, jnp.int32))
    out = []
    for a in actions:
        obs, state, reward, term, trunc, _ = env.step(key, state, a, params)
        out.append((tuple(int(x) for x in state.pos), float(reward), bool(term), bool(trunc), np.asarray(obs)))
    return out


def _exact_optimum(size, goal, horizon, reward_once, start):
    """Backward induction over (time, cell, reached) with the env's own move rule: an independent check."""
    rows, cols = np.divmod(np.arange(size * size), size)
    nxt = np.stack([np.clip(rows + dr, 0, size - 1) * size + np.clip(cols + dc, 0, size - 1)
                    for dr, dc in D.ACTION_DELTAS], axis=1)  # [cell, action]
    goal_cell = goal[0] * size + goal[1]
    value = np.zeros((size * size, 2))  # [cell, reached] with 0 steps left
    for _ in range(horizon):
        on = nxt == goal_cell  # [cell, action]: the step ends on the goal
        new = np.empty_like(value)
        for reached in (0, 1):
            pay = on & (not (reward_once and reached))
            after = value[nxt, np.where(on, 1, reached)]
            new[:, reached] = np.max(pay + after, axis=1)
        value = new
    return value[start[0] * size + start[1], 0]


def test_registry_and_spaces():
    env, params = envs.make("dark-room")
    assert (env.size, env.reward_once, env.random_start) == (9, False, False)
    assert env.observation_space(params).shape == (81,) and env.action_space(params).n == 5
    assert int(params.max_steps_in_episode) == 20
    hard, hard_params = envs.make("dark-room-hard")
    assert (hard.size, hard.reward_once) == (17, True) and hard.observation_space(hard_params).shape == (289,)
    assert envs.make("dark-room", random_start=True)[0].random_start
    assert envs.make("dark-room", goal=[2, 3])[1].goal.tolist() == [2, 3]
    assert env == D.DarkRoom() and env != hard and hash(env) == hash(D.DarkRoom())
    with pytest.raises(ValueError, match="size"):
        D.DarkRoom(size=1)


def test_moves_edges_noop_and_one_hot_obs():
    env = D.DarkRoom()
    params = _params([8, 8])  # far away: no reward on the way
    steps = _play(env, params, [NOOP, UP, RIGHT, DOWN, LEFT, LEFT])
    assert [s[0] for s in steps] == [(4, 4), (3, 4), (3, 5), (4, 5), (4, 4), (4, 3)]
    # corner (0, 0): up and left are blocked by the room's edge, right/down move
    steps = _play(env, params, [UP, LEFT, NOOP, RIGHT, DOWN], start=[0, 0])
    assert [s[0] for s in steps] == [(0, 0), (0, 0), (0, 0), (0, 1), (1, 1)]
    # opposite corner: down and right blocked
    steps = _play(env, _params([0, 0]), [DOWN, RIGHT, UP], start=[8, 8])
    assert [s[0] for s in steps] == [(8, 8), (8, 8), (7, 8)]
    for pos, _, _, _, obs in steps:  # one-hot of the agent's cell, the goal is not in it
        assert obs.shape == (81,) and obs.sum() == 1.0 and obs[pos[0] * 9 + pos[1]] == 1.0
    # same state, different goals: same observation
    a = _play(env, _params([0, 0]), [UP])[0][4]
    b = _play(env, _params([3, 4]), [UP])[0][4]
    np.testing.assert_array_equal(a, b)


def test_reward_every_step_on_goal_and_truncation():
    env = D.DarkRoom()
    params = _params([4, 6])
    actions = [RIGHT, RIGHT, NOOP, NOOP, UP, DOWN, LEFT, RIGHT] + [NOOP] * 12
    steps = _play(env, params, actions)
    rewards = [s[1] for s in steps]
    assert rewards[:8] == [0, 1, 1, 1, 0, 1, 0, 1]
    assert sum(rewards) == 5 + 12  # 12 more no-ops on the goal
    assert not any(s[2] for s in steps), "Dark Room is never terminal"
    assert [s[3] for s in steps] == [False] * 19 + [True]  # truncated at 20 steps
    assert steps[-1][0] == (4, 4)  # auto-reset to the centre


def test_hard_room_pays_first_arrival_only():
    env, _ = envs.make("dark-room-hard")
    assert env.centre == (8, 8)
    params = _params([8, 10])
    actions = [RIGHT, RIGHT, NOOP, LEFT, RIGHT, NOOP] + [NOOP] * 14
    steps = _play(env, params, actions)
    assert [s[1] for s in steps][:6] == [0, 1, 0, 0, 0, 0]
    assert sum(s[1] for s in steps) == 1
    assert [s[3] for s in steps] == [False] * 19 + [True] and not any(s[2] for s in steps)
    # the next episode pays again
    later = _play(env, params, actions * 2)
    assert sum(s[1] for s in later) == 2


def test_optimal_return_by_hand_and_by_exact_dp():
    # 21 - d from the centre of the 9x9 room; the centre itself (d = 0) is 20
    by_hand = {(4, 5): 20, (3, 4): 20, (4, 0): 17, (0, 0): 13, (8, 8): 13, (2, 7): 16, (4, 4): 20}
    for goal, want in by_hand.items():
        assert float(D.optimal_return(_params(goal))) == want, goal
        assert _exact_optimum(9, goal, 20, False, (4, 4)) == want, goal
    goals = [(r, c) for r in range(9) for c in range(9)]
    formula = np.asarray(D.optimal_return(_params(goals)))
    exact = np.array([_exact_optimum(9, g, 20, False, (4, 4)) for g in goals])
    np.testing.assert_array_equal(formula, exact)
    # short horizons: unreachable goals give 0, and the formula tracks T
    for goal, steps in (((0, 0), 8), ((0, 0), 7), ((2, 4), 3)):
        want = _exact_optimum(9, goal, steps, False, (4, 4))
        assert float(D.optimal_return(_params(goal, steps))) == want
    assert float(D.optimal_return(_params((0, 0), 7))) == 0.0
    # hard room: 1 whenever reachable (16 steps at most from the centre of 17x17)
    hard_goals = [(0, 0), (8, 9), (16, 3), (8, 8)]
    for g in hard_goals:
        assert _exact_optimum(17, g, 20, True, (8, 8)) == 1.0
        assert float(D.optimal_return(_params(g), size=17, reward_once=True)) == 1.0
    assert _exact_optimum(17, (0, 0), 15, True, (8, 8)) == 0.0
    assert float(D.optimal_return(_params((0, 0), 15), size=17, reward_once=True)) == 0.0


def test_random_start_optimum_is_the_average_over_starts():
    env = D.DarkRoom(random_start=True)
    goal = (1, 6)
    want = np.mean([_exact_optimum(9, goal, 20, False, (r, c)) for r in range(9) for c in range(9)])
    assert float(env.optimal_return(_params(goal))) == pytest.approx(want, abs=1e-5)
    starts = jax.vmap(lambda k: env.reset(k, _params(goal))[1].pos)(jax.random.split(jax.random.key(1), 400))
    cells = np.asarray(starts[:, 0] * 9 + starts[:, 1])
    assert len(set(cells.tolist())) > 70  # spread over the room


def test_mean_optimum_over_goals_and_sampler_support():
    env, _ = envs.make("dark-room")
    goals = env.all_goals()
    assert goals.goal.shape == (80, 2) and not np.any(np.all(np.asarray(goals.goal) == 4, axis=1))
    optimum = np.asarray(env.optimal_return(goals))
    assert optimum.mean() == 16.5 and optimum.max() == 20 and optimum.min() == 13
    # all 81 cells: (80 * 16.5 + 20) / 81
    every = D.DarkRoom(include_centre_goal=True).all_goals()
    assert float(jnp.mean(D.optimal_return(every))) == pytest.approx(1340 / 81)
    # the sampler draws the 80 non-centre goals, the box admits all 81
    sampled = env.task_space.sample_batch(jax.random.key(0), 2000)
    cells = set((np.asarray(sampled.goal) @ np.array([9, 1])).tolist())
    assert cells == set(range(81)) - {40}
    assert bool(env.task_space.contains(_params([4, 4])))
    assert not bool(env.task_space.contains(_params([9, 0])))


def test_walking_to_the_goal_earns_the_optimum_for_every_goal():
    """Roll out 'walk straight to the goal, then no-op' in the env for all goals (jit + vmap)."""
    for name in ("dark-room", "dark-room-hard"):
        env, _ = envs.make(name)
        goals = D.DarkRoom(env.size, env.reward_once, include_centre_goal=True).all_goals()

        def episode(params):
            _, state = env.reset(jax.random.key(0), params)

            def body(state, key):
                dr, dc = params.goal - state.pos
                action = jnp.select([dr < 0, dr > 0, dc > 0, dc < 0], [UP, DOWN, RIGHT, LEFT], NOOP)
                _, state, reward, _, _, _ = env.step(key, state, action, params)
                return state, reward

            return jnp.sum(jax.lax.scan(body, state, jax.random.split(jax.random.key(1), 20))[1])

        earned = np.asarray(jax.jit(jax.vmap(episode))(goals))
        np.testing.assert_array_equal(earned, np.asarray(env.optimal_return(goals)))
