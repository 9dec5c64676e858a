"""The TaskSpace of a manipulation env: task id, object start and goal, per-task ranges.

Sampling follows Meta-World's rule: a task class uniformly among the env's
tasks, then ``obj_init`` and ``goal`` uniformly in that class's ranges, drawn
again while their xy distance is below the class's ``min_separation``
(``REDRAWS`` candidates are drawn at once and the first valid one is kept,
which keeps sampling a fixed-size, jit-friendly computation). A goal that is
a function of the object (``goal_offset``) is recomputed by ``derive``.

``contains``/``check`` test each task against *its own* class's ranges, not
the union box of the fields.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from envs.grouped_switch import block_of
from envs.manipulation.task_registry import TASK_NAMES
from envs.task_space import Field, TaskSpace

REDRAWS = 32
TOLERANCE = 1e-6  # float32 round-off at the range ends


class ManipulationTaskSpace(TaskSpace):
    def __init__(self, env, default):
        self.env = env
        ids = [TASK_NAMES.index(t.name) for t in env.tasks]
        goal_bounds = [t.goal_bounds() for t in env.tasks]
        self._obj_low = np.array([t.obj_low for t in env.tasks], np.float32)
        self._obj_high = np.array([t.obj_high for t in env.tasks], np.float32)
        self._goal_low = np.array([b[0] for b in goal_bounds], np.float32)
        self._goal_high = np.array([b[1] for b in goal_bounds], np.float32)
        self._separation = np.array([t.min_separation for t in env.tasks], np.float32)
        self._ids = np.array(ids, np.int32)
        fields = (
            Field("task_id", min(ids), max(ids), kind="int"),
            # union boxes widened by TOLERANCE: a derived goal (obj_init + goal_offset in float32) may
            # land a rounding step outside a zero-width range (drawer-open's goal y)
            Field("obj_init", self._obj_low.min(0) - TOLERANCE, self._obj_high.max(0) + TOLERANCE, shape=(3,)),
            Field("goal", self._goal_low.min(0) - TOLERANCE, self._goal_high.max(0) + TOLERANCE, shape=(3,)),
        )
        super().__init__(default, fields, sampler=self._sample, derive=self._derive_goal, name=env.name)

    def _derive_goal(self, params):
        goal = self.env._dispatch(lambda task, obj, goal, p: task.derive_goal(obj, goal, p), params, params.obj_init,
                                  params.goal)
        return params.replace(goal=goal)

    def sample_in_class(self, key, i):
        """One task of the env's ``i``-th class (``i`` may be traced)."""
        return self._draw(key, i)

    def _draw(self, key, i):
        """One task of the env's ``i``-th class (``i`` may be traced)."""
        k_obj, k_goal = jax.random.split(key)
        lows_highs = [jnp.asarray(a)[i] for a in (self._obj_low, self._obj_high, self._goal_low, self._goal_high)]
        obj = jax.random.uniform(k_obj, (REDRAWS, 3), minval=lows_highs[0], maxval=lows_highs[1])
        goal = jax.random.uniform(k_goal, (REDRAWS, 3), minval=lows_highs[2], maxval=lows_highs[3])
        ok = jnp.linalg.norm(obj[:, :2] - goal[:, :2], axis=1) >= jnp.asarray(self._separation)[i]
        pick = jnp.argmax(ok)  # the first valid candidate (0 if none, vanishingly rare)
        params = self.default.replace(task_id=jnp.asarray(self._ids)[i], obj_init=obj[pick], goal=goal[pick])
        return self._derive_goal(params)

    def _sample(self, key):
        k_class, k_task = jax.random.split(key)
        return self._draw(k_task, jax.random.randint(k_class, (), 0, len(self._ids)))

    def sample_class(self, key, task: str, n: int):
        """``n`` tasks of one class (Meta-World's goal variations of that class)."""
        i = self.env.task_names.index(task.removesuffix("-v3"))
        return jax.vmap(lambda k: self._draw(k, i))(jax.random.split(key, n))

    def sample_grouped(self, key, n: int):
        """``n`` tasks laid out by class: block ``b`` of ``envs.grouped_switch.block_of(n, classes)`` is
        the env's ``b``-th class (Meta-World's MT layout; such a batch steps one class's code per block)."""
        classes = jnp.asarray(block_of(n, len(self._ids)))
        return jax.vmap(self._draw)(jax.random.split(key, n), classes)

    def _member(self, params) -> jax.Array:
        local = jnp.asarray(self.env._local_index)[jnp.clip(params.task_id, 0, len(TASK_NAMES) - 1)]
        valid = (params.task_id >= 0) & (params.task_id < len(TASK_NAMES)) & (local >= 0)
        i = jnp.maximum(local, 0)
        inside = lambda x, lo, hi: jnp.all(x >= lo - TOLERANCE) & jnp.all(x <= hi + TOLERANCE)
        obj_ok = inside(params.obj_init, jnp.asarray(self._obj_low)[i], jnp.asarray(self._obj_high)[i])
        goal_ok = inside(params.goal, jnp.asarray(self._goal_low)[i], jnp.asarray(self._goal_high)[i])
        return valid & obj_ok & goal_ok

    def contains(self, params) -> jax.Array:
        return super().contains(params) & self._member(params)

    def check(self, params) -> None:
        task_id = int(np.asarray(params.task_id))
        if task_id not in self._ids.tolist():
            known = ", ".join(f"{TASK_NAMES[i]}={i}" for i in self._ids)
            raise ValueError(f"{self.name}: task_id={task_id} is not a task of this env ({known})")
        i = self._ids.tolist().index(task_id)
        for field, low, high in (("obj_init", self._obj_low[i], self._obj_high[i]),
                                 ("goal", self._goal_low[i], self._goal_high[i])):
            x = np.asarray(getattr(params, field), np.float32)
            if x.shape != (3,):
                raise ValueError(f"{self.name}: {field} has shape {x.shape}, expected (3,)")
            if not np.all(np.isfinite(x)) or np.any(x < low - TOLERANCE) or np.any(x > high + TOLERANCE):
                raise ValueError(f"{self.name}: {field}={np.round(x, 4).tolist()} is outside "
                                 f"{TASK_NAMES[task_id]}-v3's range {_box(low, high)}")



def _box(low: np.ndarray, high: np.ndarray) -> str:
    return " x ".join(f"[{lo:.3g}, {hi:.3g}]" for lo, hi in zip(low.tolist(), high.tolist()))
