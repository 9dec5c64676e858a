"""The CPU defaults the console scripts apply (metarl/runtime.py)."""

import pytest

from metarl import runtime


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("XLA_FLAGS", "PJRT_NPROC", "NPROC", "METARL_XLA_DEFAULTS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_set_single_worker_and_eigen_flag(clean_env):
    import os

    runtime.configure_cpu()
    assert os.environ["PJRT_NPROC"] == "1"
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false"
    runtime.configure_cpu()  # idempotent: nothing appended twice
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false"


@pytest.mark.parametrize("name", ["PJRT_NPROC", "NPROC"])
def test_user_thread_count_is_kept(clean_env, name):
    import os

    clean_env.setenv(name, "4")
    clean_env.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
    runtime.configure_cpu()
    assert os.environ[name] == "4"
    assert "PJRT_NPROC" not in os.environ or name == "PJRT_NPROC"
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=true"


def test_opt_out_leaves_environment_alone(clean_env):
    import os

    clean_env.setenv("METARL_XLA_DEFAULTS", "0")
    runtime.configure_cpu()
    assert "PJRT_NPROC" not in os.environ and "XLA_FLAGS" not in os.environ


def test_one_worker_per_forced_host_device(clean_env):
    import os

    clean_env.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    runtime.configure_cpu()
    assert os.environ["PJRT_NPROC"] == "4"
    assert "--xla_cpu_multi_thread_eigen=false" in os.environ["XLA_FLAGS"]


def test_importing_the_packages_changes_no_environment_variable(tmp_path):
    """No import side effects: the defaults are the CLI layer's job (metarl.runtime.configure_cpu)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PJRT_NPROC", "NPROC")}
    code = (
        "import os\n"
        "import envs, curricula, metarl, metarl.agents.ppo, metarl.meta, metarl.continual.runner\n"
        "print(sorted(k for k in ('XLA_FLAGS', 'PJRT_NPROC', 'NPROC') if k in os.environ))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


_DEVICES_SCRIPT = (
    "import os, sys\n"
    "from metarl import runtime\n"
    "runtime.configure_cpu()\n"
    "print(runtime.configure_cpu_devices(sys.argv[1] if sys.argv[1] == 'auto' else int(sys.argv[1])))\n"
    "import jax\n"
    "print(jax.device_count(), os.environ['PJRT_NPROC'])\n"
)


@pytest.mark.parametrize(("value", "user_flags", "expected"), [
    ("3", "", "3\n3 3"),  # three devices, one worker thread each
    ("auto", "", None),  # one per core of this process's affinity
    ("3", "--xla_force_host_platform_device_count=2", "None\n2 2"),  # the user's own count wins
])
def test_cpu_devices_are_set_before_jax_starts(tmp_path, value, user_flags, expected):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PJRT_NPROC", "NPROC")}
    env |= {"XLA_FLAGS": user_flags} if user_flags else {}
    out = subprocess.run([sys.executable, "-c", _DEVICES_SCRIPT, value], env=env, cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.strip()
    cores = runtime.available_cores()
    assert out == (expected or f"{cores}\n{cores} {cores}")


def test_cpu_devices_leave_a_running_jax_alone_and_refuse_nonsense(clean_env):
    import os

    import jax

    jax.devices()  # this test process's JAX has started
    assert runtime.configure_cpu_devices(4) is None and "XLA_FLAGS" not in os.environ
    for bad in (0, -1, "many", True, 2.5):
        with pytest.raises(ValueError, match="cpu_devices must be 'auto' or an integer >= 1"):
            runtime.configure_cpu_devices(bad)
