"""A fixed-capacity level buffer for PLR-style teachers, as a pytree.

Everything is jittable: the buffer has a static capacity, unused slots are
masked by ``filled``. Formulas (docs/algorithms.md §3.3; Jiang et al.,
*Prioritized Level Replay* and *Replay-Guided Adversarial Environment
Design*; checked against DramaCow/jaxued's ``level_sampler``):

* score weights, over filled slots only, temperature ``T``
    rank:          ``h_i = (1 / rank(S_i)) ** (1/T)``  (rank 1 = highest score,
                   ties broken by slot order)
    proportional:  ``h_i = max(S_i, 0) ** (1/T)``
  ``P_S = h / sum(h)`` (uniform over filled slots if every ``h`` is 0).
* staleness weights ``P_C(i) = (c - C_i) / sum_j (c - C_j)`` with ``c`` the
  episode count and ``C_i`` the count when slot ``i`` was last sampled or
  scored (uniform over filled slots while all staleness is 0).
* replay distribution ``P = (1 - rho) P_S + rho P_C``.
* insertion: fill the first empty slot; when full, replace the slot with the
  lowest score if the new score is higher (the lowest-score slot is also the
  lowest ``P_S`` slot for both prioritisations). With ``duplicate_check`` a
  level equal to a stored one updates that slot instead.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

PRIORITIZATIONS = ("rank", "proportional")


@struct.dataclass
class LevelBuffer:
    levels: Any  # batched params pytree, leading axis = capacity
    scores: jax.Array  # [capacity] float32
    timestamps: jax.Array  # [capacity] int32, episode count at last visit
    filled: jax.Array  # [capacity] bool
    max_returns: jax.Array  # [capacity] float32, best return seen on the level (MaxMC)
    episode_count: jax.Array  # [] int32

    @property
    def capacity(self) -> int:
        return self.scores.shape[0]

    @property
    def size(self) -> jax.Array:
        return jnp.sum(self.filled)

    @property
    def fill_ratio(self) -> jax.Array:
        return self.size / self.capacity


def create(template_level: Any, capacity: int) -> LevelBuffer:
    """An empty buffer whose slots have the structure of ``template_level``."""
    if capacity < 1:
        raise ValueError(f"level buffer capacity must be >= 1, got {capacity}")
    levels = jax.tree.map(lambda x: jnp.repeat(jnp.asarray(x)[None], capacity, axis=0), template_level)
    return LevelBuffer(
        levels=levels,
        scores=jnp.zeros(capacity, jnp.float32),
        timestamps=jnp.zeros(capacity, jnp.int32),
        filled=jnp.zeros(capacity, bool),
        max_returns=jnp.full(capacity, -jnp.inf, jnp.float32),
        episode_count=jnp.zeros((), jnp.int32),
    )


def _normalize(h: jax.Array, filled: jax.Array) -> jax.Array:
    h = jnp.where(filled, h, 0.0)
    total = jnp.sum(h)
    uniform = filled / jnp.maximum(jnp.sum(filled), 1)
    return jnp.where(total > 0, h / jnp.where(total > 0, total, 1.0), uniform)


def score_weights(scores: jax.Array, filled: jax.Array, prioritization: str, temperature: float) -> jax.Array:
    """``P_S`` over the buffer (zeros on empty slots)."""
    if prioritization not in PRIORITIZATIONS:
        raise ValueError(f"prioritization must be one of {PRIORITIZATIONS}, got {prioritization!r}")
    if temperature <= 0:
        raise ValueError(f"PLR temperature must be > 0, got {temperature}")
    if prioritization == "rank":
        # empty slots sort last; stable argsort breaks ties by slot order
        keyed = jnp.where(filled, scores, -jnp.inf)
        order = jnp.argsort(-keyed, stable=True)
        ranks = jnp.empty_like(scores).at[order].set(jnp.arange(1, scores.shape[0] + 1, dtype=jnp.float32))
        h = (1.0 / ranks) ** (1.0 / temperature)
    else:
        h = jnp.maximum(scores, 0.0) ** (1.0 / temperature)
    return _normalize(h, filled)


def staleness_weights(timestamps: jax.Array, filled: jax.Array, episode_count: jax.Array) -> jax.Array:
    """``P_C`` over the buffer (zeros on empty slots)."""
    staleness = (episode_count - timestamps).astype(jnp.float32)
    return _normalize(jnp.maximum(staleness, 0.0), filled)


def replay_weights(
    buffer: LevelBuffer, prioritization: str = "rank", temperature: float = 1.0, staleness_coef: float = 0.0
) -> jax.Array:
    """``P = (1 - rho) P_S + rho P_C`` over the buffer."""
    p_s = score_weights(buffer.scores, buffer.filled, prioritization, temperature)
    p_c = staleness_weights(buffer.timestamps, buffer.filled, buffer.episode_count)
    return (1.0 - staleness_coef) * p_s + staleness_coef * p_c


def find(buffer: LevelBuffer, level: Any) -> tuple[jax.Array, jax.Array]:
    """``(found, slot)`` of a filled slot holding exactly ``level``."""
    equal = jnp.ones(buffer.capacity, bool)
    for stored, x in zip(jax.tree.leaves(buffer.levels), jax.tree.leaves(level)):
        same = stored == jnp.asarray(x)[None]
        equal &= jnp.all(same.reshape(buffer.capacity, -1), axis=1)
    equal &= buffer.filled
    return jnp.any(equal), jnp.argmax(equal)


def _write(buffer: LevelBuffer, slot, level, score, max_return) -> LevelBuffer:
    return buffer.replace(
        levels=jax.tree.map(lambda b, x: b.at[slot].set(x), buffer.levels, level),
        scores=buffer.scores.at[slot].set(score),
        timestamps=buffer.timestamps.at[slot].set(buffer.episode_count),
        filled=buffer.filled.at[slot].set(True),
        max_returns=buffer.max_returns.at[slot].set(max_return),
    )


def insert(
    buffer: LevelBuffer, level: Any, score: jax.Array, max_return: jax.Array = -jnp.inf, duplicate_check: bool = False
) -> tuple[LevelBuffer, jax.Array]:
    """Offer one level; returns the new buffer and the slot used (-1 if rejected)."""
    score = jnp.asarray(score, jnp.float32)
    max_return = jnp.asarray(max_return, jnp.float32)
    found, found_slot = find(buffer, level) if duplicate_check else (jnp.array(False), jnp.array(0))
    empty_slot = jnp.argmin(buffer.filled)  # first False
    has_empty = ~jnp.all(buffer.filled)
    worst_slot = jnp.argmin(jnp.where(buffer.filled, buffer.scores, jnp.inf))
    beats_worst = score > buffer.scores[worst_slot]

    accept = found | has_empty | beats_worst
    slot = jnp.where(found, found_slot, jnp.where(has_empty, empty_slot, worst_slot))
    kept_max = jnp.where(found, jnp.maximum(buffer.max_returns[found_slot], max_return), max_return)
    written = _write(buffer, slot, level, score, kept_max)
    new = jax.tree.map(lambda a, b: jnp.where(accept, a, b), written, buffer)
    return new, jnp.where(accept, slot, -1)


def insert_batch(
    buffer: LevelBuffer,
    levels: Any,
    scores: jax.Array,
    mask: jax.Array,
    max_returns: jax.Array | None = None,
    duplicate_check: bool = False,
) -> tuple[LevelBuffer, jax.Array]:
    """Offer a batch in order (later entries see earlier insertions); masked entries are skipped."""
    scores = jnp.asarray(scores, jnp.float32)
    if max_returns is None:
        max_returns = jnp.full_like(scores, -jnp.inf)

    def one(buf, entry):
        level, score, max_return, use = entry
        new, slot = insert(buf, level, score, max_return, duplicate_check)
        new = jax.tree.map(lambda a, b: jnp.where(use, a, b), new, buf)
        return new, jnp.where(use, slot, -1)

    return jax.lax.scan(one, buffer, (levels, scores, jnp.asarray(max_returns, jnp.float32), jnp.asarray(mask)))


def update_scores(
    buffer: LevelBuffer,
    slots: jax.Array,
    scores: jax.Array,
    mask: jax.Array,
    max_returns: jax.Array | None = None,
) -> LevelBuffer:
    """Overwrite the scores of replayed slots; ``R_max`` keeps the best return seen."""
    slots = jnp.where(mask, slots, buffer.capacity)  # out of range -> dropped
    new_scores = buffer.scores.at[slots].set(jnp.asarray(scores, jnp.float32), mode="drop")
    new_max = buffer.max_returns
    if max_returns is not None:
        new_max = new_max.at[slots].max(jnp.asarray(max_returns, jnp.float32), mode="drop")
    return buffer.replace(scores=new_scores, max_returns=new_max)


def sample_replay(
    buffer: LevelBuffer,
    key: jax.Array,
    n: int,
    prioritization: str = "rank",
    temperature: float = 1.0,
    staleness_coef: float = 0.0,
) -> tuple[LevelBuffer, jax.Array, Any]:
    """Draw ``n`` slots from ``P`` (with replacement) and mark them visited.

    The episode count advances by ``n`` (one episode per level) and the drawn
    slots get that count as timestamp, so their staleness is 0.
    """
    p = replay_weights(buffer, prioritization, temperature, staleness_coef)
    slots = jax.random.choice(key, buffer.capacity, (n,), p=p)
    count = buffer.episode_count + n
    buffer = buffer.replace(episode_count=count, timestamps=buffer.timestamps.at[slots].set(count))
    return buffer, slots, jax.tree.map(lambda x: x[slots], buffer.levels)


def advance(buffer: LevelBuffer, n: int) -> LevelBuffer:
    """Count ``n`` episodes played on new (non-replayed) levels."""
    return buffer.replace(episode_count=buffer.episode_count + n)
