"""Continual World on the manipulation family: the streams as data, per-reset goals, multi-head SAC, the SAC
continual runner (switch resets, the plan, learning across a stream) and the job end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.manipulation import CW10_CLASSES, RandomizedGoals
from metarl.agents.sac import SACConfig
from metarl.agents.sac_networks import actor_mean_log_std, apply_mlp, critic_values, init_actor, init_critics
from metarl.continual import packnet as PN
from metarl.continual.methods import MethodConfig
from metarl.continual.runner import RunConfig, evaluate_results
from metarl.continual.sac_runner import (SACContinualRunner, StreamCheckpoints, SwitchConfig, chunk_plan,
                                        multitask_average_performance, multitask_run)
from metarl.continual.streams import Segment, from_spec, get_stream

CW10 = ["hammer", "push-wall", "faucet-close", "push-back", "stick-pull", "handle-press-side", "push", "shelf-place",
        "window-close", "peg-unplug-side"]


# --- the streams as data ----------------------------------------------------------------------------
def test_cw10_and_cw20_follow_continual_worlds_order_budget_and_horizon():
    cw10, cw20 = get_stream("CW10-v1"), get_stream("CW20-v1")
    assert list(cw10.task_names) == CW10 and list(CW10_CLASSES) == CW10
    assert list(cw20.task_names) == CW10 * 2 and cw20.n_tasks == 20  # a second visit is a new task index (head)
    assert [s.task for s in cw20.segments] == list(range(20))
    assert {s.steps for s in cw10.segments + cw20.segments} == {1_000_000}
    assert cw10.observe_task_id and cw10.spec["score"] == {"kind": "success"}
    env, _ = envs.make(cw10.env, **cw10.env_kwargs)
    assert isinstance(env, RandomizedGoals) and env.base.max_steps == 200 and env.base.goal_observable
    ids = np.asarray(cw20.tasks.task_id)
    assert [envs.manipulation.TASK_NAMES[i] for i in ids] == CW10 * 2
    small = get_stream("CW10-v1", steps_per_task=20_000)
    assert small.total_steps == 200_000 and "steps=20000" in small.id


def test_the_triplets_compile_only_their_classes():
    stream = get_stream("CW3-6-v1")
    assert list(stream.task_names) == ["stick-pull", "peg-unplug-side", "stick-pull"]
    env, _ = envs.make(stream.env, **stream.env_kwargs)
    assert env.task_names == ("stick-pull", "peg-unplug-side")
    assert {"CW3-1-v1", "CW3-5-v1", "CW3-6-v1", "CW3-8-v1"} <= set(get_stream.__globals__["STREAMS"])


# --- positions drawn at every reset ------------------------------------------------------------------
def test_every_reset_draws_positions_inside_the_class_and_the_episode_keeps_them():
    env, _ = envs.make("cw-v3", classes=("push", "window-close"))
    params = env.params_for("push")
    space = env.base.task_space
    obs, states = jax.vmap(env.reset_env, in_axes=(0, None))(jax.random.split(jax.random.key(0), 64), params)
    drawn = states.task
    assert np.all(np.asarray(drawn.task_id) == int(params.task_id))
    assert np.asarray(jax.vmap(space.contains)(drawn)).all()
    assert len(np.unique(np.asarray(drawn.obj_init), axis=0)) == 64  # not the params' fixed positions
    # the goal is visible (push's target sits on the table: x, y are the drawn goal's)
    np.testing.assert_allclose(np.asarray(obs[:, 36:38]), np.asarray(drawn.goal[:, :2]), atol=1e-6)
    goal, state = np.asarray(obs[0, 36:39]), jax.tree.map(lambda x: x[0], states)
    for t in range(3):
        obs_t, state, *_ = env.step_env(jax.random.key(t), state, jnp.array([0.5, 0.0, 0.0, 0.0]), params)
        np.testing.assert_array_equal(np.asarray(obs_t[36:39]), goal)


# --- multi-head networks -----------------------------------------------------------------------------
def test_the_one_hot_selects_a_head_and_is_not_a_network_input():
    heads, obs_dim, action_dim = 3, 5, 2
    actor = init_actor(jax.random.key(0), obs_dim + heads, action_dim, (8,), True, heads)
    critics = init_critics(jax.random.key(1), obs_dim + heads, action_dim, (8,), False, heads)
    x = jax.random.normal(jax.random.key(2), (4, obs_dim))
    action = jnp.tanh(jax.random.normal(jax.random.key(3), (4, action_dim)))
    every_head = apply_mlp(actor, x, "relu")  # [4, heads * 2A]: the input has no one-hot
    assert every_head.shape == (4, heads * 2 * action_dim)
    for k in range(heads):
        obs = jnp.concatenate([x, jnp.broadcast_to(jax.nn.one_hot(k, heads), (4, heads))], axis=1)
        mean, _ = actor_mean_log_std(actor, obs, "relu", heads)
        np.testing.assert_allclose(np.asarray(mean), np.asarray(every_head[:, 2 * action_dim * k:][:, :action_dim]),
                                   rtol=1e-6)
        q = critic_values(critics, obs, action, "relu", heads)
        q_all = jax.vmap(lambda p: apply_mlp(p, jnp.concatenate([x, action], 1), "relu"))(critics)
        np.testing.assert_allclose(np.asarray(q), np.asarray(q_all[:, :, k]), rtol=1e-6)


# --- the runner ---------------------------------------------------------------------------------------
def test_chunk_plan_hand_computed():
    plan = chunk_plan((Segment(0, 300), Segment(2, 100), Segment(1, 10)), 100)
    assert plan["task"].tolist() == [0, 0, 0, 2, 1]
    assert plan["start"].tolist() == [True, False, False, True, True] and plan["position"].tolist() == [0, 0, 0, 1, 2]
    assert plan["counts"] == [3, 1, 1] and not plan["prune"].any()
    plan = chunk_plan((Segment(0, 1000), Segment(1, 300), Segment(2, 100)), 100, retrain_fraction=0.2)
    assert np.flatnonzero(plan["prune"]).tolist() == [8, 12]  # the last 2 of 10 chunks, the last 1 of 3; not of 1


# --- PackNet ---------------------------------------------------------------------------------------------
def _actor():
    return {"hidden_0": {"kernel": jnp.array([[0.5, -2.0, 0.1], [3.0, -0.2, 1.0]]), "bias": jnp.array([0.1, 0.2, 0.3])},
            "head": {"kernel": jnp.ones((3, 2)), "bias": jnp.zeros(2)}}


def test_packnet_prune_keeps_the_stated_fraction_by_magnitude_and_frees_the_rest():
    actor = _actor()
    owners = PN.init_owners(actor)
    pruned, owners = PN.prune(actor, owners, jnp.int32(0), PN.keep_fraction(0, 2))  # keep 1/2 of 6 free = 3
    np.testing.assert_array_equal(np.asarray(owners["hidden_0"]["kernel"]), [[-1, 0, -1], [0, -1, 0]])
    np.testing.assert_array_equal(np.asarray(pruned["hidden_0"]["kernel"]), [[0.0, -2.0, 0.0], [3.0, 0.0, 1.0]])
    assert (np.asarray(owners["head"]["kernel"]) == PN.FREE).all()  # heads and biases are never pruned
    np.testing.assert_array_equal(np.asarray(pruned["hidden_0"]["bias"]), np.asarray(actor["hidden_0"]["bias"]))
    again = {**pruned, "hidden_0": {**pruned["hidden_0"], "kernel": jnp.array([[0.7, -2.0, 0.2], [3.0, -0.4, 1.0]])}}
    final, owners = PN.prune(again, owners, jnp.int32(1), PN.keep_fraction(1, 2))  # the last task keeps all free
    np.testing.assert_array_equal(np.asarray(owners["hidden_0"]["kernel"]), [[1, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(np.asarray(final["hidden_0"]["kernel"]), np.asarray(again["hidden_0"]["kernel"]))
    assert float(PN.keep_fraction(3, 10)) == pytest.approx(1 / 7)


def test_packnet_masks_and_per_task_weights_hand_computed():
    actor = _actor()
    owners = {**PN.init_owners(actor), "hidden_0": {"kernel": jnp.array([[0, 1, -1], [1, 0, -1]]),
                                                    "bias": jnp.full(3, -1)}}
    train = PN.trainable(actor, owners, jnp.int32(1), jnp.asarray(False))
    np.testing.assert_array_equal(np.asarray(train["hidden_0"]["kernel"]), [[0, 0, 1], [0, 0, 1]])
    assert not np.asarray(train["hidden_0"]["bias"]).any() and np.asarray(train["head"]["kernel"]).all()
    retrain = PN.trainable(actor, owners, jnp.int32(1), jnp.asarray(True))
    np.testing.assert_array_equal(np.asarray(retrain["hidden_0"]["kernel"]), [[0, 1, 0], [1, 0, 0]])
    assert np.asarray(PN.trainable(actor, owners, jnp.int32(0), jnp.asarray(False))["hidden_0"]["bias"]).all()
    w = np.asarray(actor["hidden_0"]["kernel"])
    task0 = PN.params_for(actor, owners, jnp.int32(0), jnp.int32(2))  # task 0 while task 2 trains: its own only
    np.testing.assert_array_equal(np.asarray(task0["hidden_0"]["kernel"]), w * [[1, 0, 0], [0, 1, 0]])
    task2 = PN.params_for(actor, owners, jnp.int32(2), jnp.int32(2))  # the training task sees all
    np.testing.assert_array_equal(np.asarray(task2["hidden_0"]["kernel"]), w)


def test_masked_updates_leave_frozen_entries_exactly_unchanged_under_adam():
    import optax

    params = {"w": jnp.array([1.0, 2.0, 3.0])}
    tx = optax.chain(optax.adam(0.1), PN.masked_updates())
    state = tx.init(params)
    for step in range(3):  # moments build up while every entry trains
        updates, state = tx.update({"w": jnp.ones(3)}, state, params)
        params = optax.apply_updates(params, updates)
    state = PN.with_mask(state, {"w": jnp.array([True, False, True])})
    frozen = float(params["w"][1])
    for step in range(3):
        updates, state = tx.update({"w": jnp.ones(3)}, state, params)
        params = optax.apply_updates(params, updates)
    assert float(params["w"][1]) == frozen and float(params["w"][0]) != 1.0


PENDULUM_SPEC = {
    "name": "CPendulum2", "version": 1, "env": "Pendulum-v1",
    "tasks": {"overrides": [{"g": 10.0, "m": 1.0}, {"g": 14.0, "m": 0.7}]},
    "schedule": {"kind": "sequential", "steps_per_task": 8192},
    "score": {"kind": "range", "low": -1600.0, "high": 0.0},
}
LEARNING = SACConfig(num_envs=4, steps_per_update=16, gradient_steps=64, batch_size=256, buffer_size=10_000,
                     learning_starts=1024, hidden_sizes=(64, 64), lr=1e-3)
TINY = SACConfig(num_envs=2, steps_per_update=8, gradient_steps=4, batch_size=16, buffer_size=512, learning_starts=32,
                 hidden_sizes=(16, 16))


@pytest.fixture(scope="module")
def pendulum_runner():
    run = RunConfig(eval_every_steps=2048, eval_episodes=4, eval_max_steps=200, seeds=2)
    return SACContinualRunner(from_spec(PENDULUM_SPEC), LEARNING, MethodConfig("finetune"), run, SwitchConfig())


@pytest.fixture(scope="module")
def tiny_runner(pendulum_runner):
    return SACContinualRunner(pendulum_runner.stream, TINY, MethodConfig("finetune"), pendulum_runner.run_cfg)


def test_a_switch_resets_buffer_optimizers_temperature_and_counter_but_keeps_the_weights(tiny_runner):
    runner = tiny_runner
    state = jax.jit(runner.agent.init)(jax.random.key(0))
    state, _ = jax.jit(lambda s: runner.agent.run(s, 10))(state)  # past learning_starts: weights and alpha moved
    assert int(state.buffer.size) > 0 and float(state.log_alpha) != 0.0
    new = jax.jit(runner._switch_fn)(state, jnp.int32(1))
    assert int(new.buffer.size) == 0 and int(new.buffer.position) == 0 and int(new.update_step) == 0
    assert float(new.log_alpha) == pytest.approx(np.log(TINY.init_alpha))
    fresh = runner.agent.tx["critic"].init(state.params["critic"])
    for a, b in zip(jax.tree.leaves(new.opt_state["critic"]), jax.tree.leaves(fresh)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.all(np.asarray(new.env_params.task_id) == 1)
    assert np.all(np.asarray(new.obs)[:, -2:] == np.array([0.0, 1.0]))  # the new task's one-hot
    keep = SACContinualRunner(runner.stream, TINY, MethodConfig("finetune"), runner.run_cfg,
                              SwitchConfig(reset_buffer=False, reset_optimizer=False, reset_alpha=False))
    kept = jax.jit(keep._switch_fn)(state, jnp.int32(1))
    assert int(kept.buffer.size) == int(state.buffer.size) and float(kept.log_alpha) == float(state.log_alpha)


def test_a_switch_starts_new_pink_noise_sequences(tiny_runner):
    pink = SACContinualRunner(tiny_runner.stream, dataclasses.replace(TINY, noise_exponent=1.0),
                              MethodConfig("finetune"), tiny_runner.run_cfg)
    state = jax.jit(pink.agent.init)(jax.random.key(0))
    state, _ = jax.jit(lambda s: pink.agent.run(s, 3))(state)
    assert np.all(np.asarray(state.noise_step) == 24)
    new = jax.jit(pink._switch_fn)(state, jnp.int32(1))
    assert np.all(np.asarray(new.noise_step) == 0) and new.noise.shape == state.noise.shape
    assert not np.allclose(np.asarray(new.noise), np.asarray(state.noise))


def test_packnet_learns_each_task_and_keeps_the_first_one_in_one_program(pendulum_runner):
    """Two Pendulum tasks, 8k steps each, PackNet: each task is learned in its own segment and task 0, run with
    its own frozen weights, keeps its score after task 1 trained (scores: return -1600 -> 0, 0 -> 1)."""
    runner = SACContinualRunner(pendulum_runner.stream, LEARNING, MethodConfig("packnet", packnet_retrain_fraction=0.25),
                                pendulum_runner.run_cfg, SwitchConfig())
    out = runner.run()
    perf = out["perf"]  # [seeds, evals, tasks]; 4 evaluations per task
    print("task 0 curve", perf[:, :, 0].round(2).tolist(), "task 1 curve", perf[:, :, 1].round(2).tolist())
    assert perf.shape == (2, 8, 2) and out["compile_counts"] == {"start": 1, "chunks[8]": 1}
    assert np.all(perf[:, 0, 0] < 0.5)  # random-ish at the first evaluation
    assert np.all(perf[:, 3, 0] > 0.75), perf[:, 3, 0]  # task 0 learned (and retrained) by the end of its segment
    assert np.all(perf[:, 7, 1] > 0.75), perf[:, 7, 1]  # task 1 learned by the end of the stream
    assert np.all(perf[:, 7, 0] > perf[:, 3, 0] - 0.1), perf[:, :, 0]  # no forgetting: task 0's weights are frozen
    metrics = evaluate_results(out)["per_seed"][0]
    assert 0.0 <= metrics["average_performance"] <= 1.0


def test_a_single_task_reference_run_trains_its_own_task(tiny_runner):
    """A run of one segment of task 1 (forward transfer's reference) moves the envs to task 1 first."""
    out = tiny_runner.run(segments=(Segment(1, 4096),))
    assert (out["diagnostics"]["train_task"] == 1).all()
    assert out["perf"].shape == (2, 2, 2) and out["segments"] == [(1, 4096)]  # both tasks scored at each evaluation


class _Killed(Exception):
    pass


def test_a_checkpointed_stream_resumes_to_the_uninterrupted_run_bit_for_bit(tiny_runner, tmp_path):
    """Pieces of 2 chunks (the program the single-task run above compiled): a run stopped after its second
    checkpoint and resumed ends as the uninterrupted run, training only the chunks after that checkpoint."""

    class KilledAfter4(StreamCheckpoints):
        def save(self, done, carry, outputs):
            super().save(done, carry, outputs)
            if done == 4:
                raise _Killed

    straight = tiny_runner.run(checkpoints=StreamCheckpoints(tmp_path / "straight", 2))
    with pytest.raises(_Killed):
        tiny_runner.run(checkpoints=KilledAfter4(tmp_path / "resumed", 2))
    assert sorted(int(p.name) for p in (tmp_path / "resumed").iterdir()) == [2, 4]
    resumed = tiny_runner.run(checkpoints=StreamCheckpoints(tmp_path / "resumed", 2, resume=True))
    assert straight["chunks_trained"] == 8 and resumed["chunks_trained"] == 4
    for name in ("perf", "returns"):
        np.testing.assert_array_equal(resumed[name], straight[name])
    for name, values in straight["diagnostics"].items():
        np.testing.assert_array_equal(resumed["diagnostics"][name], values, err_msg=name)
    assert tiny_runner.compile_counts()["chunks[2]"] == 1  # every piece ran the one compiled program


def test_packnet_freezes_a_tasks_weights_after_its_pruning(tiny_runner):
    runner = SACContinualRunner(tiny_runner.stream, TINY, MethodConfig("packnet"), tiny_runner.run_cfg, SwitchConfig())
    hooks, agent = runner.hooks, runner.agent
    state = jax.jit(agent.init)(jax.random.key(1))
    owners = hooks.init(state)
    train = jax.jit(lambda s: agent.run(s, 10)[0])
    state = train(state)  # task 0 learns on every entry
    state, owners = jax.jit(hooks.end_task)(state, owners, jnp.int32(0))  # prune: task 0 claims half of each kernel
    claimed = np.asarray(owners["hidden_0"]["kernel"]) == 0
    assert 0.45 < claimed.mean() < 0.55
    after_prune = np.asarray(state.params["actor"]["hidden_0"]["kernel"])
    assert (after_prune[~claimed] == 0).all()
    state = train(state)  # retraining moves only task 0's entries
    retrained = np.asarray(state.params["actor"]["hidden_0"]["kernel"])
    assert (retrained[~claimed] == 0).all() and (retrained[claimed] != after_prune[claimed]).any()
    state = jax.jit(runner._switch_fn)(state, jnp.int32(1))
    state, owners = jax.jit(hooks.start_task)(state, owners, jnp.int32(1))
    bias = np.asarray(state.params["actor"]["hidden_0"]["bias"])
    state = train(state)  # task 1 trains the free entries; task 0's (and the biases) never move again
    final = np.asarray(state.params["actor"]["hidden_0"]["kernel"])
    np.testing.assert_array_equal(final[claimed], retrained[claimed])
    assert (final[~claimed] != 0).any()
    np.testing.assert_array_equal(np.asarray(state.params["actor"]["hidden_0"]["bias"]), bias)


def test_the_multi_task_reference_trains_every_task_at_once_and_scores_each(tiny_runner):
    out = multitask_run(tiny_runner)
    assert out["perf"].shape == (2, 8, 2) and out["eval_steps"][-1] == tiny_runner.stream.total_steps
    assert np.isfinite(out["returns"]).all() and ((out["perf"] >= 0) & (out["perf"] <= 1)).all()
    assert not np.array_equal(out["returns"][:, :, 0], out["returns"][:, :, 1])  # two tasks, two scores
    final, (mean, low, high) = multitask_average_performance(out["eval_steps"], out["perf"])
    assert final.shape == (2,) and ((final >= 0) & (final <= 1)).all()  # the job's multitask=true record
    assert low <= mean <= high and mean == pytest.approx(float(final.mean()))


def test_the_report_scores_runs_against_a_shared_reference_and_the_published_table(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("cw_report", Path(__file__).parents[1] / "scripts" /
                                                  "continual_world_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    steps = np.arange(1, 9) * 100  # two tasks of 400 steps, 4 evaluations each
    perf = np.zeros((2, 8, 2))
    perf[:, 3:, 0] = 1.0  # task 0 learned at its 4th evaluation and kept; AP (1 + 0.5) / 2
    perf[:, 4:, 1] = 0.5
    ref_perf = np.zeros((2, 4, 2))
    ref_perf[:, :, 1] = 0.5  # task 1 alone scores 0.5 from the start: its FT raw is (0.5 * 4 / 4) - 0.5 = 0
    for name, extra in (("ft", {"ref_steps": steps[:4], "ref_perf": ref_perf}), ("pn", {})):
        run = tmp_path / name
        run.mkdir()
        np.savez(run / "results.npz", eval_steps=steps, perf=perf, returns=perf, **extra)
        method = "finetune" if name == "ft" else "packnet"
        (run / "metrics.json").write_text(json.dumps({"method": {"name": method}, "stream": "toy",
                                                      "segments_run": [[0, 400], [1, 400]], "wall_time_s": 60.0}))
        (run / "task_curves.png").write_bytes(b"png")
    report.main([str(tmp_path / "ft"), str(tmp_path / "pn"), "--reference", str(tmp_path / "ft"),
                 "--out", str(tmp_path / "out")])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    ap = summary["packnet"]["metrics"]["average_performance"]
    assert ap["mean"] == pytest.approx(0.75) and ap["ci_low"] == ap["ci_high"] == pytest.approx(0.75)
    # CW's forgetting compares last-5 means: task 0 ends its window at mean(0, 0, 0, 1) = 0.25 and the stream at 1,
    # so F_0 = -0.75; task 1's window is the last one (F_1 = 0): F = -0.375
    assert summary["finetune"]["metrics"]["forgetting"]["mean"] == pytest.approx(-0.375)
    # FT raw, task 0: curve (0, 0, 0, 1) -> AUC 0.25 against 0; task 1: 0.5 against 0.5; mean 0.125
    assert summary["finetune"]["metrics"]["forward_transfer_raw"]["mean"] == pytest.approx(0.125)
    table = (tmp_path / "out" / "table.md").read_text()
    assert "0.80 / -0.00 / 0.18" in table and (tmp_path / "out" / "packnet_task_curves.png").exists()
