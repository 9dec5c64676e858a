"""Method hooks of the SAC continual runner (:mod:`metarl.continual.sac_runner`).

A hook object carries one method's state (``mstate``, a pytree in the scan's
carry) and is called at fixed points of the jitted stream:

* ``leave_task`` — at a switch, before the buffer and optimizers reset (the
  finished task's data is still in the buffer);
* ``start_task`` — after the switch's resets;
* ``end_task`` — at the plan's ``prune`` chunk (PackNet);
* ``actor_for`` — the actor that evaluates the task at a stream position.

``memory`` (A-GEM) gives the agent an episodic memory and a gradient projection
(:class:`metarl.agents.sac.MemoryProjection`); ``after_learn`` (ReDo, continual
backprop) rewrites hidden units after each update's gradient steps
(:class:`metarl.agents.sac.AfterLearn`).

``actor_pre_transform`` is chained before the actor's Adam (a penalty's
gradient), ``actor_transform`` after it (PackNet's update mask).

Regularisers follow Continual World (``methods/regularization.py`` and
``ewc.py`` of its code): at each switch after the first task the anchor θ*
becomes the current actor and the importance of the finished task is *added*
to the earlier ones (``ewc_accumulate``; L2 always adds ones, so its weight is
the number of finished tasks); the penalty ``λ Σ w (θ − θ*)²`` covers the
actor's shared layers — the per-task heads are excluded under multi-head —
and, as CW's default, not the critic.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from metarl.agents import replay
from metarl.agents.sac import MemoryProjection
from metarl.agents.sac_networks import actor_mean_log_std, unit_activations
from metarl.continual import agem
from metarl.continual import interventions as I
from metarl.continual import packnet as PN
from metarl.continual import regularizers as R
from metarl.continual.plasticity import dormant_scores

FISHER_BATCHES, FISHER_BATCH_SIZE = 10, 256  # CW: 10 batches of 256 from the buffer
_FISHER_CHUNK = 16  # samples per vmapped Jacobian (bounds memory: one Jacobian is outputs x params)


class FinetuneHooks:
    """Fine-tuning: the method hooks of the SAC runner do nothing."""

    name = "finetune"
    retrain_fraction = 0.0
    reservoir = False  # the agent's buffer: the newest transitions (False) or a reservoir over the stream (True)

    def actor_pre_transform(self) -> Any:
        return None

    def actor_transform(self) -> Any:
        return None

    def memory(self) -> Any:
        return None

    def after_learn(self) -> Any:
        return None

    def init(self, state: Any) -> Any:
        return ()

    def leave_task(self, state: Any, mstate: Any, position: jax.Array) -> tuple[Any, Any]:
        return state, mstate

    def start_task(self, state: Any, mstate: Any, position: jax.Array) -> tuple[Any, Any]:
        return state, mstate

    def end_task(self, state: Any, mstate: Any, position: jax.Array) -> tuple[Any, Any]:
        return state, mstate

    def actor_for(self, state: Any, mstate: Any, position: jax.Array, current: jax.Array) -> Any:
        return state.params["actor"]


class PackNetHooks(FinetuneHooks):
    """PackNet on the actor (see :mod:`metarl.continual.packnet`); ``n_positions`` tasks in the stream."""

    name = "packnet"

    def __init__(self, retrain_fraction: float, n_positions: int):
        self.retrain_fraction, self.n_positions = retrain_fraction, n_positions

    def actor_transform(self) -> Any:
        return PN.masked_updates()

    def init(self, state: Any) -> Any:
        return PN.init_owners(state.params["actor"])

    def _set_mask(self, state, owners, position, retraining):
        mask = PN.trainable(state.params["actor"], owners, position, jnp.asarray(retraining))
        return state.replace(opt_state={**state.opt_state, "actor": PN.with_mask(state.opt_state["actor"], mask)})

    def start_task(self, state, owners, position):
        return self._set_mask(state, owners, position, False), owners

    def end_task(self, state, owners, position):
        actor, owners = PN.prune(state.params["actor"], owners, position, PN.keep_fraction(position, self.n_positions))
        state = state.replace(params={**state.params, "actor": actor})
        return self._set_mask(state, owners, position, True), owners

    def actor_for(self, state, owners, position, current):
        return PN.params_for(state.params["actor"], owners, position, current)


def gaussian_fisher(actor: Any, obs: jax.Array, activation: str, heads: int) -> Any:
    """Diagonal Fisher of the actor's pre-tanh Gaussian at ``obs[N, d]`` (N a multiple of 16), Continual World's
    estimate: per state ``Σ_j ((∂μ_j)² + 2 (∂σ_j)²) / (σ_j² + 1e-6)``, clipped from below at 1e-5, averaged over
    states. (tanh is a bijection, so the squashed policy has the same Fisher.)"""

    def outputs(p, o):
        mean, log_std = actor_mean_log_std(p, o[None], activation, heads)
        return mean[0], log_std[0]

    def one_state(o):
        (mean_g, log_std_g), (_, log_std) = jax.jacrev(outputs)(actor, o), outputs(actor, o)
        std = jnp.exp(log_std)
        inv_var = 1.0 / (jnp.square(std) + 1e-6)

        def per_param(gm, gl):
            shape = (-1,) + (1,) * (gm.ndim - 1)
            std_g = std.reshape(shape) * gl  # ∂σ = σ ∂log σ
            f = jnp.sum(inv_var.reshape(shape) * (jnp.square(gm) + 2.0 * jnp.square(std_g)), axis=0)
            return jnp.maximum(f, 1e-5)

        return jax.tree.map(per_param, mean_g, log_std_g)

    chunks = obs.reshape((-1, _FISHER_CHUNK) + obs.shape[1:])

    def add_chunk(total, chunk):
        f = jax.vmap(one_state)(chunk)
        return jax.tree.map(lambda t, x: t + jnp.sum(x, axis=0), total, f), None

    zero = jax.tree.map(jnp.zeros_like, actor)
    total, _ = jax.lax.scan(add_chunk, zero, chunks)
    return jax.tree.map(lambda t: t / obs.shape[0], total)


def shared_only(importance: Any, multi_head: bool) -> Any:
    """Zero importance on the per-task head under multi-head (CW regularises the shared layers only)."""
    if not multi_head:
        return importance
    return {name: jax.tree.map(jnp.zeros_like, layer) if name == "head" else layer
            for name, layer in importance.items()}


class RegularizerHooks(FinetuneHooks):
    """Continual World's L2 (``kind="l2"``, weight 1 per finished task) or EWC (``kind="ewc"``, diagonal Fisher)
    on the actor: ``λ Σ w (θ − θ*)²``, whose gradient ``2λ w (θ − θ*)`` joins the actor's gradient before Adam."""

    def __init__(self, kind: str, coef: float, accumulate: bool, activation: str, heads: int):
        if kind not in ("l2", "ewc"):
            raise ValueError(f"regulariser kind must be 'l2' or 'ewc', got {kind!r}")
        self.name, self.coef, self.accumulate = kind, coef, accumulate or kind == "l2"
        self.activation, self.heads = activation, heads

    def actor_pre_transform(self) -> Any:
        return R.anchor_penalty()

    def init(self, state: Any) -> Any:
        actor = state.params["actor"]
        return {"anchor": actor, "weight": jax.tree.map(jnp.zeros_like, actor), "coef": jnp.zeros((), jnp.float32)}

    def importance(self, state: Any, key: jax.Array) -> Any:
        actor = state.params["actor"]
        if self.name == "l2":
            weight = jax.tree.map(jnp.ones_like, actor)
        else:
            obs = replay.sample(state.buffer, key, FISHER_BATCHES * FISHER_BATCH_SIZE)["obs"]
            weight = gaussian_fisher(actor, obs, self.activation, self.heads)
        return shared_only(weight, self.heads > 0)

    def leave_task(self, state, mstate, position):
        key, k_fisher = jax.random.split(state.key)
        new = self.importance(state, k_fisher)
        weight = jax.tree.map(jnp.add, mstate["weight"], new) if self.accumulate else new
        mstate = {"anchor": state.params["actor"], "weight": weight, "coef": jnp.asarray(2.0 * self.coef, jnp.float32)}
        return state.replace(key=key), mstate

    def start_task(self, state, mstate, position):
        # the switch re-initialised the actor's optimizer, penalty state included; put the method's back
        opt = R.set_anchor(state.opt_state["actor"], mstate["anchor"], mstate["weight"], mstate["coef"])
        return state.replace(opt_state={**state.opt_state, "actor": opt}), mstate


class AGEMHooks(FinetuneHooks):
    """A-GEM as Continual World runs it with SAC: each finished task leaves ``per_task`` transitions drawn from the
    buffer in an episodic memory that never evicts; every gradient step projects the critics' and the actor's
    gradients against their SAC-loss gradients on ``batch_size`` memory transitions
    (:func:`metarl.continual.agem.project`). CW projects the actor and critic gradients as one vector; here each
    network is projected on its own, so neither network's memory loss rises to first order (a stricter constraint
    than the joint one)."""

    name = "agem"

    def __init__(self, per_task: int, batch_size: int, n_positions: int):
        self.per_task, self.batch_size = per_task, batch_size
        self.capacity = per_task * max(1, n_positions - 1)  # the last task never leaves

    def memory(self) -> Any:
        return MemoryProjection(self.capacity, self.batch_size, agem.project)

    def leave_task(self, state, mstate, position):
        key, k_draw = jax.random.split(state.key)
        stored = replay.add(state.opt_state["memory"], replay.sample(state.buffer, k_draw, self.per_task))
        return state.replace(key=key, opt_state={**state.opt_state, "memory": stored}), mstate


class SurgeryHooks(FinetuneHooks):
    """``reset`` (all weights, the last ``reset_last_k`` layers of both networks, or the critic) or
    ``shrink_perturb`` (``θ ← shrink·θ + perturb·θ_fresh``) at every switch after the first; SAC streams fire
    at switches only. ``fresh(key)`` gives newly initialised ``{"actor", "critic"}``. The target critics follow
    the critics, and the Adam moments of rewritten entries are zeroed (the switch already re-initialises the
    optimizers unless ``switch.reset_optimizer=false``)."""

    def __init__(self, kind: str, fresh: Any, which: str = "all", last_k: int = 1, shrink: float = 0.8,
                 perturb: float = 0.01):
        if kind not in ("reset", "shrink_perturb"):
            raise ValueError(f"surgery kind must be 'reset' or 'shrink_perturb', got {kind!r}")
        self.name, self.fresh = kind, fresh
        self.which, self.last_k, self.shrink, self.perturb = which, last_k, shrink, perturb

    def _mask(self, params):
        if self.name == "shrink_perturb" or self.which == "all":
            return I.select_all(params)
        if self.which == "critic":
            return I.select_nets(params, ("critic",))
        return I.select_last_layers(params, self.last_k)

    def _rewrite(self, state):
        key, k_fresh = jax.random.split(state.key)
        fresh = self.fresh(k_fresh)
        mask = self._mask(state.params)
        if self.name == "reset":
            params, _, _ = I.reset(state.params, {}, fresh, mask)
            target = jax.tree.map(jnp.where, mask["critic"], params["critic"], state.target_critic)
        else:
            params, _, _ = I.shrink_perturb(state.params, {}, fresh, self.shrink, self.perturb)
            target = jax.tree.map(lambda t, f: self.shrink * t + self.perturb * f, state.target_critic,
                                  fresh["critic"])
        opt = {**state.opt_state,
               **{net: I.reset_moments(state.opt_state[net], mask[net]) for net in ("actor", "critic")}}
        return state.replace(params=params, target_critic=target, opt_state=opt, key=key)

    def start_task(self, state, mstate, position):
        return jax.lax.cond(position > 0, self._rewrite, lambda s: s, state), mstate


HIDDEN_GAIN = 2.0 ** 0.5  # the orthogonal init's gain on hidden layers (metarl.agents.networks.init_mlp)


def fresh_incoming(key: jax.Array, params: Any) -> dict:
    """New incoming weights for recycled units, ``{net: {hidden_i: {"kernel"}}}`` shaped like ``params``' hidden
    kernels: Gaussian entries with the variance of the orthogonal init's entries, ``gain² / max(fan_in, fan_out)``
    (a tall orthogonal kernel has columns of norm ``gain``, a wide one rows of norm ``gain``). A unit's new column is
    a draw from the init's per-entry distribution, as CBP draws each unit from the init distribution; re-drawing
    whole orthogonal networks (Gram-Schmidt) took 0.34 s per update for CW's 4 x 256 networks on one CPU core."""
    out = {}
    for net in ("actor", "critic"):
        names = I.layer_names(params[net])[:-1]
        keys = jax.random.split(jax.random.fold_in(key, len(out)), len(names))
        out[net] = {}
        for name, k in zip(names, keys):
            shape = params[net][name]["kernel"].shape
            scale = HIDDEN_GAIN / max(shape[-2], shape[-1]) ** 0.5
            out[net][name] = {"kernel": scale * jax.random.normal(k, shape, params[net][name]["kernel"].dtype)}
    return out


class RecycleUnits:
    """ReDo (``kind="redo"``) or continual backprop (``kind="cbp"``) on SAC's actor and both critics, after each
    update's gradient steps (:class:`metarl.agents.sac.AfterLearn`), scored on a batch drawn from the buffer (the
    actor on its observations, the critics on its observation-action pairs).

    * ReDo (Sokar et al. 2023): every ``every`` updates, each hidden unit whose score ``E|h| / mean_layer E|h|`` is
      at most ``tau`` is recycled; each critic of the pair is scored on its own.
    * CBP (Dohare et al. 2024): every update, utilities ``u ← η u + (1 − η) E|h| · mean|w_out|`` and ages; each
      layer replaces ``ρ · #mature`` units (fractions carry over) of lowest utility among those older than
      ``maturity`` (:func:`metarl.continual.interventions.cbp_select`), per critic.

    A recycled unit gets fresh incoming weights (:func:`fresh_incoming`), zero bias and outgoing weights, and zero
    Adam moments. The target critics are left to follow by Polyak averaging (ReDo leaves
    DQN's target network alone). The bookkeeping (CBP's utilities and ages) lives in ``opt_state["after_learn"]``,
    which a task switch keeps."""

    def __init__(self, kind: str, activation: str, heads: int, tau: float = 0.1, every: int = 1,
                 decay: float = 0.99, maturity: int = 100, rate: float = 1e-3):
        if kind not in ("redo", "cbp"):
            raise ValueError(f"unit recycling kind must be 'redo' or 'cbp', got {kind!r}")
        self.kind, self.activation, self.heads = kind, activation, heads
        self.tau, self.every, self.decay, self.maturity, self.rate = tau, every, decay, maturity, rate

    def init(self, params: Any) -> Any:
        if self.kind == "redo":
            return ()
        return {"actor": I.cbp_init({"actor": params["actor"]}, ("actor",)),
                "critic": jax.vmap(lambda c: I.cbp_init({"critic": c}, ("critic",)))(params["critic"])}

    def select(self, mstate: Any, params: Any, hiddens: dict, update_step: jax.Array) -> tuple[Any, dict]:
        """``(new bookkeeping, {net: [bool [..., width] per hidden layer]})``: the units to recycle now."""
        if self.kind == "redo":
            fire = update_step % self.every == 0
            return mstate, {"actor": [(dormant_scores(h) <= self.tau) & fire for h in hiddens["actor"]],
                            "critic": [(jax.vmap(dormant_scores)(h) <= self.tau) & fire for h in hiddens["critic"]]}

        def one(state, net, p, h):
            return I.cbp_select(state, {net: p}, {net: h}, self.decay, self.maturity, self.rate)[:2]

        actor_state, actor_units = one(mstate["actor"], "actor", params["actor"], hiddens["actor"])
        critic_state, critic_units = jax.vmap(lambda st, p, h: one(st, "critic", p, h))(
            mstate["critic"], params["critic"], hiddens["critic"])
        return {"actor": actor_state, "critic": critic_state}, {**actor_units, **critic_units}

    def apply(self, learner: tuple, batch: dict, key: jax.Array, update_step: jax.Array) -> tuple[tuple, jax.Array]:
        params, target, log_alpha, opt_state = learner
        hiddens = unit_activations(params, batch["obs"], batch["action"], self.activation, self.heads)
        mstate, units = self.select(opt_state["after_learn"], params, hiddens, update_step)
        count = sum(jnp.sum(m) for m in jax.tree.leaves(units)).astype(jnp.float32)

        def recycle(params_opt):
            params, opt = params_opt
            params, touched = I.recycle_params(params, fresh_incoming(key, params), units)
            return params, {**opt, **{net: I.reset_moments(opt[net], touched[net]) for net in ("actor", "critic")}}

        # under a vmap over seeds this cond runs both branches: the draw must stay cheap (fresh_incoming)
        params, opt_state = jax.lax.cond(count > 0, recycle, lambda po: po, (params, opt_state))
        return (params, target, log_alpha, {**opt_state, "after_learn": mstate}), count


class ReplayHooks(FinetuneHooks):
    """``method=replay`` on SAC streams: the off-policy learner replays earlier tasks from its own buffer. The buffer
    is kept across switches and filled as a reservoir, so it always holds a uniform sample of the whole stream so far
    (Continual World's reservoir-sampling replay; with a buffer as large as the stream it is its "perfect memory").
    Multi-head SAC trains each old transition through its own task's head."""

    name = "replay"
    reservoir = True


class UnitRecyclingHooks(FinetuneHooks):
    """``method=redo`` / ``method=cbp`` on SAC streams: the agent runs :class:`RecycleUnits` after every update;
    nothing happens at switches."""

    def __init__(self, recycler: RecycleUnits):
        self.name, self.recycler = recycler.kind, recycler

    def after_learn(self) -> Any:
        return self.recycler
