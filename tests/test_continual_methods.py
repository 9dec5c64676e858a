"""Continual methods as objects with hooks: the registry and the runner calling the hooks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.agents.ppo import PPOConfig
from metarl.continual.method_base import Method, quiet_log, register
from metarl.continual.methods import MethodConfig, get_method, method_names
from metarl.continual.replay import ReplayState
from metarl.continual.runner import ContinualRunner, RunConfig
from metarl.continual.streams import from_spec

STREAM = {
    "name": "tiny-hooks", "version": 1, "env": "CartPole-v1",
    "tasks": {"overrides": [{"gravity": 9.8}, {"gravity": 19.6}]},
    "schedule": {"kind": "sequential", "steps_per_task": 128},
}
AGENT = PPOConfig(num_envs=4, num_steps=16, update_epochs=1, num_minibatches=1, hidden_sizes=(8,), anneal_lr=False)


@register
class CountingMethod(Method):
    """Counts hook calls in its state; fires on every other update and at real switches."""

    name = "test_counting"

    def init(self, ctx, state):
        return state, {"updates": jnp.zeros((), jnp.int32), "switches": jnp.zeros((), jnp.int32),
                       "ended": jnp.zeros((), jnp.int32), "loss_calls": jnp.zeros((), jnp.int32)}

    def loss_extra(self, ctx, params, batch, method_state):
        return 0.0 * jnp.sum(params["critic"]["head"]["bias"])

    def after_update(self, ctx, state, method_state, step):
        assert step.recent_obs.shape[-1] == ctx.spec.obs_dim
        fired = (step.index % 2 == 0).astype(jnp.float32)
        return state, {**method_state, "updates": method_state["updates"] + 1}, {**quiet_log(), "fired": fired}

    def on_task_switch(self, ctx, state, method_state, switch):
        ended = method_state["ended"] + switch.happened.astype(jnp.int32)
        return state, {**method_state, "switches": method_state["switches"] + 1, "ended": ended}, jnp.float32(1.0)


def test_a_registered_method_gets_its_hooks_called():
    stream = from_spec(STREAM)
    run_cfg = RunConfig(eval_every_steps=64, eval_episodes=1, eval_max_steps=10, seeds=2, obs_buffer_updates=2)
    runner = ContinualRunner(stream, AGENT, MethodConfig("test_counting"), run_cfg)
    assert isinstance(runner.method, CountingMethod)
    out = runner.run()
    total_updates = stream.total_steps // AGENT.batch_size
    # run() returns no hook state; the intervention log shows the hooks' effects
    periodic = [e for e in out["interventions"] if e["event"] == "periodic"]
    assert sum(np.sum(e["fired"]) for e in periodic) == 2 * (total_updates // 2)  # every other update, 2 seeds
    assert [e["event"] for e in out["interventions"] if e["event"].startswith("switch")] == ["switch->1"]
    state = runner._init(np.stack([np.asarray([0, 1], np.uint32)] * 2))
    state, _ = runner._switch(state, jnp.int32(0), jnp.asarray(False))
    state, _ = runner._chunk(state)
    state, _ = runner._switch(state, jnp.int32(1), jnp.asarray(True))
    counts = state.hook_state.method_state
    np.testing.assert_array_equal(counts["updates"], [runner.chunk_updates] * 2)
    np.testing.assert_array_equal(counts["switches"], [2, 2])
    np.testing.assert_array_equal(counts["ended"], [1, 1])
    np.testing.assert_array_equal(state.hook_state.task_id, [1, 1])


def test_unknown_method_names_and_settings_raise_with_close_matches():
    with pytest.raises(ValueError, match=r"method.name must be one of .*got 'ewcc' \(did you mean ewc"):
        get_method("ewcc")
    with pytest.raises(ValueError, match=r"method.ewc_cof.*did you mean ewc_coef"):
        get_method("ewc", ewc_cof=1.0)
    with pytest.raises(ValueError, match="never fires"):
        get_method("reset", at_switch=False)
    with pytest.raises(ValueError, match="normalize_obs"):
        get_method("replay").check_agent(PPOConfig(normalize_obs=True))
    with pytest.raises(ValueError, match="method agem stores raw observations"):
        get_method("agem").check_agent(PPOConfig(normalize_obs=True))


def test_every_builtin_method_is_registered_with_its_settings():
    builtin = {"finetune", "reset", "shrink_perturb", "redo", "cbp", "l2", "l2_init", "ewc", "replay", "agem"}
    assert builtin <= set(method_names())
    for name in builtin:
        method = get_method(name)
        assert method.name == name and method.cfg.name == name
    assert get_method("ewc", ewc_coef=5.0).cfg.ewc_coef == 5.0


def test_agem_keeps_the_finished_task_in_its_memory_and_trains_in_the_runner():
    run_cfg = RunConfig(eval_every_steps=64, eval_episodes=1, eval_max_steps=10, seeds=2, obs_buffer_updates=2,
                        replay_per_task=6)  # of the 2 x 4 recent states
    runner = ContinualRunner(from_spec(STREAM), AGENT, MethodConfig("agem", agem_capacity=64, agem_batch=8), run_cfg)
    memory = lambda s: [x for x in jax.tree.leaves(s.opt_state, is_leaf=lambda x: isinstance(x, ReplayState))
                        if isinstance(x, ReplayState)][0].buffer
    state = runner._init(np.stack([np.asarray([0, 1], np.uint32)] * 2))
    state, _ = runner._switch(state, jnp.int32(0), jnp.asarray(False))
    state, _ = runner._chunk(state)
    np.testing.assert_array_equal(memory(state).size, [0, 0])  # nothing before the first task ends
    state, _ = runner._switch(state, jnp.int32(1), jnp.asarray(True))
    buf = memory(state)
    np.testing.assert_array_equal(buf.size, [6, 6])
    assert np.all(np.asarray(buf.task)[:, :6] == 0) and np.all(np.asarray(buf.task)[:, 6:] == -1)
    before = state.params
    state, _ = runner._chunk(state)
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), before, state.params)
    assert any(jax.tree.leaves(changed))
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state.params))
