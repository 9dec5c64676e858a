"""Prioritized Level Replay, robust PLR and ACCEL as pure teachers.

Each ``sample`` call chooses one branch for the whole batch (as in
DramaCow/jaxued and facebookresearch/minimax):

* **new**: ``n`` levels from the generator (the TaskSpace by default);
  ``update`` offers them to the buffer with their scores.
* **replay** (when the buffer is at least ``min_fill_ratio`` full, with
  probability ``replay_prob``): ``n`` levels drawn from the replay
  distribution (``curricula.level_buffer``); ``update`` overwrites their
  scores and ``R_max``.
* **mutate** (ACCEL only, always right after a replay batch): the last
  replayed levels edited by ``mutate_fn``; ``update`` offers the children.

How a training loop uses it (robust PLR / ACCEL, Jiang et al. 2021,
Parker-Holder et al. 2022): after ``state, tasks = teacher.sample(...)`` roll
out on ``tasks``; apply the policy-gradient update only if
``teacher.should_train(state)`` (a traced bool: True on replay batches, and on
every batch for plain PLR); always call ``teacher.update`` with the scores.
``teacher.train_mask(state, n)`` gives the same as a per-env float mask,
which multiplies per-env losses without any Python branching.

Scores come from ``Feedback.scores`` (PVL, MaxMC or mean |GAE| from
``curricula.scores``, computed by the learner). With ``score="max_mc"`` the
learner computes MaxMC with the best return of *its batch*
(``Feedback.max_returns``); the teacher corrects it to the level's all-time
``R_max``: ``mean(R_max - V) = score + R_max - batch_max``.

Defaults follow the jaxued maze setting (docs/algorithms.md §3.3): capacity 4000,
replay_prob 0.8, staleness 0.3, rank with temperature 0.3, min fill 0.5,
duplicate check on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from curricula import level_buffer as lb
from curricula.base import Feedback
from curricula.simple import TaskSpaceTeacher

NEW, REPLAY, MUTATE = 0, 1, 2
SCORES = ("scores", "max_mc")


@struct.dataclass
class PLRState:
    buffer: lb.LevelBuffer
    branch: jax.Array  # [] int32: NEW / REPLAY / MUTATE of the last sample
    parent_slots: jax.Array  # [batch_size] int32: last replayed slots (ACCEL), else shape [0]
    branch_counts: jax.Array  # [3] int32: NEW / REPLAY / MUTATE batches sampled so far (for plots)

    @property
    def last_was_replay(self) -> jax.Array:
        return self.branch == REPLAY


def _branch(state: PLRState, buffer: lb.LevelBuffer, branch: int, parent_slots: jax.Array) -> PLRState:
    """The state after sampling a batch from ``branch``."""
    return PLRState(buffer, jnp.array(branch, jnp.int32), parent_slots, state.branch_counts.at[branch].add(1))


class PLR(TaskSpaceTeacher):
    """PLR (``robust=False``) or robust PLR (``robust=True``)."""

    def __init__(
        self,
        capacity: int = 4000,
        replay_prob: float = 0.8,
        staleness_coef: float = 0.3,
        temperature: float = 0.3,
        prioritization: str = "rank",
        min_fill_ratio: float = 0.5,
        duplicate_check: bool = True,
        robust: bool = False,
        score: str = "scores",
        generator: Callable[[jax.Array], Any] | None = None,
        task_space: Any = None,
    ):
        super().__init__(task_space)
        if prioritization not in lb.PRIORITIZATIONS:
            raise ValueError(f"prioritization must be one of {lb.PRIORITIZATIONS}, got {prioritization!r}")
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        if not 0.0 <= replay_prob <= 1.0 or not 0.0 <= staleness_coef <= 1.0:
            raise ValueError("replay_prob and staleness_coef must lie in [0, 1]")
        if temperature <= 0 or capacity < 1:
            raise ValueError("temperature must be > 0 and capacity >= 1")
        if score == "max_mc" and prioritization != "rank":
            # MaxMC can be negative; proportional weights need non-negative scores (as minimax asserts)
            raise ValueError("score='max_mc' needs prioritization='rank'")
        self.capacity = capacity
        self.replay_prob = replay_prob
        self.staleness_coef = staleness_coef
        self.temperature = temperature
        self.prioritization = prioritization
        self.min_fill_ratio = min_fill_ratio
        self.duplicate_check = duplicate_check
        self.robust = robust
        self.score = score
        self.generator = generator

    # --- protocol -------------------------------------------------------
    def init(self, key: jax.Array, task_space: Any = None) -> PLRState:
        self._set_task_space(task_space)
        template = self._generate(key, 1)
        template = jax.tree.map(lambda x: x[0], template)
        return PLRState(
            lb.create(template, self.capacity), jnp.array(NEW, jnp.int32), self._empty_parents(), jnp.zeros(3, jnp.int32)
        )

    def sample(self, state: PLRState, key: jax.Array, n: int) -> tuple[PLRState, Any]:
        key_new, key_replay, key_decide = jax.random.split(key, 3)
        new_levels = self._generate(key_new, n)
        replay_buffer, slots, replay_levels = self._replay(state.buffer, key_replay, n)
        replay = self._decide_replay(state.buffer, key_decide)
        return self._choose(
            replay,
            (_branch(state, replay_buffer, REPLAY, self._parents(state, slots)), replay_levels),
            (_branch(state, lb.advance(state.buffer, n), NEW, state.parent_slots), new_levels),
        )

    def update(self, state: PLRState, tasks: Any, feedback: Feedback) -> PLRState:
        scores, mask = self._scores(state.buffer, tasks, feedback)
        found, slots = jax.vmap(lambda t: lb.find(state.buffer, t))(tasks)
        replayed = lb.update_scores(state.buffer, slots, scores, mask & found, feedback.max_returns)
        offered, _ = lb.insert_batch(
            state.buffer, tasks, scores, mask, feedback.max_returns, duplicate_check=self.duplicate_check
        )
        buffer = jax.tree.map(lambda a, b: jnp.where(state.branch == REPLAY, a, b), replayed, offered)
        return state.replace(buffer=buffer)

    # --- training-loop helpers -------------------------------------------
    def should_train(self, state: PLRState) -> jax.Array:
        """Whether the last sampled batch gets a gradient update (robust: replays only)."""
        return jnp.logical_or(not self.robust, state.branch == REPLAY)

    def train_mask(self, state: PLRState, n: int) -> jax.Array:
        return jnp.full((n,), self.should_train(state), jnp.float32)

    def replay_probabilities(self, state: PLRState) -> jax.Array:
        return lb.replay_weights(state.buffer, self.prioritization, self.temperature, self.staleness_coef)

    # --- pieces ------------------------------------------------------------
    def _generate(self, key: jax.Array, n: int) -> Any:
        if self.generator is None:
            return self.task_space.sample_batch(key, n)
        return jax.vmap(self.generator)(jax.random.split(key, n))

    def _replay(self, buffer, key, n):
        return lb.sample_replay(buffer, key, n, self.prioritization, self.temperature, self.staleness_coef)

    def _decide_replay(self, buffer: lb.LevelBuffer, key: jax.Array) -> jax.Array:
        ready = (buffer.fill_ratio >= self.min_fill_ratio) & (buffer.size > 0)
        return ready & (jax.random.uniform(key) < self.replay_prob)

    @staticmethod
    def _choose(pred, on_true, on_false):
        return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)

    def _scores(self, buffer, tasks, feedback: Feedback) -> tuple[jax.Array, jax.Array]:
        scores = jnp.asarray(feedback.scores, jnp.float32)
        if self.score == "max_mc":
            found, slots = jax.vmap(lambda t: lb.find(buffer, t))(tasks)
            batch_max = jnp.asarray(feedback.max_returns, jnp.float32)
            stored = jnp.where(found, buffer.max_returns[slots], -jnp.inf)
            best = jnp.maximum(stored, batch_max)
            scores = jnp.where(jnp.isfinite(batch_max), scores + best - batch_max, scores)
        return scores, jnp.asarray(feedback.mask, bool) & jnp.isfinite(scores)

    def _empty_parents(self) -> jax.Array:
        return jnp.zeros((0,), jnp.int32)

    def _parents(self, state: PLRState, slots: jax.Array) -> jax.Array:
        return state.parent_slots


class ACCEL(PLR):
    """ACCEL (Parker-Holder et al. 2022): robust PLR plus mutation of the last replayed batch.

    ``mutate_fn(key, task) -> task`` edits one level (for mazes,
    ``lambda k, l: envs.maze.mutate_level(k, l, n_edits)``). ``batch_size`` is
    the ``n`` every ``sample`` call uses (the parents are kept in the state,
    whose shapes must be fixed). Mutated children are rolled out without a
    gradient update, scored, and offered to the buffer.
    """

    def __init__(self, mutate_fn: Callable[[jax.Array, Any], Any], batch_size: int, robust: bool = True, **kwargs):
        super().__init__(robust=robust, **kwargs)
        if batch_size < 1:
            raise ValueError(f"ACCEL batch_size must be >= 1, got {batch_size}")
        self.mutate_fn = mutate_fn
        self.batch_size = batch_size

    def sample(self, state: PLRState, key: jax.Array, n: int) -> tuple[PLRState, Any]:
        if n != self.batch_size:
            raise ValueError(f"ACCEL was built for batches of {self.batch_size} tasks, asked for {n}")
        key_plr, key_mutate = jax.random.split(key)
        plr_state, plr_tasks = super().sample(state, key_plr, n)
        parents = jax.tree.map(lambda x: x[state.parent_slots], state.buffer.levels)
        children = jax.vmap(self.mutate_fn)(jax.random.split(key_mutate, n), parents)
        mutate_state = _branch(state, lb.advance(state.buffer, n), MUTATE, state.parent_slots)
        return self._choose(state.branch == REPLAY, (mutate_state, children), (plr_state, plr_tasks))

    def _empty_parents(self) -> jax.Array:
        return jnp.zeros((self.batch_size,), jnp.int32)

    def _parents(self, state: PLRState, slots: jax.Array) -> jax.Array:
        return slots
