"""Learned Policy Gradient (LPG / TA-LPG): the rule, its inner agents, A2C and lifetimes.

    rule = LPGRule(LPGConfig(time_aware=True))          # name "ta_lpg"
    meta_params = rule.init(key)
    train = make_lpg_lifetime(AgentConfig(), env, rule)  # jitted, num_updates static
    result = train(key, meta_params, level_params, num_updates=250, lifetime=120)
    a2c = make_a2c_lifetime(AgentConfig(), env)
    baseline = a2c(key, level_params, num_updates=250)

    learner = make_meta_gradient_step(AgentConfig(), env, rule)   # K=5, clip 0.5 + Adam 1e-4
    meta_params, metrics = run_meta_gradient(key, AgentConfig(), env, rule, meta_params, levels, num_steps=100)

    save_rule(path, rule, AgentConfig(), meta_params)   # learned_rule.npz; load_rule(path) reads it back

    # a full meta-gradient run (population of agents replaced on new levels, DR / GROOVE / PLR levels,
    # TA-LPG lifetimes, checkpoints, learned_rule.npz for metarl.eval.lpg; metarl.meta.lpg_meta_gradient):
    metarl-meta-train objective=lpg_mg objective.level=small objective.meta_steps=1500 objective.teacher=dr

Interface notes (additions to the fixed interface, no changes):
* ``train`` also takes ``optimizer_params=`` (learned optimizers; ``None`` uses
  ``optimizer.init``), and ``make_a2c_lifetime``'s ``train`` takes ``lifetime=``
  too (same masking as LPG).
* ``AgentConfig`` has one extra field, ``mlp_lr`` (Adam lr for ``kind="mlp"``, 1e-3).
* ``make_lpg_lifetime`` returns a ``jax.jit`` function; for ``vmap`` bind the
  static argument first: ``jax.vmap(functools.partial(train, num_updates=n))``; pass a
  batched ``lifetime`` by keyword, e.g.
  ``jax.vmap(lambda k, m, l, n: train(k, m, l, num_updates=N, lifetime=n))``.
* Tabular agents are tables ``kernel [obs_dim, out]`` (last row: the time
  entry) but are applied to ``agents.encode_tabular(obs)`` = ``[index, time]``
  (a row gather; ``LPGLifetime.observe`` does it). For DP evaluation the
  policy table is ``softmax(kernel[:-1] + 0.001 * t * kernel[-1])`` at step t
  (time-dependent through the observation's time entry).
* ``LPGRule.policy_gradient_params(key)``: hand-set GRU meta-parameters that
  reproduce REINFORCE with a discounted return-to-go (a reference rule).
* ``python scripts/bench_lpg.py``: lifetime throughput (steps/s).
"""

from metarl.lpg.a2c import A2CLifetime, make_a2c_lifetime
from metarl.lpg.agents import AgentConfig, lpg_agent_loss
from metarl.lpg.artifact import load_rule, save_rule
from metarl.lpg.lifetime import LifetimeResult, LPGLifetime, make_lpg_lifetime
from metarl.lpg.meta_gradient import MetaGradient, MetaGradientState, make_meta_gradient_step, run_meta_gradient
from metarl.lpg.rule import LPGConfig, LPGInputs, LPGRule

__all__ = [
    "A2CLifetime",
    "AgentConfig",
    "LPGConfig",
    "LPGInputs",
    "LPGLifetime",
    "LPGRule",
    "LifetimeResult",
    "MetaGradient",
    "MetaGradientState",
    "load_rule",
    "lpg_agent_loss",
    "make_a2c_lifetime",
    "make_lpg_lifetime",
    "make_meta_gradient_step",
    "run_meta_gradient",
    "save_rule",
]
