"""Reset-free (autonomous) RL: EARL's protocol and RISC's intelligent switching.

* :mod:`switching` and :mod:`targets` — RISC's switching rule and the TD / success-critic
  targets, small pure functions tested against hand-computed values;
* :mod:`success_critic` — RISC's success critic ``P_succ(s, g)`` for a discrete-action agent;
* :mod:`config` — the protocol and algorithm settings;
* :mod:`runner` — naive, forward-backward and RISC agents on a :class:`envs.reset_free.ResetFree`
  env, one jitted program per evaluation period, seeds vmapped.
"""
