"""Run a Python snippet in a child process whose CPU shows as N XLA devices; its last stdout line is JSON."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

_DEVICE_COUNT = re.compile(r"--xla_force_host_platform_device_count=\S*")


def run_on_host_devices(script: str, devices: int, timeout: int = 600) -> dict:
    # The session's XLA flags (tests/conftest.py: cheaper LLVM passes, the console scripts' CPU defaults) stay on:
    # the child compiles each of its programs under the same flags, so its comparisons are unchanged; only the
    # device count is this call's own.
    flags = _DEVICE_COUNT.sub("", os.environ.get("XLA_FLAGS", "")).split()
    env = os.environ | {"XLA_FLAGS": " ".join([*flags, f"--xla_force_host_platform_device_count={devices}"]),
                        "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
