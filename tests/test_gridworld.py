"""GridWorld (LPG / GROOVE): dynamics, observations, task spaces, procedural levels, exact DP values."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import gridworld_dp as dp
from envs.gridworld import (
    DISTRIBUTIONS,
    LEVELS,
    GridWorld,
    Level,
    ObjType,
    level_params,
    params_from_level,
)
from envs.gridworld_levels import canonicalize, place_sequentially

TABULAR_LEVELS = ["dense", "sparse", "long", "longer", "long_dense"]
RANDOM_LEVELS = ["rand_dense", "rand_long", "rand_small", "rand_sparse", "rand_very_dense"]
ALL_NAMES = [f"gridworld-{n}" for n in [*TABULAR_LEVELS, *RANDOM_LEVELS, "small", "medium", "large", "all", "rand_all"]]

# Hand-made levels use 2 object slots and 2 types, which keeps the DP tables tiny.
# ("level" only picks the env's defaults; hand-made params are always passed explicitly.)
SMALL_SHAPE = (13, 2, 2)


def small_env():
    return GridWorld(*SMALL_SHAPE, tabular=True, level="sparse")


def small_params(level):
    return params_from_level(level, *SMALL_SHAPE)


def corridor(types, objects, start, steps, length=4):
    """A 1 x ``length`` corridor: a ``length``-side grid whose rows 1.. are walls."""
    walls = tuple((r, c) for r in range(1, length) for c in range(length))
    return Level(length, steps, tuple(types), tuple(objects), start=start, walls=walls)


STEPS = 40  # every rollout has this length, so compiled rollouts are shared between tests


def rollout(env, params, key, actions):
    """Scan ``env.step`` over fixed actions; returns per-step (obs, reward, terminated, truncated, info, state)."""
    obs0, state = env.reset(key, params)

    def body(state, inp):
        k, a = inp
        obs, state, r, te, tr, info = env.step(k, state, a, params)
        return state, (obs, r, te, tr, info, state)

    keys = jax.random.split(jax.random.fold_in(key, 1), actions.shape[0])
    _, out = jax.lax.scan(body, state, (keys, actions))
    return obs0, state, out


@functools.lru_cache(maxsize=None)
def compiled_rollout(env, batched=False):
    """One jitted rollout per static env configuration (envs of different levels compare equal)."""
    fn = lambda key, params, actions: rollout(env, params, key, actions)  # noqa: E731
    return jax.jit(jax.vmap(fn) if batched else fn)


def run(env, params, key, actions):
    """Unbatched rollout of ``actions`` padded with no-ops to ``STEPS``."""
    actions = jnp.concatenate([jnp.asarray(actions, jnp.int32), jnp.full(STEPS - len(actions), 4, jnp.int32)])
    return compiled_rollout(env)(key, params, actions)


# --- registry and the one-program design -------------------------------------
def test_all_names_registered_and_tabular_envs_share_identity():
    assert set(ALL_NAMES) <= set(envs.registered())
    tab = [envs.make(f"gridworld-{n}")[0] for n in [*TABULAR_LEVELS, "small", "all"]]
    assert all(e == tab[0] and hash(e) == hash(tab[0]) for e in tab)
    rnd = [envs.make(f"gridworld-{n}")[0] for n in [*RANDOM_LEVELS, "rand_all"]]
    assert all(e == rnd[0] for e in rnd) and rnd[0] != tab[0]
    assert tab[0].obs_size == 13**2 * 2**5 + 1 and rnd[0].obs_size == 13**2 * 6 + 1
    env, params = envs.make("gridworld-dense", max_grid_size=11)
    assert env.max_grid_size == 11 and params.walls.shape == (121,) and env.obs_size == 121 * 32 + 1
    assert env != tab[0]
    env, params = envs.make("gridworld-sparse", max_steps_in_episode=20)
    assert int(params.max_steps_in_episode) == 20
    with pytest.raises(ValueError, match="max_grid_size"):
        envs.make("gridworld-sparse", max_grid_size=11)  # sparse is 13x13
    with pytest.raises(ValueError, match="level"):
        level_params("nope")


def test_one_compiled_program_runs_every_level_and_procedural_samples():
    env, _ = envs.make("gridworld-dense")
    actions = jnp.arange(STEPS) % 5
    rollout_fn = compiled_rollout(env)
    tasks = [level_params(n) for n in TABULAR_LEVELS]
    for dist in ["small", "medium", "large", "all"]:
        tasks.append(envs.make(f"gridworld-{dist}")[0].task_space.sample(jax.random.key(3)))
    renv, _ = envs.make("gridworld-rand_dense")
    rtasks = [level_params(n) for n in RANDOM_LEVELS]
    rtasks.append(envs.make("gridworld-rand_all")[0].task_space.sample(jax.random.key(4)))
    for e, task_list in [(env, tasks), (renv, rtasks)]:
        fn = compiled_rollout(e)
        fn(jax.random.key(0), task_list[0], actions)
        compiled = fn._cache_size()
        for i, task in enumerate(task_list):
            assert np.isfinite(float(fn(jax.random.key(i), task, actions)[2][1].sum()))
        assert fn._cache_size() == compiled  # no recompilation for any level
    assert compiled_rollout(envs.make("gridworld-sparse")[0]) is rollout_fn


# --- jit / vmap, determinism, observation space ------------------------------
@pytest.mark.parametrize("name", ["gridworld-all", "gridworld-rand_all"])
def test_vmap_over_keys_and_task_batches_and_obs_in_space(name):
    env, params = envs.make(name)
    n, steps = 12, STEPS
    tasks = env.task_space.sample_batch(jax.random.key(0), n)
    # frequent respawns and few terminations, so that many objects get (re)placed
    tasks = tasks.replace(obj_p_respawn=jnp.full_like(tasks.obj_p_respawn, 0.5),
                          obj_p_terminate=jnp.full_like(tasks.obj_p_terminate, 0.05))
    keys = jax.random.split(jax.random.key(1), n)
    actions = jax.random.randint(jax.random.key(2), (n, steps), 0, 5)
    obs0, _, (obs, r, te, tr, info, states) = compiled_rollout(env, batched=True)(keys, tasks, actions)
    assert obs0.shape == (n, env.obs_size) and obs.shape == (n, steps, env.obs_size)
    assert obs.dtype == jnp.float32 and r.dtype == jnp.float32
    # one shared task for the whole batch: only the keys (and actions) differ
    same = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), params)
    shared = compiled_rollout(env, batched=True)(keys, same, actions)[2][0]
    assert shared.shape == obs.shape and not np.array_equal(np.asarray(shared[0]), np.asarray(shared[1]))

    contains = jax.vmap(jax.vmap(lambda o, p: env.observation_space(p).contains(o), (0, None)))
    assert bool(jnp.all(contains(obs, tasks))) and bool(jnp.all(contains(info["final_observation"], tasks)))
    body = np.asarray(obs[..., :-1])
    time_feature = np.asarray(obs[..., -1])
    np.testing.assert_allclose(time_feature, np.asarray(states.time) * 0.001, rtol=1e-6)
    cells = env.max_grid_size**2
    if env.tabular:
        assert np.all(body.sum(-1) == 1)  # exactly one (cell, bitmask) entry
        idx = body.argmax(-1)
        mask = (np.asarray(states.obj_exists) * 2 ** np.arange(env.max_n_objs)).sum(-1)
        np.testing.assert_array_equal(idx, np.asarray(states.pos) + cells * mask)
    else:
        np.testing.assert_array_equal(body[..., :cells].argmax(-1), np.asarray(states.pos))
        assert np.all(body[..., :cells].sum(-1) == 1)
        np.testing.assert_array_equal(body[..., cells:].sum(-1), np.asarray(states.obj_exists).sum(-1))
    # agent and existing objects: inside the active grid, off walls, objects on distinct cells
    pos, poss, exists = np.asarray(states.pos), np.asarray(states.obj_poss), np.asarray(states.obj_exists)
    side, walls = np.asarray(tasks.grid_size), np.asarray(tasks.walls)
    for b in range(n):
        for t in range(steps):
            live = poss[b, t][exists[b, t]]
            assert len(set(live.tolist())) == len(live)
            assert np.all(live < side[b] ** 2) and not walls[b][live].any()
            assert pos[b, t] < side[b] ** 2 and not walls[b][pos[b, t]]
    assert (np.asarray(r) != 0).sum() > 0  # objects do get collected
    if not env.tabular:  # and re-placed away from their previous cells
        moved = (poss[:, 1:] != poss[:, :-1]) & exists[:, 1:]
        assert moved.sum() > 0


@pytest.mark.parametrize("name", ["gridworld-dense", "gridworld-rand_small"])
def test_same_key_same_trajectory(name):
    env, params = envs.make(name)
    actions = jax.random.randint(jax.random.key(5), (STEPS,), 0, 5)
    a, b, c = [run(env, params, jax.random.key(k), actions) for k in (7, 7, 8)]
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    if not env.tabular:  # random placement depends on the key
        assert not np.array_equal(np.asarray(a[2][5].obj_poss), np.asarray(c[2][5].obj_poss))


# --- dynamics ---------------------------------------------------------------
UP, DOWN, LEFT, RIGHT, NOOP = range(5)


def test_walls_and_edges_block_moves():
    # 3x3, wall in the centre (1,1); start (1,0) = cell 3
    lvl = Level(3, 100, (ObjType(1.0, 0.0, 0.0),), ((0, (2, 2)),), start=(1, 0), walls=((1, 1),))
    env = small_env()
    params = small_params(lvl)
    _, _, (_, _, _, _, _, states) = run(env, params, jax.random.key(0), [RIGHT, LEFT, UP, UP, LEFT, RIGHT, DOWN])
    # right: wall -> stay 3; left: edge -> 3; up -> 0; up: edge -> 0; left: edge -> 0; right -> 1; down: wall -> 1
    assert np.asarray(states.pos)[:7].tolist() == [3, 3, 0, 0, 0, 1, 1]


def test_collect_reward_removal_termination_and_truncation():
    env = small_env()
    # start (0,1); object type 0 at (0,2) (reward 0.7, never ends, never respawns)
    keep = small_params(corridor([ObjType(0.7, 0.0, 0.0)], [(0, (0, 2))], (0, 1), steps=5))
    _, _, (obs, r, te, tr, info, st) = run(env, keep, jax.random.key(0), [RIGHT, LEFT, RIGHT, NOOP, NOOP])
    np.testing.assert_allclose(np.asarray(r)[:5], [0.7, 0, 0, 0, 0])
    assert np.asarray(st.obj_exists)[:3, 0].tolist() == [False, False, False]
    assert not np.any(np.asarray(te))
    # the time limit (5 steps) is truncation, not termination; the env then auto-resets
    assert np.asarray(tr)[:10].tolist() == [False] * 4 + [True] + [False] * 4 + [True]
    assert int(st.time[4]) == 0 and bool(st.obj_exists[4, 0]) and int(st.pos[4]) == 1
    assert float(info["final_observation"][4, -1]) == pytest.approx(0.005)

    # termination probability 1: the collecting step ends the episode, reward still paid
    end = keep.replace(obj_p_terminate=keep.obj_p_terminate.at[0].set(1.0))
    obs0, _, (obs, r, te, tr, info, st) = run(env, end, jax.random.key(0), [RIGHT, NOOP])
    assert float(r[0]) == pytest.approx(0.7) and bool(te[0]) and not bool(tr[0])
    np.testing.assert_array_equal(np.asarray(obs[0]), np.asarray(obs0))  # auto-reset obs
    assert not np.array_equal(np.asarray(info["final_observation"][0]), np.asarray(obs0))

    # respawn probability 1 (tabular): back at its own cell one step after collection
    back = keep.replace(obj_p_respawn=keep.obj_p_respawn.at[0].set(1.0))
    _, _, (_, r, _, _, _, st) = run(env, back, jax.random.key(0), [RIGHT])
    assert np.asarray(st.obj_exists)[:4, 0].tolist() == [False, True, False, True]
    np.testing.assert_allclose(np.asarray(r)[:4], [0.7, 0.0, 0.7, 0.0])  # staying put collects it again
    assert np.all(np.asarray(st.obj_poss)[:, 0] == 2)


def test_place_sequentially_distinct_uniform_free():
    free = jnp.zeros(20, bool).at[jnp.array([1, 4, 5, 9, 13, 17])].set(True)
    place = jnp.array([True, False, True, True, True])
    u = jax.random.uniform(jax.random.key(0), (20000, 5))
    cells = np.asarray(jax.jit(jax.vmap(place_sequentially, (0, None, None)))(u, free, place))[:, [0, 2, 3, 4]]
    assert np.all(np.isin(cells, [1, 4, 5, 9, 13, 17]))
    assert all(len(set(row)) == 4 for row in cells[:500])
    counts = np.array([(cells == c).sum() for c in [1, 4, 5, 9, 13, 17]]) / cells.size
    np.testing.assert_allclose(counts, 1 / 6, atol=0.01)


# --- task spaces and procedural distributions --------------------------------
@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_procedural_samples_obey_their_constraints(dist):
    env, default = envs.make(f"gridworld-{dist}")
    spec = DISTRIBUTIONS[dist]
    space = env.task_space
    tasks = jax.jit(lambda k: space.sample_batch(k, 400))(jax.random.key(1))
    assert bool(jnp.all(jax.vmap(space.contains)(tasks))) and bool(space.contains(default))
    # to_vector / from_vector round trip, and samples are already canonical
    back = jax.vmap(space.from_vector)(jax.vmap(space.to_vector)(tasks))
    canon = jax.vmap(canonicalize)(tasks)
    for x, y, z in zip(jax.tree.leaves(tasks), jax.tree.leaves(back), jax.tree.leaves(canon)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        np.testing.assert_array_equal(np.asarray(x), np.asarray(z))
    t = jax.tree.map(np.asarray, tasks)
    slots = np.arange(env.max_n_objs)
    for i in range(400):
        g, n = int(t.grid_size[i]), int(t.n_objs[i])
        assert spec.grid_sizes[0] <= g <= spec.grid_sizes[1] and spec.n_objs[0] <= n <= spec.n_objs[1]
        assert spec.steps[0] <= t.max_steps_in_episode[i] <= spec.steps[1]
        walls = np.flatnonzero(t.walls[i])
        assert len(walls) <= spec.n_walls and np.all(walls < g * g)
        used = slots < n
        objs = t.static_obj_poss[i][used]
        cells = np.concatenate([[t.start_pos[i]], objs])
        assert len(set(cells.tolist())) == n + 1 and np.all(cells < g * g)
        assert not np.isin(cells, walls).any()
        assert t.obj_ids[i].tolist() == [s if s < n else -1 for s in slots]
        assert t.obj_rewards[i][0] >= 0
    k = spec.n_types
    assert np.all(np.abs(t.obj_rewards[:, :k]) <= 1) and np.all(t.obj_rewards[:, k:] == 0)
    assert np.all((t.obj_p_terminate[:, :k] >= 1e-2 - 1e-7) & (t.obj_p_terminate[:, :k] <= 1))
    assert np.all((t.obj_p_respawn[:, :k] >= 1e-3 - 1e-9) & (t.obj_p_respawn[:, :k] <= 1e-1 + 1e-7))
    assert (t.obj_rewards[:, 1:k] < 0).any()  # the others can be negative
    # log-uniform episode length: the median sits near the geometric mean of the range
    lo, hi = spec.steps
    assert abs(np.log(np.median(t.max_steps_in_episode)) - 0.5 * np.log(lo * (hi + 1))) < 0.15 * np.log(hi / lo)


def test_named_levels_in_task_space_and_canonical():
    for name in [*TABULAR_LEVELS, *RANDOM_LEVELS]:
        env, params = envs.make(f"gridworld-{name}")
        space = env.task_space
        assert bool(space.contains(params))
        space.check(params)
        for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(space.from_vector(space.to_vector(params)))):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        lvl = LEVELS[name]
        assert int(params.grid_size) == lvl.grid_size and int(params.n_objs) == len(lvl.objects)
        assert int(params.max_steps_in_episode) == lvl.max_steps and env.tabular == lvl.tabular
    longer = level_params("longer")
    wall_cells = np.flatnonzero(np.asarray(longer.walls))
    assert wall_cells.tolist() == [r * 9 + 4 for r in range(9) if r not in (1, 7)]
    assert np.flatnonzero(np.asarray(level_params("rand_small").walls)).tolist() == [9, 25]
    # a teacher's arbitrary vector maps onto a valid, canonical task
    env, _ = envs.make("gridworld-all")
    space = env.task_space
    task = space.from_vector(jnp.asarray(space.high) * 3.0)
    assert bool(space.contains(task)) and int(task.start_pos) < int(task.grid_size) ** 2


# --- exact optimal returns ---------------------------------------------------
def test_sparse_optimal_return_by_hand():
    # sparse: 13x13, start (1,1), A (+1, ends the episode) at (11,11), B (-1, ends it) at (11,1).
    # A is |11-1| + |11-1| = 20 moves away, and a shortest path avoiding B exists (go right
    # first), so the optimum is +1 whenever the episode has >= 20 steps; with 19 steps A is
    # out of reach and the best is to avoid B: 0.
    env, params = envs.make("gridworld-sparse")
    for steps, expected in [(50, 1.0), (20, 1.0), (19, 0.0)]:
        value = dp.optimal_return(env, params.replace(max_steps_in_episode=jnp.int32(steps)), horizon=50)
        assert float(value) == pytest.approx(expected, abs=1e-6)


def test_tiny_levels_optimal_return_by_hand():
    env = small_env()
    # (a) corridor of 4 cells, start at cell 1; B (+0.5, ends the episode) at cell 0,
    # A (+1, no end, no respawn) at cell 3. T=1: only B reachable -> 0.5. T=2..4: A in 2
    # steps -> 1 (B first would end the episode); B is then 3 steps back, so T=5 -> 1.5.
    trade = corridor([ObjType(1.0, 0.0, 0.0), ObjType(0.5, 1.0, 0.0)], [(0, (0, 3)), (1, (0, 0))], (0, 1), 1)
    trade = small_params(trade)
    for steps, expected in [(1, 0.5), (2, 1.0), (4, 1.0), (5, 1.5)]:
        value = dp.optimal_return(env, trade.replace(max_steps_in_episode=jnp.int32(steps)), horizon=6)
        assert float(value) == pytest.approx(expected, abs=1e-6)

    # (b) stochastic: start (0,0), A (+1, p_terminate q=0.5, p_respawn rho=0.25) at (0,1).
    # Best: step onto A (+1), then stay (no-op) on its cell, collecting it the step after it
    # reappears. It cannot reappear in the step it was collected, so with T steps:
    #   T=2: 1
    #   T=3: 1 + (1-q) * rho                        (reappears in step 2, collected in step 3)
    #   T=4: 1 + (1-q) * (rho + (1-rho) * rho)      (a collection in step 3 blocks step 4)
    q, rho = 0.5, 0.25
    stoch = small_params(corridor([ObjType(1.0, q, rho)], [(0, (0, 1))], (0, 0), 1))
    expected = {2: 1.0, 3: 1 + (1 - q) * rho, 4: 1 + (1 - q) * (rho + (1 - rho) * rho)}
    for steps, value in expected.items():
        got = dp.optimal_return(env, stoch.replace(max_steps_in_episode=jnp.int32(steps)), horizon=6)
        assert float(got) == pytest.approx(value, abs=1e-6)
    assert expected[4] == pytest.approx(1.21875)


def _mc_return(env, params, key, n, choose_action):
    """Mean and standard error of the first-episode return over ``n`` rollouts."""
    steps = int(params.max_steps_in_episode)

    def one(key):
        obs, state = env.reset(key, params)

        def body(carry, k):
            obs, state, total, alive = carry
            ka, ks = jax.random.split(k)
            a = choose_action(ka, obs, state)
            obs, state, r, te, tr, _ = env.step(ks, state, a, params)
            return (obs, state, total + alive * r, alive & ~(te | tr)), None

        init = (obs, state, jnp.float32(0), jnp.bool_(True))
        (_, _, total, _), _ = jax.lax.scan(body, init, jax.random.split(jax.random.fold_in(key, 1), steps))
        return total

    returns = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(key, n)))
    return returns.mean(), returns.std() / np.sqrt(n)


def test_dp_matches_monte_carlo_of_the_env():
    # optimal greedy policy on the stochastic corridor, and the uniform policy on a procedural
    # level with termination and respawn: the env's empirical returns match the DP's values.
    env = small_env()
    stoch = small_params(corridor([ObjType(1.0, 0.5, 0.25)], [(0, (0, 1))], (0, 0), 6))
    greedy = dp.optimal_policy(env, stoch)
    act = lambda k, obs, state: greedy[state.time, jnp.argmax(obs[:-1])].astype(jnp.int32)  # noqa: E731
    mean, se = _mc_return(env, stoch, jax.random.key(0), 4000, act)
    assert abs(mean - float(dp.optimal_return(env, stoch))) < 4 * se + 1e-3

    env, params = envs.make("gridworld-small")
    params = params.replace(
        max_steps_in_episode=jnp.int32(15),
        obj_p_terminate=jnp.array([0.3, 0.5, 0.2, 0, 0], jnp.float32),
        obj_p_respawn=jnp.array([0.3, 0.2, 0.4, 0, 0], jnp.float32),
    )
    mean, se = _mc_return(env, params, jax.random.key(1), 4000, lambda k, o, s: jax.random.randint(k, (), 0, 5))
    exact = float(dp.uniform_policy_return(env, params))
    assert abs(mean - exact) < 4 * se + 1e-3


def test_named_level_values_are_consistent():
    env, params = envs.make("gridworld-dense")
    params = params.replace(max_steps_in_episode=jnp.int32(60))
    horizon = 60
    best = float(dp.optimal_return(env, params, horizon))
    greedy = dp.optimal_policy(env, params, horizon)
    one_hot = jax.nn.one_hot(greedy, 5)
    assert float(dp.evaluate_policy_return(env, params, one_hot, horizon)) == pytest.approx(best, rel=1e-5)
    uniform = float(dp.uniform_policy_return(env, params, horizon))
    # dense: A (+1) objects 8 moves from the start, so some reward is certain within 60 steps
    assert best >= 2.0 and best > uniform
    values = dp.optimal_values(env, params, horizon)
    assert values.shape == (13**2, 2**5) and float(values.max()) >= best
    with pytest.raises(ValueError, match="tabular"):
        dp.optimal_return(envs.make("gridworld-rand_dense")[0], level_params("rand_dense"))
    with pytest.raises(ValueError, match="policy must have shape"):
        dp.evaluate_policy_return(env, params, jnp.ones((3, 5)), horizon)
