"""The CPU defaults the package applies on import (envs/_xla_defaults.py)."""

import pytest

from envs import _xla_defaults


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("XLA_FLAGS", "PJRT_NPROC", "NPROC", "METARL_XLA_DEFAULTS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_set_single_worker_and_eigen_flag(clean_env):
    import os

    _xla_defaults.apply()
    assert os.environ["PJRT_NPROC"] == "1"
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false"
    _xla_defaults.apply()  # idempotent: nothing appended twice
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=false"


@pytest.mark.parametrize("name", ["PJRT_NPROC", "NPROC"])
def test_user_thread_count_is_kept(clean_env, name):
    import os

    clean_env.setenv(name, "4")
    clean_env.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
    _xla_defaults.apply()
    assert os.environ[name] == "4"
    assert "PJRT_NPROC" not in os.environ or name == "PJRT_NPROC"
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_multi_thread_eigen=true"


def test_opt_out_leaves_environment_alone(clean_env):
    import os

    clean_env.setenv("METARL_XLA_DEFAULTS", "0")
    _xla_defaults.apply()
    assert "PJRT_NPROC" not in os.environ and "XLA_FLAGS" not in os.environ


def test_one_worker_per_forced_host_device(clean_env):
    import os

    clean_env.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    _xla_defaults.apply()
    assert os.environ["PJRT_NPROC"] == "4"
    assert "--xla_cpu_multi_thread_eigen=false" in os.environ["XLA_FLAGS"]
