"""What the console scripts read from the command line and print around a job (fast, in-process)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from metarl.cli import continual, meta_train, train
from metarl.cli.argv import hydra_argv, split_flags, take_verbose
from metarl.cli.output import configure_logging, first_table, output_listing


@pytest.mark.parametrize("argv, flags, overrides", [
    (["env=maze", "--cfg", "job", "seed=1"], ["--cfg", "job"], ["env=maze", "seed=1"]),
    (["--cfg=job", "env=maze"], ["--cfg=job"], ["env=maze"]),
    (["-c", "hydra", "--resolve", "a=1"], ["-c", "hydra", "--resolve"], ["a=1"]),
    (["--info", "defaults", "a=1"], ["--info", "defaults"], ["a=1"]),
    (["--info", "a=1"], ["--info"], ["a=1"]),  # --info's value is optional
    (["--help"], ["--help"], []),
])
def test_flags_and_overrides_are_told_apart(argv, flags, overrides):
    assert split_flags(argv) == (flags, overrides)


def test_hydra_reads_flags_first_then_the_apps_overrides_then_the_users():
    argv = hydra_argv("prog", ["env=maze", "--cfg", "job", "seed=1"], ["hydra.job.name=prog"])
    assert argv == ["prog", "--cfg", "job", "hydra.job.name=prog", "env=maze", "seed=1"]


@pytest.mark.parametrize("argv, verbose, rest", [
    ([], False, []),
    (["verbose=true", "seed=1"], True, ["seed=1"]),
    (["+verbose=Yes"], True, []),
    (["verbose=true", "verbose=0"], False, []),  # the last one wins, as for any override
    (["verbose_level=3"], False, ["verbose_level=3"]),
])
def test_verbose_is_taken_out_of_the_overrides(argv, verbose, rest):
    assert take_verbose(argv) == (verbose, rest)


def test_a_bad_verbose_value_is_one_error_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        train.main(["verbose=maybe"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "metarl-train: error: verbose=maybe: verbose must be true or false"


def test_cfg_job_reads_overrides_given_after_it(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train.main(["--cfg", "job", "env=maze", "verbose=false"])  # Hydra prints the config and returns
    assert "name: maze" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())


@pytest.fixture
def saved_logging():
    """The process's logging as it was: configure_logging changes process-wide settings."""
    root = logging.getLogger()
    names = ("orbax", "absl")
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in names}
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def test_library_info_logs_are_off_unless_verbose(saved_logging, capsys, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    configure_logging(verbose=False)
    logging.getLogger("orbax").info("quiet please")
    logging.getLogger("orbax").warning("a warning still shows")
    assert "quiet please" not in capsys.readouterr().err
    assert logging.getLogger("absl").getEffectiveLevel() == logging.WARNING

    configure_logging(verbose=True)
    logging.getLogger("orbax").info("now it shows")
    assert "[orbax][INFO] now it shows" in capsys.readouterr().err


def test_closing_line_lists_the_outputs(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "metrics.jsonl").write_text("")
    (tmp_path / ".hydra").mkdir()
    assert output_listing(tmp_path) == f"outputs in {tmp_path}: checkpoint/, metrics.jsonl"


def test_train_headline_is_the_final_return_with_an_interval(tmp_path):
    rows = [{"seed": s, "update": u, "episode_return": float(10 * s + u)} for s in range(3) for u in range(20)]
    rows[-1]["episode_return"] = None  # a NaN written by the job (no finished episode in that update)
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    np.testing.assert_allclose(train.final_returns(tmp_path / "metrics.jsonl"), [18.5, 28.5, 38.0])
    line = train.headline(tmp_path)
    assert line.startswith("final return: 28.33, 95% CI [") and "over 3 seeds" in line


def test_meta_train_headline_has_the_table_and_the_report(tmp_path):
    report = tmp_path / "report.md"
    report.write_text("# Report\n\n| env | method |\n|---|---|\n| CartPole-v1 | LPO |\n\nmore text\n\n| other | table |\n")
    summary = {"artifact": str(tmp_path / "learned_objective.npz"), "first_fitness_mean": 0.5,
               "last_fitness_mean": 0.9, "best_fitness": 1.0, "report": str(report)}
    lines = meta_train.headline(summary)
    assert lines[0] == f"learned objective: {tmp_path / 'learned_objective.npz'}"
    assert "0.500 -> 0.900" in lines[1]
    assert lines[2:] == ["| env | method |", "|---|---|", "| CartPole-v1 | LPO |", f"report: {report}"]
    assert first_table("no table") == []


def test_continual_headline_names_ap_forgetting_and_ft():
    metric = {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n_seeds": 3}
    record = {"stream": "CCartPole5-v1", "method": {"name": "ewc"},
              "metrics": {"average_performance": metric, "forgetting": metric,
                          "forward_transfer": {**metric, "mean": float("nan")}}}
    assert continual.headline(record) == ("CCartPole5-v1, ewc, 3 seeds: AP 0.500, 95% CI [0.400, 0.600] | "
                                          "forgetting 0.500, 95% CI [0.400, 0.600] | FT n/a")
