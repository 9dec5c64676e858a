"""ALP-GMM (Portelas et al., *Teacher algorithms for curriculum learning of
Deep RL in continuously parameterized environments*, 2019), entirely in JAX.

Checked against flowersteam/teachDeepRL and TeachMyAgent's ``alp_gmm.py``:

* Tasks live in the TaskSpace's unit box (``normalize`` of ``to_vector``).
  Returns are rescaled to [0, 1] with ``return_range`` when given.
* ALP of a new (task, return) = ``|R - R_nn|`` with ``R_nn`` the return of
  the nearest earlier task (Euclidean, brute force over the history);
  0 while the history holds at most 5 pairs.
* Every ``fit_rate`` new pairs (once ``fit_rate`` pairs exist), GMMs with
  ``k`` in ``ks`` (default 2..10) are fitted on ``[task, ALP]`` of the last
  ``fit_rate`` pairs and the lowest AIC (or BIC) is kept.
* Sampling: uniform over the TaskSpace during the bootstrap (before the
  first fit) and with probability ``random_task_ratio``; otherwise pick a
  Gaussian with probability ∝ its mean ALP (uniform if all are 0), sample
  it, drop the ALP coordinate and clip to the box.
  Defaults: original paper (fit_rate 250, random_task_ratio 0.2, AIC);
  TeachMyAgent used 150 / 0.05.

JAX structure (documented choice: **EM runs inside jit**): the history is a
ring buffer of ``history_size`` pairs (teachDeepRL keeps every pair for the
nearest-neighbour search; its ``alp_buffer_size`` 500 only batches kd-tree
rebuilds), the mixture has ``max(ks)`` masked component slots, EM runs a
fixed ``em_iters`` iterations for every ``k`` (vmapped) and the refit sits
behind ``lax.cond``, so ``update`` never leaves the device. The refit key
comes from a PRNG key kept in the state (``update`` receives none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from curricula import gmm as gmm_lib
from curricula.base import Feedback
from curricula.simple import TaskSpaceTeacher

MIN_HISTORY_FOR_ALP = 5  # ALP is 0 until more than 5 pairs exist


@struct.dataclass
class ALPGMMState:
    tasks: jax.Array  # [H, d] unit-box task vectors
    returns: jax.Array  # [H] (normalised) returns
    alps: jax.Array  # [H]
    count: jax.Array  # [] pairs seen in total
    gmm: gmm_lib.GMM
    has_gmm: jax.Array  # [] bool, False during the bootstrap
    rng: jax.Array  # PRNG key for EM initialisation


class ALPGMM(TaskSpaceTeacher):
    def __init__(
        self,
        fit_rate: int = 250,
        random_task_ratio: float = 0.2,
        ks: Sequence[int] = tuple(range(2, 11)),
        criterion: str = "aic",
        history_size: int = 2000,
        em_iters: int = 50,
        return_range: tuple[float, float] | None = None,
        task_space: Any = None,
    ):
        super().__init__(task_space)
        if fit_rate < 2 or history_size < fit_rate:
            raise ValueError(f"ALPGMM needs fit_rate >= 2 and history_size >= fit_rate, got {fit_rate}, {history_size}")
        if not 0.0 <= random_task_ratio <= 1.0:
            raise ValueError(f"random_task_ratio must lie in [0, 1], got {random_task_ratio}")
        if criterion not in gmm_lib.CRITERIA:
            raise ValueError(f"criterion must be one of {gmm_lib.CRITERIA}, got {criterion!r}")
        if return_range is not None and not return_range[1] > return_range[0]:
            raise ValueError(f"return_range must be (low, high) with high > low, got {return_range}")
        self.fit_rate, self.random_task_ratio = fit_rate, random_task_ratio
        self.ks, self.criterion = tuple(int(k) for k in ks), criterion
        self.history_size, self.em_iters, self.return_range = history_size, em_iters, return_range

    def init(self, key: jax.Array, task_space: Any = None) -> ALPGMMState:
        self._set_task_space(task_space)
        d, k, h = self.task_space.dim, max(self.ks), self.history_size
        empty = gmm_lib.GMM(
            means=jnp.zeros((k, d + 1), jnp.float32),
            covs=jnp.broadcast_to(jnp.eye(d + 1, dtype=jnp.float32), (k, d + 1, d + 1)),
            log_weights=jnp.full((k,), -jnp.inf, jnp.float32).at[0].set(0.0),
        )
        return ALPGMMState(
            tasks=jnp.zeros((h, d), jnp.float32),
            returns=jnp.zeros(h, jnp.float32),
            alps=jnp.zeros(h, jnp.float32),
            count=jnp.zeros((), jnp.int32),
            gmm=empty,
            has_gmm=jnp.array(False),
            rng=key,
        )

    # --- sampling ---------------------------------------------------------
    def sample(self, state: ALPGMMState, key: jax.Array, n: int) -> tuple[ALPGMMState, Any]:
        key_rand, key_gmm, key_pick = jax.random.split(key, 3)
        uniform = self.task_space.sample_batch(key_rand, n)
        from_gmm = jax.vmap(self._sample_gmm, in_axes=(None, 0, 0))(
            state.gmm, jax.random.split(key_gmm, n), uniform
        )
        use_random = (~state.has_gmm) | (jax.random.uniform(key_pick, (n,)) < self.random_task_ratio)
        tasks = jax.tree.map(
            lambda r, g: jnp.where(use_random.reshape((n,) + (1,) * (r.ndim - 1)), r, g), uniform, from_gmm
        )
        return state, tasks

    def component_probabilities(self, gmm: gmm_lib.GMM) -> jax.Array:
        """Gaussians are picked ∝ their mean ALP (last mean coordinate); uniform if all are 0."""
        alp = jnp.where(gmm.active, jnp.maximum(gmm.means[:, -1], 0.0), 0.0)
        total = jnp.sum(alp)
        uniform = gmm.active / jnp.sum(gmm.active)
        return jnp.where(total > 0, alp / jnp.where(total > 0, total, 1.0), uniform)

    def _sample_gmm(self, gmm: gmm_lib.GMM, key: jax.Array, base: Any) -> Any:
        key_c, key_z = jax.random.split(key)
        c = jax.random.choice(key_c, gmm.means.shape[0], p=self.component_probabilities(gmm))
        chol = gmm_lib.cholesky_unrolled(gmm.covs[c])
        z = gmm.means[c] + chol @ jax.random.normal(key_z, (gmm.means.shape[1],))
        unit = jnp.clip(z[:-1], 0.0, 1.0)
        return self.task_space.from_vector(self.task_space.denormalize(unit), base)

    # --- update -------------------------------------------------------------
    def update(self, state: ALPGMMState, tasks: Any, feedback: Feedback) -> ALPGMMState:
        vectors = self.task_space.normalize(jax.vmap(self.task_space.to_vector)(tasks)).astype(jnp.float32)
        returns = jnp.asarray(feedback.returns, jnp.float32)
        if self.return_range is not None:
            lo, hi = self.return_range
            returns = jnp.clip((returns - lo) / (hi - lo), 0.0, 1.0)
        before = state.count
        state, _ = jax.lax.scan(self._add_pair, state, (vectors, returns, jnp.asarray(feedback.mask, bool)))
        crossed = (state.count // self.fit_rate) > (before // self.fit_rate)
        return jax.lax.cond(crossed & (state.count >= self.fit_rate), self._refit, lambda s: s, state)

    def alp_of(self, state: ALPGMMState, task: jax.Array, ret: jax.Array) -> jax.Array:
        """ALP of a new pair against the nearest stored task (0 with <= 5 stored pairs)."""
        h = self.history_size
        filled = jnp.arange(h) < jnp.minimum(state.count, h)
        d2 = jnp.where(filled, jnp.sum((state.tasks - task) ** 2, axis=1), jnp.inf)
        nearest = jnp.argmin(d2)
        return jnp.where(state.count > MIN_HISTORY_FOR_ALP, jnp.abs(ret - state.returns[nearest]), 0.0)

    def _add_pair(self, state: ALPGMMState, entry):
        task, ret, use = entry
        slot = state.count % self.history_size
        alp = self.alp_of(state, task, ret)
        new = state.replace(
            tasks=state.tasks.at[slot].set(task),
            returns=state.returns.at[slot].set(ret),
            alps=state.alps.at[slot].set(alp),
            count=state.count + 1,
        )
        return jax.tree.map(lambda a, b: jnp.where(use, a, b), new, state), alp

    def recent_mask(self, count: jax.Array) -> jax.Array:
        """Ring-buffer slots holding the last ``fit_rate`` pairs."""
        h = self.history_size
        idx = jnp.arange(h)
        seq = count - 1 - jnp.mod(count - 1 - idx, h)  # sequence number stored in each slot
        return (seq >= count - self.fit_rate) & (seq >= 0)

    def _refit(self, state: ALPGMMState) -> ALPGMMState:
        rng, key = jax.random.split(state.rng)
        data = jnp.concatenate([state.tasks, state.alps[:, None]], axis=1)
        gmm, _ = gmm_lib.select(key, data, self.recent_mask(state.count), self.ks, self.criterion, self.em_iters)
        return state.replace(gmm=gmm, has_gmm=jnp.array(True), rng=rng)
