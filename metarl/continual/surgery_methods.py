"""Methods that operate on the weights: reset, shrink-and-perturb, ReDo, continual backprop.

The surgery itself is in :mod:`metarl.continual.interventions`; these classes
decide *when* it happens (task switches, every N updates) and on which data.
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp

from metarl.continual import interventions as I
from metarl.continual.method_base import Method, MethodContext, TaskSwitch, UpdateStep, quiet_log, register


class _Reinitialise(Method, abc.ABC):
    """Fires at task switches (``at_switch``) and/or every ``every_updates`` updates."""

    @abc.abstractmethod
    def rewrite(self, params: Any, opt_state: Any, fresh: Any) -> tuple[Any, Any]:
        """The reinitialised ``(params, opt_state)``, given a fresh draw of the networks."""

    @classmethod
    def validate(cls, cfg) -> None:
        if not cfg.at_switch and cfg.every_updates < 1:
            raise ValueError(f"method {cls.name!r} never fires: set at_switch or every_updates")

    def _fire_if(self, ctx: MethodContext, state: Any, key: jax.Array, when: jax.Array) -> tuple[Any, jax.Array]:
        def apply(params_opt):
            return self.rewrite(*params_opt, ctx.fresh(key))

        params, opt = jax.lax.cond(when, apply, lambda po: po, (state.params, state.opt_state))
        return state.replace(params=params, opt_state=opt), when.astype(jnp.float32)

    def after_update(self, ctx, state, method_state, step: UpdateStep):
        if self.cfg.every_updates <= 0:
            return state, method_state, quiet_log()
        state, fired = self._fire_if(ctx, state, step.key, step.index % self.cfg.every_updates == 0)
        return state, method_state, {**quiet_log(), "fired": fired}

    def on_task_switch(self, ctx, state, method_state, switch: TaskSwitch):
        if not self.cfg.at_switch:
            return super().on_task_switch(ctx, state, method_state, switch)
        state, fired = self._fire_if(ctx, state, switch.key, jnp.asarray(switch.happened))
        return state, method_state, fired


@register
class Reset(_Reinitialise):
    """Re-initialise all weights, the last ``reset_last_k`` layers, or the critic."""

    name = "reset"

    def rewrite(self, params, opt_state, fresh):
        cfg = self.cfg
        masks = {
            "all": lambda: I.select_all(params),
            "last": lambda: I.select_last_layers(params, cfg.reset_last_k),
            "critic": lambda: I.select_nets(params, ("critic",)),
        }
        params, opt_state, _ = I.reset(params, opt_state, fresh, masks[cfg.reset_which]())
        return params, opt_state


@register
class ShrinkPerturb(_Reinitialise):
    """``θ ← shrink·θ + perturb·θ_fresh``."""

    name = "shrink_perturb"

    def rewrite(self, params, opt_state, fresh):
        params, opt_state, _ = I.shrink_perturb(params, opt_state, fresh, self.cfg.shrink, self.cfg.perturb)
        return params, opt_state


@register
class ReDo(Method):
    """Recycle τ-dormant units every ``redo_every_updates`` updates (on recent observations)."""

    name = "redo"

    @classmethod
    def validate(cls, cfg) -> None:
        if cfg.redo_every_updates < 1:
            raise ValueError("method.redo_every_updates must be >= 1 for ReDo")

    def after_update(self, ctx, state, method_state, step: UpdateStep):
        def recycle(params_opt):
            params, opt = params_opt
            hiddens = ctx.hiddens(params, step.recent_obs)
            params, opt, info = I.redo(params, opt, ctx.fresh(step.key), hiddens, self.cfg.redo_tau)
            return params, opt, info["redo_recycled"]

        fire = step.index % self.cfg.redo_every_updates == 0
        skip = lambda po: (*po, jnp.zeros((), jnp.float32))  # noqa: E731
        params, opt, units = jax.lax.cond(fire, recycle, skip, (state.params, state.opt_state))
        return state.replace(params=params, opt_state=opt), method_state, {"fired": fire.astype(jnp.float32), "units": units}


@register
class ContinualBackprop(Method):
    """Generate-and-test every update on the current observations (LoP's CBP)."""

    name = "cbp"

    def init(self, ctx, state):
        return state, I.cbp_init(state.params)

    def after_update(self, ctx, state, method_state, step: UpdateStep):
        cfg = self.cfg
        hiddens = ctx.hiddens(state.params, ctx.observe(state, state.obs))
        method_state, params, opt, info = I.cbp_step(
            method_state, state.params, state.opt_state, ctx.fresh(step.key), hiddens,
            cfg.cbp_decay, cfg.cbp_maturity, cfg.cbp_replacement_rate,
        )
        replaced = info["cbp_replaced"]
        log = {"fired": (replaced > 0).astype(jnp.float32), "units": replaced}
        return state.replace(params=params, opt_state=opt), method_state, log
