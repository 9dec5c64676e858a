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
