"""Maze (UED): dynamics, observation, BFS, generator, mutations, named mazes."""

from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import maze as M
from envs.task_space import stack_tasks

FORWARD, LEFT, RIGHT, NOOP = M.ACTION_FORWARD, M.ACTION_LEFT, M.ACTION_RIGHT, 3
T = M.DEFAULT_MAX_STEPS

# Path (0,0)->(2,0)->(2,2)->(4,2)->(4,0): 8 moves around two wall columns.
DETOUR = """
>..#G
.#.#.
.#...
"""
BLOCKED = """
>.#..
..#.G
..#..
"""
# Agent at (2,2) facing up, goal straight ahead at (2,1), wall at (1,1).
VIEW = """
.....
.#G..
..^..
.....
"""


def python_bfs(level) -> int:
    """Independent reference: plain BFS on the host; -1 when the goal is unreachable."""
    walls = np.asarray(level.wall_map)
    w, h = int(level.width), int(level.height)
    start, goal = tuple(np.asarray(level.agent_pos).tolist()), tuple(np.asarray(level.goal_pos).tolist())
    dist = {start: 0}
    queue = deque([start])
    while queue:
        x, y = queue.popleft()
        if (x, y) == goal:
            return dist[(x, y)]
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nx, ny = x + dx, y + dy
            if 0 <= nx < w and 0 <= ny < h and not walls[ny, nx] and (nx, ny) not in dist:
                dist[(nx, ny)] = dist[(x, y)] + 1
                queue.append((nx, ny))
    return -1


def host_valid(level) -> bool:
    walls = np.asarray(level.wall_map)
    w, h = int(level.width), int(level.height)
    ax, ay = np.asarray(level.agent_pos).tolist()
    gx, gy = np.asarray(level.goal_pos).tolist()
    inside = 0 <= ax < w and 0 <= ay < h and 0 <= gx < w and 0 <= gy < h
    return inside and (ax, ay) != (gx, gy) and not walls[ay, ax] and not walls[gy, gx]


def unstack(batch, n):
    host = jax.device_get(batch)  # one transfer, then cheap numpy indexing
    return [jax.tree.map(lambda x, i=i: x[i], host) for i in range(n)]


N_LEVELS = 200  # one batch size everywhere, so each jitted helper compiles once


@jax.jit
def sample_levels(key):
    return M.Maze().task_space.sample_batch(key, N_LEVELS)


def _mutate_batch(move_agent):
    one = lambda key, level, n_edits: M.mutate_level(key, level, n_edits, move_agent)  # noqa: E731
    return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))


MUTATE = {flag: _mutate_batch(flag) for flag in (False, True)}


batch_valid = jax.jit(jax.vmap(M.is_valid_level))
batch_solvable = jax.jit(jax.vmap(M.is_solvable))
batch_path_length = jax.jit(jax.vmap(M.shortest_path_length))


@pytest.fixture(scope="module")
def env():
    return M.Maze()


# --- construction and registry ---------------------------------------------------------
def test_registry_and_static_args():
    names = envs.registered()
    assert "maze" in names
    for name in M.NAMED_MAZES:
        assert f"maze-{name}" in names
    env, params = envs.make("maze", n_walls=0)
    assert env.n_walls == 0 and not bool(params.wall_map.any())
    env2, _ = envs.make("maze", n_walls=0)
    assert env == env2 and hash(env) == hash(env2) and env != M.Maze(n_walls=3)
    _, lab = envs.make("maze-Labyrinth")
    assert M.render_level(lab) == M.NAMED_MAZES["Labyrinth"]
    _, moved = envs.make("maze", agent_dir=2)
    assert int(moved.agent_dir) == 2


def test_bad_input_raises():
    with pytest.raises(ValueError, match="view_size"):
        M.Maze(view_size=4)
    with pytest.raises(ValueError, match="n_walls"):
        M.Maze(n_walls=-1)
    with pytest.raises(ValueError, match="unknown maze"):
        M.named_maze_params("Nope")
    with pytest.raises(ValueError, match="larger than the maximum"):
        envs.make("maze-Labyrinth", max_height=11)
    with pytest.raises(ValueError, match="exactly one agent"):
        M.level_from_string("..G\n...")
    with pytest.raises(ValueError, match="unknown characters"):
        M.level_from_string(">.x\n..G")
    with pytest.raises(ValueError, match="invalid level"):
        lvl = M.level_from_string(">.G")
        M.Maze().task_space.check(lvl.replace(goal_pos=lvl.agent_pos))


# --- observation -------------------------------------------------------------------
def test_egocentric_view_hand_checked(env):
    level = M.level_from_string(VIEW)
    obs, state = env.reset(jax.random.PRNGKey(0), level)
    assert obs.shape == (79,) and obs.dtype == jnp.float32
    view = np.asarray(obs[:75]).reshape(5, 5, 3)
    # facing up from (2,2): rows 0,1 are y=-2,-1 (outside), row 2 is y=0, row 3 is y=1, row 4 the agent row
    wall = np.array([[1] * 5, [1] * 5, [0] * 5, [0, 1, 0, 0, 0], [0] * 5])
    goal = np.zeros((5, 5))
    goal[3, 2] = 1
    np.testing.assert_array_equal(view[..., 0], wall)
    np.testing.assert_array_equal(view[..., 1], goal)
    np.testing.assert_array_equal(view[..., 2], np.array([[1] * 5, [1] * 5] + [[0] * 5] * 3))
    np.testing.assert_array_equal(obs[75:], [0, 0, 0, 1])
    # turn right -> facing +x; the agent's right is +y; x >= 5 and y >= 4 are outside the 5x4 level
    obs, state, *_ = env.step(jax.random.PRNGKey(1), state, RIGHT, level)
    view = np.asarray(obs[:75]).reshape(5, 5, 3)
    edge = [0, 0, 0, 0, 1]
    np.testing.assert_array_equal(view[..., 0], np.array([[1] * 5, [1] * 5, edge, edge, edge]))
    goal = np.zeros((5, 5))
    goal[4, 1] = 1  # goal (2,1) is one cell to the agent's left
    np.testing.assert_array_equal(view[..., 1], goal)
    np.testing.assert_array_equal(obs[75:], [1, 0, 0, 0])


def test_obs_in_space_and_deterministic(env):
    space = env.observation_space(env.default_params)
    levels = sample_levels(jax.random.PRNGKey(3))
    keys = jax.random.split(jax.random.PRNGKey(4), N_LEVELS)
    obs, states = jax.vmap(env.reset)(keys, levels)
    assert obs.shape == (N_LEVELS, env.obs_size)
    assert bool(jax.vmap(space.contains)(obs).all())
    obs2, states2 = jax.vmap(env.reset)(keys, levels)
    np.testing.assert_array_equal(obs, obs2)
    actions = jax.random.randint(jax.random.PRNGKey(5), (N_LEVELS,), 0, M.NUM_ACTIONS)
    out1 = jax.vmap(env.step)(keys, states, actions, levels)
    out2 = jax.vmap(env.step)(keys, states, actions, levels)
    jax.tree.map(np.testing.assert_array_equal, out1, out2)
    assert bool(jax.vmap(space.contains)(out1[0]).all())


# --- dynamics ----------------------------------------------------------------------
def test_walls_and_edges_block_and_turns(env):
    level = M.level_from_string(VIEW)
    key = jax.random.PRNGKey(0)
    _, state = env.reset(key, level)
    _, state, *_ = env.step(key, state, LEFT, level)  # face left: (1,2) is free
    assert int(state.agent_dir) == 2
    _, state, reward, term, trunc, _ = env.step(key, state, FORWARD, level)
    assert state.agent_pos.tolist() == [1, 2] and float(reward) == 0.0
    _, state, *_ = env.step(key, state, RIGHT, level)  # face up: wall at (1,1)
    _, state, reward, term, *_ = env.step(key, state, FORWARD, level)
    assert state.agent_pos.tolist() == [1, 2] and not bool(term) and int(state.time) == 4
    for _ in range(2):
        _, state, *_ = env.step(key, state, LEFT, level)  # face down
    for _ in range(3):  # one move to y=3, then the bottom edge blocks
        _, state, *_ = env.step(key, state, FORWARD, level)
    assert state.agent_pos.tolist() == [1, 3] and int(state.agent_dir) == 1
    for action in range(3, M.NUM_ACTIONS):  # pickup/drop/toggle/done do nothing
        _, new, *_ = env.step(key, state, action, level)
        assert new.agent_pos.tolist() == [1, 3] and int(new.agent_dir) == 1


def test_goal_reward_terminates_and_autoresets(env):
    level = M.level_from_string(VIEW)
    key = jax.random.PRNGKey(0)
    obs0, state = env.reset(key, level)
    for _ in range(2):  # two no-ops, so the goal is reached at t = 2
        _, state, *_ = env.step(key, state, NOOP, level)
    obs, state, reward, term, trunc, info = env.step(key, state, FORWARD, level)
    assert float(reward) == pytest.approx(1.0 - 0.9 * 3 / 250, abs=1e-6)
    assert bool(term) and not bool(trunc) and bool(info["success"])
    # the goal blocks movement: the final observation still shows the goal one cell ahead
    assert float(info["final_observation"][(3 * 5 + 2) * 3 + 1]) == 1.0
    np.testing.assert_array_equal(obs, obs0)  # auto-reset to the start of the level
    assert int(state.time) == 0 and state.agent_pos.tolist() == [2, 2]


def test_time_limit_truncates(env):
    _, level = envs.make("maze-SixteenRooms", max_steps_in_episode=5)
    key = jax.random.PRNGKey(0)
    _, state = env.reset(key, level)
    for t in range(5):
        _, state, reward, term, trunc, _ = env.step(key, state, NOOP, level)
        assert bool(trunc) == (t == 4) and not bool(term)
    assert int(state.time) == 0  # reset after truncation


# --- shortest paths ------------------------------------------------------------------
def test_bfs_hand_made_levels():
    detour = M.level_from_string(DETOUR)
    assert int(M.shortest_path_length(detour)) == 8 and bool(M.is_solvable(detour))
    dist = np.asarray(M.distance_map(detour))
    assert dist[0, 0] == 0 and dist[2, 0] == 2 and dist[2, 2] == 4 and dist[1, 4] == 7
    assert dist[1, 1] == M.UNREACHABLE  # wall
    assert dist[5, 5] == M.UNREACHABLE  # outside the 5x3 level
    blocked = M.level_from_string(BLOCKED)
    assert int(M.shortest_path_length(blocked)) == -1 and not bool(M.is_solvable(blocked))
    adjacent = M.level_from_string("G>")
    assert int(M.shortest_path_length(adjacent)) == 1
    # the goal is a sink: a cell reachable only through the goal is unreachable
    sink = np.asarray(M.distance_map(M.level_from_string(">G.")))
    assert sink[0, 1] == 1 and sink[0, 2] == M.UNREACHABLE


def test_bfs_matches_python_on_generated_levels(env):
    # 25 walls (the DR default) plus 80-wall levels, so that unsolvable levels occur too
    sparse = sample_levels(jax.random.PRNGKey(7))
    dense = jax.jit(jax.vmap(lambda k: M.generate_level(k, n_walls=80)))(jax.random.split(jax.random.PRNGKey(8), 100))
    levels = jax.tree.map(lambda a, b: jnp.concatenate([a[:100], b]), sparse, dense)
    lengths = np.asarray(batch_path_length(levels))
    solvable = np.asarray(batch_solvable(levels))
    expected = np.array([python_bfs(lvl) for lvl in unstack(levels, N_LEVELS)])
    np.testing.assert_array_equal(lengths, expected)
    np.testing.assert_array_equal(solvable, expected > 0)
    assert 10 < (expected < 0).sum() < 190  # both kinds occur


# --- generator -------------------------------------------------------------------------
def test_generator_levels_are_valid(env):
    levels = sample_levels(jax.random.PRNGKey(11))
    assert bool(jax.jit(jax.vmap(env.task_space.contains))(levels).all())
    assert all(host_valid(lvl) for lvl in unstack(levels, 20))
    walls = np.asarray(levels.wall_map).sum(axis=(1, 2))
    assert walls.max() <= 25 and walls.mean() > 20  # with replacement: a few collisions
    dirs = np.bincount(np.asarray(levels.agent_dir), minlength=4)
    assert (dirs > 25).all()
    again = sample_levels(jax.random.PRNGKey(11))
    np.testing.assert_array_equal(levels.wall_map, again.wall_map)


def test_generator_with_replacement_and_small_levels():
    @jax.jit
    def generate(key):
        keys = jax.random.split(key, N_LEVELS)
        full = jax.vmap(lambda k: M.generate_level(k, n_walls=169))(keys)
        small = jax.vmap(lambda k: M.generate_level(k, n_walls=40, height=5, width=7))(keys)
        return full, small

    full, small = generate(jax.random.PRNGKey(0))
    n = np.asarray(full.wall_map).sum(axis=(1, 2))
    # 169 draws with replacement cover about 169 * (1 - 1/e) = 107 cells
    assert 95 < n.mean() < 120
    assert bool(batch_valid(full).all()) and bool(batch_valid(small).all())  # even when walls fill the level
    assert not np.asarray(small.wall_map)[:, 5:, :].any() and not np.asarray(small.wall_map)[:, :, 7:].any()
    assert (np.asarray(small.agent_pos) < [7, 5]).all() and (np.asarray(small.goal_pos) < [7, 5]).all()


def test_task_space_contains_and_round_trip(env):
    space = env.task_space
    contains, to_vector, from_vector = jax.jit(space.contains), jax.jit(space.to_vector), jax.jit(space.from_vector)
    level = jax.jit(space.sample)(jax.random.PRNGKey(2))
    assert bool(contains(level))
    space.check(level)
    vec = to_vector(level)
    assert vec.shape == (space.dim,) == (13 * 13 + 5,)
    back = from_vector(vec)
    jax.tree.map(np.testing.assert_array_equal, back, level)
    assert not bool(contains(level.replace(goal_pos=level.agent_pos)))
    on_wall = level.replace(wall_map=level.wall_map.at[level.agent_pos[1], level.agent_pos[0]].set(True))
    assert not bool(contains(on_wall))
    assert not bool(contains(level.replace(agent_pos=jnp.array([13, 0], jnp.int32))))
    # from_vector repairs a proposal that puts a wall under the agent
    assert bool(contains(from_vector(to_vector(on_wall))))


# --- mutations -------------------------------------------------------------------------
@pytest.mark.parametrize("move_agent", [False, True])
def test_mutations_keep_levels_valid(move_agent):
    base = sample_levels(jax.random.PRNGKey(21))
    keys = jax.random.split(jax.random.PRNGKey(22), N_LEVELS)
    mutated = MUTATE[move_agent](keys, base, 6)
    assert bool(batch_valid(mutated).all())
    solvable = np.asarray(batch_solvable(mutated))
    expected = np.array([python_bfs(lvl) > 0 for lvl in unstack(mutated, N_LEVELS)])
    np.testing.assert_array_equal(solvable, expected)
    flips = (np.asarray(mutated.wall_map) != np.asarray(base.wall_map)).sum(axis=(1, 2))
    assert flips.max() <= 6 and flips.mean() > 0.5
    agent_moved = (np.asarray(mutated.agent_pos) != np.asarray(base.agent_pos)).any(axis=1)
    assert agent_moved.any() == move_agent


@pytest.mark.parametrize("move_agent", [False, True])
def test_single_edit_is_uniform_over_ops(move_agent):
    base = sample_levels(jax.random.PRNGKey(31))
    flipped, goal_moved, agent_moved = [], [], []
    for i in range(6):  # 1200 single edits
        mutated = MUTATE[move_agent](jax.random.split(jax.random.PRNGKey(100 + i), N_LEVELS), base, 1)
        flipped.append((np.asarray(mutated.wall_map) != np.asarray(base.wall_map)).any(axis=(1, 2)))
        goal_moved.append((np.asarray(mutated.goal_pos) != np.asarray(base.goal_pos)).any(axis=1))
        agent_moved.append((np.asarray(mutated.agent_pos) != np.asarray(base.agent_pos)).any(axis=1))
    flipped, goal_moved, agent_moved = map(np.concatenate, (flipped, goal_moved, agent_moved))
    assert not (flipped & goal_moved).any() and not (flipped & agent_moved).any()  # one edit each
    n_ops = 4 if move_agent else 3
    for frac in (flipped.mean(), goal_moved.mean()):
        assert abs(frac - 1 / n_ops) < 0.05
    assert abs(agent_moved.mean() - (1 / 4 if move_agent else 0.0)) < 0.05


# --- named mazes ---------------------------------------------------------------------
def test_named_mazes_are_valid_solvable_and_round_trip():
    expected_names = {
        "SixteenRooms", "SixteenRooms2", "Labyrinth", "LabyrinthFlipped",
        "Labyrinth2", "StandardMaze", "StandardMaze2", "StandardMaze3",
    }  # fmt: skip
    assert set(M.NAMED_MAZES) == expected_names
    for name, layout in M.NAMED_MAZES.items():
        level = M.named_maze_params(name)
        assert M.render_level(level) == layout
        assert bool(M.is_valid_level(level)), name
        length = int(M.shortest_path_length(level))
        assert length == python_bfs(level) and length >= 20, name
    flipped = M.named_maze_params("LabyrinthFlipped")
    original = M.named_maze_params("Labyrinth")
    np.testing.assert_array_equal(np.asarray(flipped.wall_map)[:, :13], np.asarray(original.wall_map)[:, 12::-1])


def _greedy_action(level, goal_dist, state):
    """Follow decreasing BFS distance to the goal: turn towards the best neighbour, then step."""
    dirs = jnp.asarray(M.DIR_TO_VEC)
    nbrs = state.agent_pos + dirs
    inside = (nbrs[:, 0] >= 0) & (nbrs[:, 0] < level.width) & (nbrs[:, 1] >= 0) & (nbrs[:, 1] < level.height)
    d = goal_dist[jnp.clip(nbrs[:, 1], 0, 12), jnp.clip(nbrs[:, 0], 0, 12)]
    best = jnp.argmin(jnp.where(inside & (d >= 0), d, 10_000))
    return jnp.where(best == state.agent_dir, FORWARD, jnp.where(best == (state.agent_dir + 1) % 4, RIGHT, LEFT))


def test_bfs_guided_agent_solves_every_named_maze(env):
    names = list(M.NAMED_MAZES)
    levels = stack_tasks([M.named_maze_params(n) for n in names])

    def episode(level, key):
        goal_dist = M.distance_map(level, level.goal_pos)
        _, state = env.reset(key, level)

        def step(state, k):
            action = _greedy_action(level, goal_dist, state)
            _, state, reward, term, _, _ = env.step(k, state, action, level)
            return state, (reward, term)

        _, (rewards, terms) = jax.lax.scan(step, state, jax.random.split(key, 250))
        first = jnp.argmax(terms)
        return rewards[first], first + 1, terms.any()

    keys = jax.random.split(jax.random.PRNGKey(0), len(names))
    reward, length, done = jax.jit(jax.vmap(episode))(levels, keys)
    spl = np.asarray(batch_path_length(levels))
    assert bool(done.all())
    length = np.asarray(length)
    # every forward move follows the shortest path; turns add at most 2 per move
    assert (length >= spl).all() and (length <= 3 * spl + 2).all()
    np.testing.assert_allclose(reward, 1.0 - 0.9 * length / T, rtol=1e-6)
