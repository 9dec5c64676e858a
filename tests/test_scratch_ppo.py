"""PPO from scratch with a trial's budget (metarl.eval.scratch_ppo): one episode per update, tasks vmapped."""

import jax
import numpy as np

from metarl.eval.scratch_ppo import scratch_config, scratch_ppo
from metarl.in_context import benchmarks
from metarl.in_context import tasks as task_sets


def test_each_update_plays_one_whole_episode_of_its_own_task():
    bench = benchmarks.get("dark-room-v1")
    env, env_params = benchmarks.make_env(bench)
    _, test = task_sets.task_split(bench, env, 0)
    tasks = jax.tree.map(lambda x: np.asarray(x)[:3], test)
    config = scratch_config(episodes=4, horizon=bench.horizon)
    assert (config.num_envs, config.num_steps, config.num_updates) == (1, 20, 4)
    out = jax.device_get(scratch_ppo(env, env_params, tasks, 4, bench.horizon, jax.random.key(0)))
    assert np.asarray(out["episode_returns"]).shape == (3, 4)
    np.testing.assert_array_equal(out["episode_lengths"], np.full((3, 4), 20))  # one 20-step episode per update
    optimum = np.asarray(env.optimal_return(tasks))
    assert np.all((out["episode_returns"] >= 0) & (out["episode_returns"] <= optimum[:, None]))
