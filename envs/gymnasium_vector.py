"""Any env here as a gymnasium ``VectorEnv``: ``num_envs`` copies in one jitted ``vmap``.

Both autoreset modes gymnasium defines, named in ``metadata['autoreset_mode']``:

* ``next_step`` (gymnasium's default, what its vector wrappers expect): the step
  that ends an episode returns its final observation; the next ``step`` ignores
  that copy's action and returns the first observation of a new episode with
  reward 0 and both flags false.
* ``same_step`` (Stable-Baselines3's convention, and gymnax's own): the step that
  ends an episode already returns the next episode's first observation;
  ``info['final_obs']`` holds the batch's final observations and
  ``info['_final_obs']`` marks the rows that ended (a dense array rather than
  gymnasium's object array, so no per-copy Python loop).

Every copy has its own PRNG key, made from its own seed: ``reset(seed=s)`` draws
``num_envs`` seeds from gymnasium's ``np_random`` seeded with ``s``;
``reset(seed=[s0, s1, ...])`` gives copy ``i`` the seed ``s_i`` (so its trajectory
depends only on its own seed, task and actions). Gymnax auto-resets
inside the step, so neither mode costs an extra reset computation.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from envs.gymnasium_spaces import (
    GYMNAX_INFO,
    check_action,
    dtypes_match,
    host_copy,
    resolve,
    task_observation_space,
    to_gym_space,
)
from envs.packing import Packer

MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}


def _rows(mask: jax.Array, x: jax.Array) -> jax.Array:
    return mask.reshape(mask.shape + (1,) * (x.ndim - 1))


def _step_tree(env, next_step: bool, words, state, pending_obs, needs_reset, actions, tasks):
    """One step of every copy; ``pending_obs``/``needs_reset`` carry NEXT_STEP's deferred resets.

    Returns the next carry and the host values ``(obs, float32[3, n] of reward, term, trunc,
    info extras[, final observations in SAME_STEP])``."""
    pairs = jax.vmap(lambda w: jax.random.split(jax.random.wrap_key_data(w)))(words)
    obs, new_state, reward, term, trunc, info = jax.vmap(env.step)(pairs[:, 1], state, actions, tasks)
    words = jax.vmap(jax.random.key_data)(pairs[:, 0])
    final = info["final_observation"]
    extra = {k: v for k, v in info.items() if k not in GYMNAX_INFO}
    if next_step:
        # copies that ended last step: gymnax already holds their reset state (and its
        # observation in pending_obs); report that observation and discard this transition
        keep = lambda old, new: jnp.where(_rows(needs_reset, old), old, new)  # noqa: E731
        final = jax.tree.map(keep, pending_obs, final)
        new_state = jax.tree.map(keep, state, new_state)
        reward = jnp.where(needs_reset, jnp.zeros_like(reward), reward)
        term, trunc = term & ~needs_reset, trunc & ~needs_reset
        out_obs, tail = final, ()
    else:
        out_obs, tail = obs, (final,)
    scalars = jnp.stack([reward.astype(jnp.float32), term, trunc]).astype(jnp.float32)
    carry = (words, new_state, obs, (term | trunc) & next_step, tasks)
    return carry, (out_obs, scalars, extra, *tail)


# As in the single-env export, the carry (keys, states, pending observations, reset flags,
# tasks) is one packed vector followed by room for the host values: one input, one output.
def _reset(env, carry: Packer, task: Packer, host: Packer, seeds, packed_tasks):
    tasks = task.unpack(packed_tasks)
    pairs = jax.vmap(lambda s: jax.random.split(jax.random.key(s)))(seeds)
    obs, state = jax.vmap(env.reset)(pairs[:, 1], tasks)
    words = jax.vmap(jax.random.key_data)(pairs[:, 0])
    needs_reset = jnp.zeros(seeds.shape, bool)
    room = jnp.zeros((host.size,), jnp.uint32)
    return jnp.concatenate([carry.pack((words, state, obs, needs_reset, tasks)), room]), obs


def _step(env, next_step: bool, carry: Packer, host: Packer, packed, actions):
    values = carry.unpack(packed[: carry.size])
    values, out = _step_tree(env, next_step, *values[:4], actions, values[4])
    return jnp.concatenate([carry.pack(values), host.pack(out)])


@functools.lru_cache(maxsize=64)
def _layout(env, task: Packer, action_shape: tuple, action_dtype: str, next_step: bool) -> tuple[Packer, Packer]:
    """Packers of the carry and of the host values, traced once per env and task structure (a
    new task of the same structure, e.g. ``reset(options={'params': task})``, costs no trace)."""
    tasks = task.treedef.unflatten([leaf.example for leaf in task.leaves])
    n = task.leaves[0].shape[0]
    words = jax.eval_shape(lambda: jax.vmap(jax.random.key_data)(jax.random.split(jax.random.key(0), n)))
    obs, state = jax.eval_shape(jax.vmap(env.reset), jax.random.split(jax.random.key(0), n), tasks)
    actions = jax.ShapeDtypeStruct((n, *action_shape), action_dtype)
    needs = jax.ShapeDtypeStruct((n,), jnp.bool_)
    values = (words, state, obs, needs, tasks)
    out = jax.eval_shape(functools.partial(_step_tree, env, next_step), *values[:4], actions, tasks)[1]
    return Packer(values), Packer(out)


@functools.lru_cache(maxsize=64)
def _programs(env, next_step: bool, carry: Packer, task: Packer, host: Packer):
    # the statics bound once: equal envs and structures share one compile, and a call skips
    # hashing static arguments (a few µs of a ~20 µs single-env step)
    return (jax.jit(functools.partial(_reset, env, carry, task, host)),
            jax.jit(functools.partial(_step, env, next_step, carry, host)))


class VectorPrograms:
    """The jitted reset and step of ``n`` copies of ``env`` with batched ``tasks``.

    ``reset(seeds uint32[n], packed_tasks) -> (packed, obs)`` and ``step(packed, actions) ->
    packed``, where ``packed`` is the carry (keys, states, pending observations, reset flags,
    tasks) followed by the step's host values ``(obs, float32[3, n] reward/term/trunc, info
    extras[, final observations in SAME_STEP])``, read with :meth:`read`."""

    def __init__(self, env, tasks, action_space: gymnasium.spaces.Space, next_step: bool):
        task = Packer(tasks)
        self.carry, self.host = _layout(env, task, action_space.shape, str(action_space.dtype), next_step)
        self.packed_tasks = task.pack(tasks)
        self.reset, self.step = _programs(env, next_step, self.carry, task, self.host)

    def read(self, packed: jax.Array) -> tuple:
        """The host values of the last step: one copy out of the device buffer, then views."""
        return self.host.unpack_host(np.array(packed)[self.carry.size :])

    def obs_example(self) -> Any:
        """Shapes and dtypes of the step's observation batch."""
        return self.host.treedef.unflatten([leaf.example for leaf in self.host.leaves])[0]

    def state(self, packed: jax.Array) -> Any:
        return self.carry.unpack(packed[: self.carry.size])[1]


class GymnasiumVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` copies of one env, each with its own task; see the module doc.

    ``tasks`` is a params pytree with leading axis ``num_envs`` (by default ``params``
    repeated); ``reset(options={'tasks': t})`` replaces them.
    """

    def __init__(
        self,
        env: Any,
        num_envs: int,
        params: Any,
        tasks: Any = None,
        seed: int = 0,
        autoreset_mode: str = "next_step",
        observation_space: gymnasium.spaces.Space | None = None,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if autoreset_mode not in MODES:
            raise ValueError(f"autoreset_mode must be one of {sorted(MODES)}, got {autoreset_mode!r}")
        self.env = env
        self.num_envs = num_envs
        self.metadata = {"autoreset_mode": MODES[autoreset_mode], "render_modes": []}
        self._next_step = autoreset_mode == "next_step"
        self.single_observation_space = observation_space or task_observation_space(env, params)
        self.single_action_space = to_gym_space(env.action_space(params))
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._set_tasks(self._check_tasks(params if tasks is None else tasks, broadcast=tasks is None))
        self._initial_seed = seed
        self._packed = None
        self._ended = np.zeros(num_envs, bool)  # host copy of NEXT_STEP's pending resets

    def _check_tasks(self, tasks: Any, broadcast: bool) -> Any:
        if broadcast:
            return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (self.num_envs, *jnp.shape(x))), tasks)
        leading = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in jax.tree.leaves(tasks)}
        if leading != {self.num_envs}:
            raise ValueError(f"tasks must have leading axis num_envs={self.num_envs}, got {sorted(map(str, leading))}")
        return jax.tree.map(jnp.asarray, tasks)

    def _set_tasks(self, tasks: Any) -> None:
        self.tasks = tasks
        self._programs = VectorPrograms(self.env, tasks, self.single_action_space, self._next_step)
        # envs whose observations differ in dtype from their declared space get a host cast
        self._obs_cast = not dtypes_match(self.observation_space, self._programs.obs_example())

    def _seeds(self, seed: int | list | tuple | None) -> np.ndarray:
        """One uint32 seed per copy: given in a list, else drawn from the seeded ``np_random``."""
        if isinstance(seed, (list, tuple)):
            if len(seed) != self.num_envs:
                raise ValueError(f"got {len(seed)} seeds for num_envs={self.num_envs}")
            if any(s is not None and (int(s) != s or s < 0) for s in seed):
                raise ValueError(f"seeds must be non-negative integers or None, got {seed}")
            super().reset(seed=next((s for s in seed if s is not None), None))
            drawn = self.np_random.integers(2**32, size=self.num_envs)
            return np.array([d if s is None else int(s) % 2**32 for s, d in zip(seed, drawn)], np.uint32)
        super().reset(seed=seed)
        return self.np_random.integers(2**32, size=self.num_envs, dtype=np.uint32)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if seed is None and self._np_random is None:
            seed = self._initial_seed
        seeds = self._seeds(seed)
        if options and "tasks" in options:
            self._set_tasks(self._check_tasks(options["tasks"], broadcast=False))
        self._packed, obs = self._programs.reset(seeds, self._programs.packed_tasks)
        self._ended = np.zeros(self.num_envs, bool)
        return host_copy(self.observation_space, obs), {}

    def step(self, actions):
        if self._packed is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        actions = check_action(self.single_action_space, actions, batch=self.num_envs)
        self._packed = self._programs.step(self._packed, actions)
        obs, scalars, extra, *final = self._programs.read(self._packed)  # writable views of one copy
        reward, term, trunc = scalars[0], scalars[1] != 0, scalars[2] != 0
        if self._obs_cast:
            obs = host_copy(self.observation_space, obs)
            final = [host_copy(self.observation_space, f) for f in final]
        done = term | trunc
        # gymnasium's vector-info convention: ``_key`` marks the copies that report ``key``;
        # in NEXT_STEP the copies that were reset this step report nothing
        reported = ~self._ended if self._next_step else np.ones(self.num_envs, bool)
        infos = {}
        for k, v in extra.items():
            infos[k], infos[f"_{k}"] = v, reported
        if final and done.any():
            infos["final_obs"], infos["_final_obs"] = final[0], done
        self._ended = done
        return obs, reward, term, trunc, infos


def to_gymnasium_vector(
    name_or_env: Any,
    num_envs: int,
    params: Any = None,
    tasks: Any = None,
    seed: int = 0,
    autoreset_mode: str = "next_step",
    observation_space: gymnasium.spaces.Space | None = None,
) -> GymnasiumVectorEnv:
    """A registered name (or env) as a gymnasium ``VectorEnv`` of ``num_envs`` copies.

    ``tasks``: optional batched params (leading axis ``num_envs``), one task per copy.
    ``autoreset_mode``: ``'next_step'`` (gymnasium's default) or ``'same_step'``."""
    env, params = resolve(name_or_env, params)
    return GymnasiumVectorEnv(
        env, num_envs, params, tasks=tasks, seed=seed, autoreset_mode=autoreset_mode,
        observation_space=observation_space,
    )


def check_vector_env(venv: gymnasium.vector.VectorEnv, steps: int = 16, seed: int = 0) -> dict:
    """Gymnasium's conventions for a ``VectorEnv`` (gymnasium ships a checker for single envs only).

    Checks spaces and batch shapes, dtypes and writability of everything returned, that the
    observations stay in ``observation_space`` over ``steps`` random steps, the vector-info
    masks, the autoreset mode named in ``metadata`` (NEXT_STEP: a copy that ended reports a
    reset with reward 0 next step; SAME_STEP: ``final_obs`` for the copies that ended),
    reset determinism under a seed, and that an action outside the space is refused.
    Raises ``AssertionError`` naming the first problem; returns what was checked
    (``{'steps': ..., 'episode_ends': ...}``)."""
    n = venv.num_envs
    mode = venv.metadata.get("autoreset_mode")
    assert isinstance(mode, AutoresetMode), f"metadata['autoreset_mode'] must be an AutoresetMode, got {mode!r}"
    single = venv.single_observation_space
    assert venv.observation_space == batch_space(single, n), "observation_space != batched single"
    assert venv.action_space == batch_space(venv.single_action_space, n), "action_space != batched single"
    obs, info = venv.reset(seed=seed)
    again, _ = venv.reset(seed=seed)
    for a, b in zip(jax.tree.leaves(obs), jax.tree.leaves(again)):
        assert np.array_equal(a, b), "reset(seed=s) is not deterministic"
    assert obs in venv.observation_space, "reset observation outside observation_space"
    assert isinstance(info, dict), "reset info must be a dict"
    venv.action_space.seed(seed)
    ended = np.zeros(n, bool)
    episode_ends = 0
    for t in range(steps):
        obs, reward, term, trunc, info = venv.step(venv.action_space.sample())
        assert obs in venv.observation_space, f"step {t}: observation outside observation_space"
        for name, x in (("reward", reward), ("terminated", term), ("truncated", trunc)):
            assert isinstance(x, np.ndarray) and x.shape == (n,), f"step {t}: {name} must be an array of shape ({n},)"
        assert term.dtype == np.bool_ and trunc.dtype == np.bool_, f"step {t}: flags must be bool arrays"
        assert np.issubdtype(reward.dtype, np.floating), f"step {t}: rewards must be floats"
        for x in [*jax.tree.leaves(obs), reward, term, trunc]:
            assert x.flags.writeable, f"step {t}: returned arrays must be writable"
        for key, value in info.items():
            if key.startswith("_"):
                assert key[1:] in info and np.asarray(value).dtype == np.bool_ and np.shape(value) == (n,), (
                    f"step {t}: info[{key!r}] must be a bool mask of shape ({n},) beside info[{key[1:]!r}]")
        if mode == AutoresetMode.NEXT_STEP and ended.any():
            assert not (term | trunc)[ended].any() and np.all(reward[ended] == 0), (
                f"step {t}: NEXT_STEP copies that ended must report a reset (reward 0, no flags)")
        done = term | trunc
        if mode == AutoresetMode.SAME_STEP and done.any():
            assert "final_obs" in info and np.array_equal(info["_final_obs"], done), (
                f"step {t}: SAME_STEP needs final_obs/_final_obs for the copies that ended")
        ended = done
        episode_ends += int(done.sum())
    try:
        bad = np.full((n + 1, *venv.single_action_space.shape), np.nan)
        venv.step(bad)
    except (gymnasium.error.InvalidAction, AssertionError, ValueError):
        pass
    else:
        raise AssertionError("an action batch of the wrong shape was accepted")
    return {"steps": steps, "episode_ends": episode_ends}
