"""CPU defaults for XLA, applied when the package is imported (before JAX starts its backend).

jaxlib 0.10's multi-threaded Eigen pool can deadlock on small machines (seen
here with batched LAPACK calls and long vmapped programs on 2 cores), and
on CPU the single-threaded setting is also faster for RL-sized programs
(PPO CartPole, 1 seed: 97k -> 108k steps/s; 16 seeds: 153k -> 159k).
Set ``METARL_XLA_DEFAULTS=0`` to leave ``XLA_FLAGS`` untouched. The flag
only takes effect if no JAX computation has run yet in the process.
"""

import os

FLAGS = ("--xla_cpu_multi_thread_eigen=false",)


def apply() -> None:
    if os.environ.get("METARL_XLA_DEFAULTS", "1") == "0":
        return
    current = os.environ.get("XLA_FLAGS", "")
    missing = [f for f in FLAGS if f.split("=")[0] not in current]
    if missing:
        os.environ["XLA_FLAGS"] = " ".join([current, *missing]).strip()


apply()
