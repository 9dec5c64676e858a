"""Loss-side methods: L2, L2-init, EWC, replay and A-GEM, as gradient transformations before Adam.

Their terms enter as optimizer transforms (:mod:`metarl.continual.regularizers`,
:mod:`metarl.continual.replay`) whose state holds the anchor / buffer, so a
task switch moves it without recompiling. They act after PPO's global-norm
clip, so their gradient is not clipped with PPO's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from metarl.continual import regularizers as R
from metarl.continual import replay as RP
from metarl.continual.agem import agem_projection
from metarl.continual.method_base import Method, TaskSwitch, register


class _AnchorPenalty(Method):
    """``(c/2) Σ w (θ − a)²`` with anchor, weight and coefficient in the optimizer state."""

    def transforms(self, ctx):
        return [R.anchor_penalty()]


@register
class L2(_AnchorPenalty):
    """``λ‖θ‖²``: anchor 0."""

    name = "l2"

    def init(self, ctx, state):
        zeros = jax.tree.map(jnp.zeros_like, state.params)
        return state.replace(opt_state=R.set_anchor(state.opt_state, anchor=zeros, coef=2 * self.cfg.l2_coef)), None


@register
class L2Init(_AnchorPenalty):
    """``λ‖θ − θ₀‖²``: anchor at the initial weights."""

    name = "l2_init"

    def init(self, ctx, state):
        opt_state = R.set_anchor(state.opt_state, anchor=state.params, coef=2 * self.cfg.l2_init_coef)
        return state.replace(opt_state=opt_state), None


@register
class EWC(_AnchorPenalty):
    """At each task end: anchor at the weights, importance = diagonal Fisher on recent states."""

    name = "ewc"

    def on_task_switch(self, ctx, state, method_state, switch: TaskSwitch):
        cfg = self.cfg
        fisher = R.diagonal_fisher(switch.key, state.params, switch.recent_obs, ctx.agent_cfg.activation, ctx.spec.continuous)

        def anchor(opt_state):
            old = R.find_anchor(opt_state)
            weight = jax.tree.map(jnp.add, old.weight, fisher) if cfg.ewc_accumulate else fisher
            # before the first switch the weight is the inert init (ones, coef 0): start from the Fisher alone
            weight = jax.tree.map(lambda w, f: jnp.where(old.coef > 0, w, f), weight, fisher)
            return R.set_anchor(opt_state, anchor=state.params, weight=weight, coef=cfg.ewc_coef)

        opt_state = jax.lax.cond(switch.happened, anchor, lambda o: o, state.opt_state)
        return state.replace(opt_state=opt_state), method_state, jnp.asarray(switch.happened, jnp.float32)


class _EpisodicMemory(Method):
    """Fills the replay buffers in the optimizer state at each task end with that task's recent states
    and the policy outputs and values the agent has for them."""

    def check_agent(self, agent_cfg):
        if agent_cfg.normalize_obs:
            raise ValueError(f"method {self.name} stores raw observations; set agent.normalize_obs=false")

    def on_task_switch(self, ctx, state, method_state, switch: TaskSwitch):
        n = min(ctx.replay_per_task, switch.recent_obs.shape[0])
        obs = switch.recent_obs[-n:]
        out, value = RP.policy_targets(state.params, obs, ctx.agent_cfg.activation)
        added = RP.add_to_replay(state.opt_state, switch.key, obs, out, value, switch.finished_task)
        opt_state = jax.tree.map(lambda a, b: jnp.where(switch.happened, a, b), added, state.opt_state)
        return state.replace(opt_state=opt_state), method_state, jnp.asarray(switch.happened, jnp.float32)


@register
class Replay(_EpisodicMemory):
    """Behaviour cloning on a reservoir of earlier tasks' states (filled at each task end)."""

    name = "replay"

    def transforms(self, ctx):
        cfg, spec = self.cfg, ctx.spec
        return [RP.replay_cloning(cfg.replay_capacity, spec.obs_dim, spec.action_dim, cfg.replay_batch, cfg.replay_coef,
                                  ctx.agent_cfg.activation, spec.continuous)]


@register
class AGEM(_EpisodicMemory):
    """A-GEM: gradients projected so as not to raise the cloning loss on earlier tasks' memory."""

    name = "agem"

    def transforms(self, ctx):
        cfg, spec = self.cfg, ctx.spec
        return [agem_projection(cfg.agem_capacity, spec.obs_dim, spec.action_dim, cfg.agem_batch,
                                ctx.agent_cfg.activation, spec.continuous)]
