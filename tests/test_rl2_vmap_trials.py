"""RL²'s carry under ``vmap`` when the members' episodes end at different steps (issue #20).

The carry is kept across every in-trial episode end and reset only at trial start, and the previous
action / reward / done inputs are each member's own, also when the trials of a vmapped batch (seeds x
envs, one task per env) have their episode ends at different steps. Dark Room's episodes are only ever
truncated (all at the same step), so the env here is a tiny one whose episodes terminate early: action 0
quits, and an episode ends after the task's ``length`` (1..H) steps.

The trials are those of :func:`metarl.agents.rl2.make_train`'s ``update``, vmapped over seeds and run
trial after trial as :func:`metarl.in_context.runner.programs` does. ``run_trial`` and ``learn`` are
wrapped while the program is traced so that each trial's rollout (and the params it ran with) comes
out with the trial's metrics; nothing else of the update changes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from envs.core import Environment, EnvState, StaticIdentity, spaces
from envs.task_space import Field, TaskSpace
from metarl.agents import rl2, rl2_network
from metarl.agents.env_spec import EnvSpec
from metarl.agents.rl2 import RL2Config, input_parts, make_train

H, K = 4, 3  # steps per episode at most, episodes per trial: a trial is 12 steps
T = H * K
SEEDS, N, TRIALS = 3, 4, 3  # vmapped seeds, envs (tasks) per seed, consecutive trials of update
ACTIONS = 3
CONFIG = RL2Config(num_envs=N, episodes_per_trial=K, num_trials=TRIALS, bptt_chunk=2, hidden_size=8,
                   encoder_widths=(8,), head_widths=(), update_epochs=1, num_minibatches=1, lr=1e-2)
CHUNK = CONFIG.bptt_chunk  # 6 chunks: some episode ends fall inside a chunk, some at its last step


@struct.dataclass
class QuitParams:
    length: jax.Array  # int32: the episode terminates after this many steps
    scale: jax.Array  # float32: reward scale
    max_steps_in_episode: jax.Array  # int32: H


class QuitEnv(StaticIdentity, Environment):
    """Observation: one-hot of the step in the episode. Reward ``scale * (action + 1) / 4 + time / 100``.
    Terminal when the action is 0 or after ``length`` steps (so before or at ``H``)."""

    def _static(self) -> tuple:
        return ()

    @property
    def name(self) -> str:
        return "quit-test"

    @property
    def num_actions(self) -> int:
        return ACTIONS

    @property
    def default_params(self) -> QuitParams:
        return QuitParams(length=jnp.asarray(H, jnp.int32), scale=jnp.asarray(1.0, jnp.float32),
                          max_steps_in_episode=jnp.asarray(H, jnp.int32))

    @property
    def task_space(self) -> TaskSpace:
        fields = [Field("length", 1, H, kind="int"), Field("scale", 0.5, 2.0)]
        return TaskSpace(self.default_params, fields, name=self.name)

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(ACTIONS)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (H,), jnp.float32)

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        return jax.nn.one_hot(jnp.minimum(state.time, H - 1), H, dtype=jnp.float32)

    def reset_env(self, key, params):
        state = EnvState(time=jnp.zeros((), jnp.int32))
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        time = state.time + 1
        action = jnp.asarray(action, jnp.int32)
        reward = params.scale * (action + 1).astype(jnp.float32) / 4.0 + time.astype(jnp.float32) / 100.0
        terminated = (action == 0) | (time >= params.length)
        new = EnvState(time=time)
        return self.get_obs(new), new, reward, terminated, {}


@pytest.fixture(scope="module")
def trials():
    """``SEEDS`` vmapped seeds x ``TRIALS`` consecutive trials of update: the rollout of every trial
    (``[S, R, T, N, ...]``, ``carries [S, R, C, N, width]``), the params it ran with, the final state."""
    env = QuitEnv()
    seen = {}
    real_run_trial, real_learn = rl2.run_trial, rl2.learn

    def run_trial(params, *args, **kwargs):
        traj = real_run_trial(params, *args, **kwargs)
        seen["record"] = {**traj, "params": params}
        return traj

    def learn(*args, **kwargs):
        params, opt_state, losses = real_learn(*args, **kwargs)
        return params, opt_state, {**losses, "record": seen.pop("record")}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rl2, "run_trial", run_trial)
        patch.setattr(rl2, "learn", learn)
        train = make_train(env, CONFIG)
        program = jax.jit(jax.vmap(lambda key: jax.lax.scan(train.update, train.init(key), None, length=TRIALS)))
        keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(0), i))(jnp.arange(SEEDS))
        state, metrics = jax.device_get(program(keys))
    assert train.layout.trial_steps == T and train.layout.num_chunks == T // CHUNK
    return env, state, metrics["record"]


def _unrolled(params, inputs):
    """``inputs [T, N, in]`` from a zero carry, never reset: the carry before each step, the logits and values,
    the final carry; and ``fresh``: each step's value from a zero carry (what a reset before it would give)."""

    def body(carry, x):
        new, out, value = rl2_network.step(params, carry, x, CONFIG.activation)
        return new, (carry, out, value)

    zero = rl2_network.initial_carry(params, inputs.shape[1])
    final, (carries, outs, values) = jax.lax.scan(body, zero, inputs)
    fresh = jax.vmap(lambda x: rl2_network.step(params, zero, x, CONFIG.activation)[2])(inputs)
    return {"carries": carries, "outs": outs, "values": values, "final": final, "fresh": fresh}


@pytest.fixture(scope="module")
def unrolled(trials):
    """:func:`_unrolled` of every seed's every trial with the params that trial ran with (``[S, R, ...]``)."""
    _, _, rec = trials
    over_trials = jax.vmap(jax.vmap(_unrolled))  # seeds, trials
    return jax.device_get(jax.jit(over_trials)(rec["params"], jnp.asarray(rec["inputs"])))


def _episode_ends(done):
    """Steps ``t < T - 1`` whose episode ended (an in-trial end), per member: ``{(s, r, n): [t, ...]}``."""
    return {(s, r, n): np.flatnonzero(done[s, r, :-1, n]).tolist()
            for s in range(SEEDS) for r in range(TRIALS) for n in range(N)}


def test_episode_ends_differ_between_members_of_the_vmapped_batch(trials):
    _, state, rec = trials
    done = rec["done"]
    assert done.shape == (SEEDS, TRIALS, T, N)
    np.testing.assert_array_equal(state.trial, TRIALS)
    ends = _episode_ends(done)
    # every member's episodes end inside the trial (an episode lasts at most `length` <= H steps), ...
    assert all(len(steps) >= K - 1 for steps in ends.values())
    # ... early (not only where a fixed horizon would cut them) ...
    assert any(t % H != H - 1 for steps in ends.values() for t in steps)
    # ... and at different steps: between the envs of one seed, between seeds (the vmapped axis) for the same env
    for r in range(TRIALS):
        patterns = {tuple(done[s, r, :, n]) for s in range(SEEDS) for n in range(N)}
        assert len(patterns) >= SEEDS * N // 2, f"trial {r}: only {len(patterns)} distinct episode-end patterns"
        for n in range(N):
            assert len({tuple(done[s, r, :, n]) for s in range(SEEDS)}) > 1, f"trial {r} env {n}: seeds agree"
        for s in range(SEEDS):
            assert len({tuple(done[s, r, :, n]) for n in range(N)}) > 1, f"trial {r} seed {s}: envs agree"


def test_observation_resets_at_each_members_own_episode_ends(trials):
    _, _, rec = trials
    first = rec["inputs"][..., 0]  # obs one-hot of the step in the episode: entry 0 marks an episode's first step
    starts = np.concatenate([np.ones_like(rec["done"][:, :, :1]), rec["done"][:, :, :-1]], axis=2)
    np.testing.assert_array_equal(first, starts.astype(np.float32))


def test_carry_is_continued_across_each_members_episode_ends(trials, unrolled):
    _, _, rec = trials
    carries, outs, values = unrolled["carries"], unrolled["outs"], unrolled["values"]  # [S, R, T, N, ...]
    # the stored carry at every chunk start is the carry continued from the trial's start through all of the
    # member's earlier steps, whatever episode ends lay between
    np.testing.assert_allclose(rec["carries"], carries[:, :, ::CHUNK], atol=1e-5)
    # every step's value and log-probability (also the steps after an episode end inside a chunk) came from it
    np.testing.assert_allclose(rec["value"], values, atol=1e-5)
    logp = np.take_along_axis(jax.nn.log_softmax(outs), rec["action"][..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(rec["logp"], logp, atol=1e-5)
    # after each member's in-trial episode end the carry is not the zero trial-start carry, and the step's value
    # is not what a carry reset at the episode end would give
    reset_values = unrolled["fresh"]
    checked = 0
    for (s, r, n), steps in _episode_ends(rec["done"]).items():
        for t in steps:
            assert np.abs(carries[s, r, t + 1, n]).max() > 1e-3, f"seed {s} trial {r} env {n}: carry reset at {t + 1}"
            assert abs(values[s, r, t + 1, n] - reset_values[s, r, t + 1, n]) > 1e-5, (s, r, n, t)
            checked += 1
    assert checked >= SEEDS * TRIALS * N * (K - 1)


def test_previous_action_reward_and_done_are_each_members_own(trials):
    env, _, rec = trials
    parts = jax.tree.map(np.asarray, input_parts(rec["inputs"], EnvSpec.of(env)))
    for name in ("prev_action", "prev_reward", "prev_done"):
        np.testing.assert_array_equal(parts[name][:, :, 0], 0.0, err_msg=f"{name} at trial start")
    np.testing.assert_array_equal(parts["prev_action"][:, :, 1:], np.eye(ACTIONS)[rec["action"][:, :, :-1]])
    np.testing.assert_array_equal(parts["prev_reward"][:, :, 1:], rec["reward"][:, :, :-1])
    np.testing.assert_array_equal(parts["prev_done"][:, :, 1:], rec["done"][:, :, :-1].astype(np.float32))
    # the first step of a new episode sees the last step of the member's previous one, which differs between
    # members (so a mix-up along the batch axes would show)
    after_end = parts["prev_done"][:, :, 1:] == 1.0
    assert after_end.sum() >= SEEDS * TRIALS * N * (K - 1)
    assert len(np.unique(parts["prev_reward"][:, :, 1:][after_end])) > 3
    assert np.all(parts["prev_reward"][:, :, 1:][after_end] > 0.0)


def test_each_trial_of_update_starts_from_a_zero_carry(trials, unrolled):
    _, _, rec = trials
    carries = rec["carries"]  # [S, R, C, N, width]
    np.testing.assert_array_equal(carries[:, :, 0], 0.0)
    # later chunks: every member's own nonzero carry, different between members (seeds and envs)
    assert np.all(np.abs(carries[:, :, 1:]).max(axis=-1) > 1e-3)
    for r in range(TRIALS):
        for c in range(1, carries.shape[2]):
            members = carries[:, r, c].reshape(SEEDS * N, -1)
            gaps = np.abs(members[:, None] - members[None]).max(axis=-1) + np.eye(SEEDS * N)
            assert np.all(gaps > 1e-4), f"trial {r} chunk {c}: two members share a carry"
    # the trial before ended with a nonzero carry, and the inputs of its last step were not zero: the next trial's
    # zero carry and zero previous-step inputs are a reset, not a continuation
    final = unrolled["final"]  # [S, R, N, width]
    assert np.all(np.abs(final[:, :-1]).max(axis=-1) > 1e-3)
    assert np.all(rec["reward"][:, :-1, -1] > 0.0)
    # the trials are consecutive updates: each ran with the params the previous trial's update changed
    for r in range(1, TRIALS):
        moved = [np.abs(a[:, r] - a[:, r - 1]).max() for a in jax.tree.leaves(rec["params"])]
        assert max(moved) > 0.0, f"trial {r} ran with the same params as trial {r - 1}"
