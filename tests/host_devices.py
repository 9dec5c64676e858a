"""Run a Python snippet in a child process whose CPU shows as N XLA devices; its last stdout line is JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_on_host_devices(script: str, devices: int, timeout: int = 600) -> dict:
    env = os.environ | {"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
