"""Extension points of :class:`metarl.agents.ppo.PPO` for methods built on top of it
(continual-learning interventions, regularisers, diagnostics).

Subclass :class:`PPOHooks` and override what you need; the defaults do nothing,
and ``PPO(..., hooks=None)`` compiles exactly the plain program.

* ``init(state, key) -> state`` — once, at the end of ``PPO.init``: set
  ``state.hook_state`` (any pytree carried through training) and, if needed,
  adjust params or optimizer state.
* ``loss_extra(params, batch, hook_state) -> scalar | None`` — added to every
  minibatch loss, so its gradient is clipped together with PPO's; ``None``
  adds nothing. ``batch`` is a :class:`metarl.agents.ppo_loss.Batch`.
* ``after_update(state) -> (state, metrics)`` — after every update (rollout,
  epochs, teacher feedback); ``metrics`` (scalars) join the update's metrics.
"""

from __future__ import annotations

from typing import Any

import jax


class PPOHooks:
    def init(self, state: Any, key: jax.Array) -> Any:
        return state

    def loss_extra(self, params: Any, batch: Any, hook_state: Any) -> jax.Array | None:
        return None

    def after_update(self, state: Any) -> tuple[Any, dict[str, jax.Array]]:
        return state, {}
