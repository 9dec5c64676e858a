"""Continual RL: task streams, Continual World metrics, plasticity diagnostics,
methods and the runner behind the ``continual`` job (``metarl-continual``).

* :mod:`.streams` — versioned task streams (``CGW10-v1``, ``CCartPole5-v1``, ...)
* :mod:`.metrics` — average performance, forgetting, forward transfer (CIs: :mod:`metarl.stats`)
* :mod:`.plasticity` — dormant fraction, effective/stable rank, weight stats
* :mod:`.methods` — ``MethodConfig`` and ``get_method(name, **settings)``: methods by name
* :mod:`.method_base` — the ``Method`` hooks and the registry (``@register``)
* :mod:`.surgery_methods` — reset, shrink-and-perturb, ReDo, continual backprop
* :mod:`.loss_methods` — L2, L2-init, EWC, replay (optimizer transforms)
* :mod:`.interventions`, :mod:`.regularizers`, :mod:`.replay` — the surgery and transforms they use
* :mod:`.agent_hooks` — a method plugged into PPO's hooks
* :mod:`.runner` — PPO across a stream without recompiling
"""
