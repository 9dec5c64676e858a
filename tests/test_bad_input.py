"""Bad input to every console script: exit status 2, one line naming the problem, nothing computed or written.

The rows are in ``tests/bad_input_cases.py``. They run in-process (``main(argv)``)
with ``jax.jit`` behind a tripwire, so a row that is not rejected before JAX
would compile fails at once instead of training; a few rows also run through
the installed scripts to check the one-line, no-traceback output end to end.
"""

from __future__ import annotations

import collections
import functools
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from bad_input_cases import BASE, CASES, KINDS, PROGRAMS, Case, write_artifact_files
from metarl.agents.ppo import PPOConfig
from metarl.cli import continual, curriculum, evaluate, meta_rl, meta_train, reset_free, train
from metarl.continual.methods import MethodConfig
from metarl.continual.runner import RunConfig
from metarl.lpg.agents import AgentConfig
from metarl.lpg.rule import LPGConfig
from metarl.meta.es import ESConfig
from metarl.meta.fitness import FitnessConfig
from metarl.meta.lpg_es import LPGMetaConfig
from metarl.meta.lpg_meta_gradient import MetaGradientRunConfig

MAINS = {
    "metarl-train": train.main,
    "metarl-meta-train": meta_train.main,
    "metarl-evaluate": evaluate.main,
    "metarl-curriculum": curriculum.main,
    "metarl-continual": continual.main,
    "metarl-reset-free": reset_free.main,
    "metarl-meta-rl": meta_rl.main,
}
SENTINEL_TEXT = "written before the run; must stay as it is\n"
# imported up front: a module imported under the tripwire would keep its tripped jax.jit decorators
LAZY_MODULES = ("metarl.jobs", "metarl.eval.lpg", "metarl.eval.objectives", "metarl.eval.curriculum",
                "metarl.optimizers", "metarl.meta.optimizer_fitness", "envs.maze", "envs.stumps")


REAL_JIT = jax.jit
TRIPWIRE = {"armed": False}


class ComputeStarted(BaseException):
    """Raised by the tripwire ``jax.jit``: the job got to running a compiled program before it rejected the input."""


def _tripwire_jit(fun=None, **kwargs):
    """``jax.jit`` whose functions refuse to run while a row runs (a module imported meanwhile keeps working after)."""
    if fun is None:  # @partial(jax.jit, ...) style
        return functools.partial(_tripwire_jit, **kwargs)
    jitted = REAL_JIT(fun, **kwargs)

    @functools.wraps(fun)
    def guarded(*args, **call_kwargs):
        if TRIPWIRE["armed"]:
            raise ComputeStarted(f"jax.jit({getattr(fun, '__name__', fun)}) ran before the bad input was rejected")
        return jitted(*args, **call_kwargs)

    return guarded


@pytest.fixture
def tripwire(monkeypatch):
    for module in LAZY_MODULES:
        importlib.import_module(module)
    monkeypatch.setattr(jax, "jit", _tripwire_jit)
    TRIPWIRE["armed"] = True
    yield
    TRIPWIRE["armed"] = False


def test_the_matrix_covers_every_class_and_script():
    counts = collections.Counter(case.kind for case in CASES)
    assert len(CASES) >= 100 and set(counts) == set(KINDS), counts
    assert set(PROGRAMS[case.profile] for case in CASES) == set(MAINS)
    assert len({case.id for case in CASES}) == len(CASES)  # no row twice


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("artifacts")
    write_artifact_files(folder)
    return folder


@pytest.fixture
def run_dir(tmp_path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "sentinel.txt").write_text(SENTINEL_TEXT)
    return run


def _key(arg: str) -> str:
    return arg.split("=", 1)[0]


def command_line(case: Case, run: Path, files: Path) -> list[str]:
    """The base settings of the case's profile, then its own args (which replace base args with the same key)."""
    own = {_key(a) for a in case.args}
    args = [a for a in BASE[case.profile] if _key(a) not in own] + list(case.args)
    return [fill(a, run, files) for a in args]


def fill(text: str, run: Path, files: Path) -> str:
    return text.format(run=run, file=run / "sentinel.txt", files=files)


def assert_untouched(run: Path) -> None:
    assert (run / "sentinel.txt").read_text() == SENTINEL_TEXT
    written = [p for p in run.rglob("*") if p.is_file() and ".hydra" not in p.relative_to(run).parts]
    assert written == [run / "sentinel.txt"], f"files written before the input was rejected: {written}"


def assert_one_line_naming(stderr: str, program: str, names: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{program}: error: "), lines[0]
    assert names in lines[0], f"{names!r} not in {lines[0]!r}"
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_exits_2_with_one_line_before_any_compile(case, files, run_dir, tmp_path, monkeypatch, capsys,
                                                          tripwire):
    monkeypatch.chdir(tmp_path)  # Hydra's default run directories go below the working directory
    program = PROGRAMS[case.profile]
    with pytest.raises(SystemExit) as exit_info:
        MAINS[program](command_line(case, run_dir, files))
    assert exit_info.value.code == 2
    assert_one_line_naming(capsys.readouterr().err, program, fill(case.names, run_dir, files))
    assert_untouched(run_dir)


# end to end, through the installed scripts: one per script
SCRIPT_ROWS = [
    Case("train", ("agent.ent_coef=nan",), "agent.ent_coef", ""),
    Case("meta", ("meta=opnes",), "openes", ""),
    Case("evaluate", ("artifact={files}/text.npz",), "text.npz", ""),
    Case("curriculum", ("teacher=plrr",), "plr", ""),
    Case("continual", ("seeds=2.5",), "seeds", ""),
]


@pytest.mark.parametrize("case", SCRIPT_ROWS, ids=[case.id for case in SCRIPT_ROWS])
def test_installed_scripts_print_one_line_and_no_traceback(case, files, run_dir, tmp_path):
    program = PROGRAMS[case.profile]
    command = shutil.which(program, path=str(Path(sys.executable).parent)) or program
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("HYDRA_FULL_ERROR", None)
    result = subprocess.run([command, *command_line(case, run_dir, files)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert_one_line_naming(result.stderr, program, fill(case.names, run_dir, files))
    assert_untouched(run_dir)


# the same checks for library users: every config class refuses what its fields do not declare
NAN, INF = float("nan"), float("inf")
CONFIG_ROWS = [
    (PPOConfig, {"ent_coef": NAN}, "PPOConfig.ent_coef must be a finite number"),
    (PPOConfig, {"anneal_lr": "maybe"}, "PPOConfig.anneal_lr must be true or false"),
    (PPOConfig, {"num_envs": 2.5}, "PPOConfig.num_envs must be an integer"),
    (PPOConfig, {"activation": "relux"}, "did you mean relu"),
    (ESConfig, {"sigma": INF}, "ESConfig.sigma must be a finite number"),
    (ESConfig, {"strategy": "xNES"}, "does not support antithetic"),
    (FitnessConfig, {"final_fraction": 0}, "fitness.final_fraction must be in (0, 1]"),
    (AgentConfig, {"gamma": 1.5}, "AgentConfig.gamma must be in [0, 1]"),
    (LPGConfig, {"time_aware": 1}, "LPGConfig.time_aware must be true or false"),
    (LPGMetaConfig, {"lifetime": 4, "lifetime_min": 5}, "LPGMetaConfig.lifetime_min must lie in [1, lifetime=4]"),
    (MetaGradientRunConfig, {"regularisers": (1.0, 2.0)}, "regularisers must be a list of 4 values"),
    (MethodConfig, {"shrink": 2.0}, "MethodConfig.shrink must be in [0, 1]"),
    (RunConfig, {"seeds": 0}, "RunConfig.seeds must be >= 1"),
]


@pytest.mark.parametrize("cls, values, message", CONFIG_ROWS, ids=[f"{r[0].__name__}:{r[1]}" for r in CONFIG_ROWS])
def test_config_classes_check_their_fields(cls, values, message):
    with pytest.raises(ValueError) as info:
        cls(**values)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_build_dataclass_names_the_section_and_normalises():
    from metarl.config import build_dataclass

    config = build_dataclass(PPOConfig, {"total_timesteps": 1e6, "hidden_sizes": [32, 32]}, "inner")
    assert config.total_timesteps == 1_000_000 and config.hidden_sizes == (32, 32)
    with pytest.raises(ValueError, match=r"^inner\.lr must be a finite number, got nan$"):
        build_dataclass(PPOConfig, {"lr": float("nan")}, "inner")
    with pytest.raises(ValueError, match=r"^inner\.num_minibatches=3 does not divide"):
        build_dataclass(PPOConfig, {"num_minibatches": 3}, "inner").validate(prefix="inner")


def test_overrides_keep_the_kind_of_the_primary_configs_values():
    from omegaconf import OmegaConf

    from metarl.config import check_overrides

    defaults = {"seeds": 1, "progress": True, "final_fraction": 0.1, "env": "CartPole-v1"}
    cfg = OmegaConf.create({"seeds": 1e3, "progress": False, "final_fraction": 1, "env": ["CartPole-v1", "Acrobot-v1"]})
    check_overrides(cfg, ["seeds=1e3", "progress=false", "final_fraction=1", "env=[CartPole-v1,Acrobot-v1]"], defaults)
    for key, value, message in (("seeds", 2.5, "seeds must be an integer"), ("progress", "maybe", "true or false"),
                                ("final_fraction", float("inf"), "must be a finite number"),
                                ("env", [1.0, float("nan")], r"env\[1\] must be a finite number")):
        with pytest.raises(ValueError, match=message):
            check_overrides(OmegaConf.create({key: value}), [f"{key}=x"], defaults)
