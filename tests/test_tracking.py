"""Experiment tracking (``logger=[csv,tensorboard,wandb]``): the Tracker on hand-made records, read back
from the files it writes, and one ``metarl-train`` run whose event file must hold what ``metrics.jsonl`` holds.

The event files are read with tensorboardX's own protobufs (TensorBoard itself is not a dependency);
the W&B test reads the offline run's records with wandb's protobufs and is skipped without wandb.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from pathlib import Path

import pytest

from metarl.io import tracking
from metarl.io.run_dir import check_resume
from metarl.io.tracking import Tracker, check_loggers, tracked

CONFIG = {"seed": 0, "agent": {"lr": 0.001, "hidden_sizes": [64, 64], "anneal_lr": True}, "run_dir": None,
          "logger": ["csv", "tensorboard"]}


# --- readers ---------------------------------------------------------------------------------------------
def tfrecords(path: Path) -> list[bytes]:
    """The records of a TFRecord file: length (8 bytes), its CRC (4), data, the data's CRC (4)."""
    data, records, at = path.read_bytes(), [], 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        records.append(data[at + 12:at + 12 + length])
        at += 12 + length + 4
    return records


def events(logdir: Path) -> list[list]:
    """Every event file of ``logdir`` in TensorBoard's reading order, each a list of ``Event`` protobufs."""
    from tensorboardX.proto.event_pb2 import Event

    return [[Event.FromString(r) for r in tfrecords(f)] for f in sorted(logdir.glob("*tfevents*"))]


def scalars(logdir: Path) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` as TensorBoard shows it: a session starting at a purge step hides the earlier
    sessions' events at or past that step."""
    from tensorboardX.proto.event_pb2 import SessionLog

    shown: dict[str, dict[int, float]] = {}
    for file in events(logdir):
        for event in file:
            if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                for series in shown.values():
                    for step in [s for s in series if s >= event.step]:
                        del series[step]
            for value in event.summary.value:
                if value.WhichOneof("value") == "simple_value":
                    shown.setdefault(value.tag, {})[event.step] = value.simple_value
    return shown


def texts(logdir: Path) -> dict[str, str]:
    found = {}
    for file in events(logdir):
        for event in file:
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "text":
                    found[value.tag] = b"".join(value.tensor.string_val).decode()
    return found


def summary_tags(logdir: Path) -> set[str]:
    return {v.tag for file in events(logdir) for e in file for v in e.summary.value}


# --- logger names ------------------------------------------------------------------------------------------
def test_loggers_are_checked_and_csv_is_always_on():
    assert check_loggers(None) == ("csv",)
    assert check_loggers("tensorboard") == ("csv", "tensorboard")
    assert check_loggers(["tensorboard", "csv", "tensorboard"]) == ("csv", "tensorboard")
    with pytest.raises(ValueError, match=r"unknown logger 'tensorbord' .*did you mean tensorboard\?"):
        check_loggers(["csv", "tensorbord"])
    with pytest.raises(ValueError, match="logger must be a list of names"):
        check_loggers(5)


@pytest.mark.parametrize("logger, package", [("tensorboard", "tensorboardX"), ("wandb", "wandb")])
def test_a_logger_without_its_package_is_refused(logger, package, monkeypatch):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed: find_spec finds nothing
    with pytest.raises(ValueError, match=rf"{logger} needs the {package} package, which is not installed"):
        check_loggers(["csv", logger])


def test_a_missing_package_stops_the_console_script_before_any_compute(tmp_path, monkeypatch, capsys):
    from metarl.cli import train

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(SystemExit) as exit_info:
        train.main([f"hydra.run.dir={tmp_path / 'run'}", "logger=[csv,tensorboard]"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("metarl-train: error: logger=[csv,tensorboard]: "), lines
    assert "tensorboardX" in lines[0] and not (tmp_path / "run" / "config.yaml").exists()


def test_every_job_takes_logger_and_a_resume_may_change_it(tmp_path):
    from metarl.cli.app import check_sections
    from metarl.jobs import registry

    for name in registry.registered():
        check_sections(registry.get(name), ["logger=[csv,tensorboard]"])
    (tmp_path / "config.yaml").write_text("seed: 0\nlogger: [csv]\n")
    assert check_resume(tmp_path, {"seed": 0, "logger": ["csv", "wandb"], "resume": True}) == []  # not refused


# --- the Tracker on hand-made records ----------------------------------------------------------------------
def test_without_an_open_tracker_logging_does_nothing(tmp_path):
    assert tracking.current() is None
    tracking.restart_at(3)
    tracking.log("train", 0, {"x": 1.0})
    tracking.log_rows("train", [{"seed": 0, "update": 0, "x": 1.0}], "update")
    tracking.log_table("evaluate", [{"env": "e", "iqm": 1.0}])
    tracking.log_summary({"x": 1.0})
    with tracked(Tracker(tmp_path, ["csv"], CONFIG)) as tracker:  # csv alone: the run's own files, nothing more
        tracking.log("train", 0, {"x": 1.0})
        assert tracking.current() is tracker and not tracker.sinks
    assert list(tmp_path.iterdir()) == []


def test_tensorboard_gets_the_seed_mean_per_step_the_config_and_the_summary(tmp_path):
    pytest.importorskip("tensorboardX")
    rows = [  # two seeds, three updates; a null (no episode finished) and a NaN are left out of the mean
        {"seed": 0, "update": 0, "episode_return": 10.0, "loss": 1.0, "name": "text"},
        {"seed": 1, "update": 0, "episode_return": None, "loss": 3.0},
        {"seed": 0, "update": 1, "episode_return": 12.0, "loss": float("nan")},
        {"seed": 1, "update": 1, "episode_return": 16.0, "loss": 2.0},
        {"seed": 0, "update": 2, "episode_return": 20.0, "loss": 0.5},
        {"seed": 1, "update": 2, "episode_return": 30.0, "loss": 0.25},
    ]
    with tracked(Tracker(tmp_path, ["csv", "tensorboard"], CONFIG, job="train")):
        tracking.log_rows("train", rows, step_key="update")
        tracking.log("meta", 7, {"fitness_mean": 0.5, "flag": True, "per_env": [1.0, 2.0]})
        tracking.log_table("evaluate", [{"env": "CartPole-v1", "objective": "PPO", "iqm": 480.0, "seeds": 8}])
        tracking.log_summary({"final_return": {"mean": 25.0}, "run_dir": "somewhere"})
    logdir = tmp_path / "tensorboard"
    shown = scalars(logdir)
    assert shown["train/episode_return"] == {0: 10.0, 1: 14.0, 2: 25.0}
    assert shown["train/loss"] == {0: 2.0, 1: 2.0, 2: 0.375}
    assert shown["meta/fitness_mean"] == {7: 0.5} and "meta/flag" not in shown and "meta/per_env" not in shown
    assert shown["evaluate/CartPole-v1/PPO/iqm"] == {7: 480.0}  # final numbers: at the last step
    assert shown["summary/final_return/mean"] == {7: 25.0} and "summary/run_dir" not in shown
    config = texts(logdir)["config/text_summary"]
    assert "lr: 0.001" in config and "hidden_sizes: [64, 64]" in config
    assert "_hparams_/session_start_info" in summary_tags(logdir)


def test_a_resumed_session_hides_the_steps_it_redoes(tmp_path):
    pytest.importorskip("tensorboardX")
    with tracked(Tracker(tmp_path, ["tensorboard"], CONFIG)):  # killed after step 5, checkpoint at 3
        tracking.restart_at(0)  # a fresh run: not resuming, nothing to hide
        for step in range(6):
            tracking.log("meta", step, {"fitness": float(step)})
    with tracked(Tracker(tmp_path, ["tensorboard"], CONFIG, resume=True)):
        tracking.restart_at(3)
        for step in range(3, 8):
            tracking.log("meta", step, {"fitness": 100.0 + step})
    first, second = events(tmp_path / "tensorboard")
    assert not any(e.HasField("session_log") for e in first)
    assert [e.step for e in second if e.HasField("session_log")] == [3]
    assert scalars(tmp_path / "tensorboard")["meta/fitness"] == {0: 0.0, 1: 1.0, 2: 2.0, 3: 103.0, 4: 104.0,
                                                               5: 105.0, 6: 106.0, 7: 107.0}


def test_the_writers_of_each_job_reach_the_open_tracker(tmp_path):
    """ES generations (GenerationLog), continual evaluations and curriculum updates, from hand-made values."""
    pytest.importorskip("tensorboardX")
    import numpy as np

    from metarl.io.progress import GenerationLog
    from metarl.jobs.continual import log_evaluations
    from metarl.jobs.curriculum import log_updates

    perf = np.array([[[0.2, 0.0], [0.6, 0.4]], [[0.4, 0.0], [0.8, 0.6]]])  # [seeds, evals, tasks]
    results = {"eval_steps": np.array([100, 200]), "perf": perf, "returns": 10 * perf,
               "diagnostics": {"dormant": np.array([[0.1, 0.2], [0.3, 0.4]]), "per_layer": np.zeros((2, 2, 3))}}
    with tracked(Tracker(tmp_path, ["tensorboard"], CONFIG, resume=True)):
        with GenerationLog(tmp_path / "meta_log.jsonl", 3, start_generation=1, show_progress=False) as log:
            log.record(1, fitness_mean=np.float32(0.5), per_env=np.array([1.0, 2.0]))
            log.record_failure(2, num_nonfinite=4)  # a failed attempt is retried, not a step
            log.record(2, fitness_mean=0.75)
        log_evaluations(results, ("a", "b"))
        log_updates({"episode_return": np.array([1.0, 2.0, 4.0]), "per_env": np.zeros((3, 2))})
    shown = scalars(tmp_path / "tensorboard")
    assert shown["meta/fitness_mean"] == {1: 0.5, 2: 0.75} and "meta/per_env" not in shown
    assert [e.step for f in events(tmp_path / "tensorboard") for e in f if e.HasField("session_log")] == [1]
    assert shown["continual/perf/a"] == pytest.approx({100: 0.3, 200: 0.7})
    assert shown["continual/perf_mean"] == pytest.approx({100: 0.15, 200: 0.6})
    assert shown["continual/return/b"] == pytest.approx({100: 0.0, 200: 5.0})
    assert shown["continual/diag/dormant"] == pytest.approx({100: 0.2, 200: 0.3})
    assert "continual/diag/per_layer" not in shown  # [seeds, evals, units]: not one number per evaluation
    assert shown["curriculum/episode_return"] == {0: 1.0, 1: 2.0, 2: 4.0} and "curriculum/per_env" not in shown


def wandb_records(run_dir: Path) -> list:
    """The records of the offline W&B run under ``run_dir`` (LevelDB log format: 7-byte file header, 32 KiB
    blocks, each record piece with a 7-byte header: CRC, length, type full/first/middle/last)."""
    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    data, block, at, pending, records = path.read_bytes(), 32768, 7, b"", []
    while at + 7 <= len(data):
        if block - at % block < 7:  # a block's tail too short for a header is padding
            at += block - at % block
            continue
        _, length, kind = struct.unpack("<IHB", data[at:at + 7])
        pending += data[at + 7:at + 7 + length]
        at += 7 + length
        if kind in (1, 4):  # full, last
            records.append(wandb_internal_pb2.Record.FromString(pending))
            pending = b""
    return records


def test_wandb_gets_an_offline_run_with_the_config_and_the_scalars(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    with tracked(Tracker(tmp_path, ["csv", "wandb"], CONFIG, job="train")):
        tracking.log_rows("train", [{"seed": 0, "update": u, "episode_return": 2.0 * u} for u in range(3)], "update")
        tracking.log_summary({"final_return": {"mean": 4.0}})
    records = wandb_records(tmp_path)
    history = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item}
            history[items["_step"]] = items
    assert {step: items["train/episode_return"] for step, items in history.items()} == {0: 0.0, 1: 2.0, 2: 4.0}
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {i.key: json.loads(i.value_json) for i in run.config.update}
    assert config["agent"]["lr"] == 0.001 and run.job_type == "train" and run.run_group == tmp_path.name
    summary = [json.loads(i.value_json) for r in records if r.WhichOneof("record_type") == "summary"
               for i in r.summary.update if i.key == "summary/final_return/mean"]
    assert summary == [4.0]


# --- end to end: the CLI (in this process; the installed scripts run in tests/test_installed_wheel.py) ----------
def test_metarl_train_writes_to_tensorboard_what_metrics_jsonl_holds(tmp_path, monkeypatch, capsys):
    pytest.importorskip("tensorboardX")
    from metarl.cli.train import main

    run = tmp_path / "run"
    args = [f"hydra.run.dir={run}", "progress=false", "seeds=2", "checkpoint_every=2", "agent.total_timesteps=256",
            "agent.num_envs=2", "agent.num_steps=32", "logger=[csv,tensorboard]"]
    monkeypatch.chdir(tmp_path)
    main(args)
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(f"outputs in {run}: ")

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    shown = scalars(run / "tensorboard")
    names = [k for k in rows[0] if k not in ("seed", "update")]
    assert {f"train/{n}" for n in names} <= set(shown)
    for name in names:
        means = {}
        for update in sorted({r["update"] for r in rows}):
            values = [r[name] for r in rows if r["update"] == update and r[name] is not None]
            if values:  # an update where no seed finished an episode has no mean
                means[update] = sum(values) / len(values)
        assert shown[f"train/{name}"] == pytest.approx(means, rel=1e-6, abs=1e-6), name  # TensorBoard: float32
    assert sorted(shown["train/timesteps"]) == [0, 1, 2, 3] and math.isfinite(shown["summary/final_return/mean"][3])
    assert "agent:" in texts(run / "tensorboard")["config/text_summary"]
