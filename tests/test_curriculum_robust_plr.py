"""Robust PLR / ACCEL end to end with PPO: gradient updates happen on replay batches only."""

import jax
import numpy as np

import envs
from curricula.factory import make_teacher
from curricula.plr import MUTATE, NEW, REPLAY
from metarl.agents.ppo import PPO, PPOConfig

N_UPDATES = 14


def _params_changed(before, after) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)))


def _run(teacher_cfg: dict):
    env, params = envs.make("stumps")
    config = PPOConfig(num_envs=4, num_steps=8, total_timesteps=4 * 8 * N_UPDATES, update_epochs=1, num_minibatches=1)
    teacher = make_teacher(teacher_cfg, env.task_space, num_envs=config.num_envs)
    agent = PPO(config, env, params, teacher=teacher)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    update = jax.jit(agent.update)
    changed, branches = [], []
    for _ in range(N_UPDATES):
        before = jax.device_get(state.params)
        state, _ = update(state)
        changed.append(_params_changed(before, jax.device_get(state.params)))
        branches.append(int(state.teacher_state.branch))  # the branch of the batch this update rolled out
    return np.array(changed), np.array(branches), np.asarray(state.teacher_state.branch_counts)


PLR_SMALL = {"capacity": 8, "min_fill_ratio": 0.5, "replay_prob": 0.5, "staleness_coef": 0.3, "temperature": 0.3}


def test_robust_plr_with_ppo_updates_only_on_replay_batches():
    changed, branches, counts = _run({"name": "robust_plr", **PLR_SMALL})
    assert {NEW, REPLAY} <= set(branches.tolist())  # both kinds of batch occurred
    np.testing.assert_array_equal(changed, branches == REPLAY)
    # the teacher's own count of replay decisions equals the number of updates that moved the params
    assert counts[REPLAY] == changed.sum()
    assert counts[NEW] == (branches == NEW).sum() + 1  # + the batch PPO.init samples


def test_accel_with_ppo_skips_new_and_mutated_batches():
    changed, branches, counts = _run({"name": "accel", "mutate": {"name": "gaussian", "std": 0.1}, **PLR_SMALL})
    assert {REPLAY, MUTATE} <= set(branches.tolist())
    np.testing.assert_array_equal(changed, branches == REPLAY)
    assert counts[REPLAY] == changed.sum() and counts[MUTATE] == (branches == MUTATE).sum()


def test_plain_plr_with_ppo_updates_on_every_batch():
    changed, branches, _ = _run({"name": "plr", **PLR_SMALL})
    assert {NEW, REPLAY} <= set(branches.tolist()) and changed.all()
