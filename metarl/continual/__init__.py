"""Continual RL: task streams, Continual World metrics, plasticity diagnostics,
interventions and the runner behind ``metarl-continual``.

* :mod:`.streams` — versioned task streams (``CGW10-v1``, ``CCartPole5-v1``, ...)
* :mod:`.metrics` — average performance, forgetting, forward transfer, CIs
* :mod:`.plasticity` — dormant fraction, effective/stable rank, weight stats
* :mod:`.interventions` — reset, shrink-and-perturb, ReDo, continual backprop
* :mod:`.regularizers`, :mod:`.replay` — L2, L2-init, EWC, replay as optimizer transforms
* :mod:`.runner`, :mod:`.cli` — PPO across a stream without recompiling
"""
