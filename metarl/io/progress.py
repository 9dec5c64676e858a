"""Per-generation logging shared by every ES meta-trainer: a JSONL file and a tqdm bar.

One JSON object per line, one line per generation.  On resume the log is cut
back to the generations covered by the checkpoint, so a resumed run's log is
the same as an uninterrupted one's (up to wall-clock fields).

Every JSONL log of a run (``meta_log.jsonl``, ``metrics.jsonl``) follows the
same discipline: records are appended and fsynced *before* the checkpoint
that covers them, and a resume cuts the file back to its checkpoint
(:func:`truncate_log`), so each record is in the file exactly once. A kill in
the middle of an append leaves a torn last line; :func:`read_log` drops it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from metarl.io import tracking


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def read_log(path: str | os.PathLike) -> list[dict]:
    """The records of a JSONL log; a torn last line (a kill during an append) is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):  # only the last line can be half-written
                break
            raise ValueError(f"{path}:{number} is not a JSON record") from None
    return records


def append_records(path: str | os.PathLike, records: list[dict]) -> None:
    """Append JSON lines and flush them to disk (they must be there before the checkpoint that covers them)."""
    with Path(path).open("a") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
        f.flush()
        os.fsync(f.fileno())


def truncate_log(path: str | os.PathLike, below: int, key: str = "generation") -> None:
    """Keep only records with ``record[key] < below`` (atomic rewrite; no file for ``below <= 0``)."""
    path = Path(path)
    if below <= 0:
        path.unlink(missing_ok=True)
        return
    records = [r for r in read_log(path) if r[key] < below]
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    os.replace(tmp, path)


class GenerationLog:
    """``record(generation, **values)`` appends a JSONL line and advances the bar."""

    def __init__(
        self,
        path: str | os.PathLike,
        total_generations: int,
        start_generation: int = 0,
        description: str = "meta-train",
        show_progress: bool = True,
    ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        truncate_log(self.path, start_generation)
        tracking.restart_at(start_generation)  # a resume redoes the generations from here
        self._bar = tqdm(
            total=total_generations,
            initial=start_generation,
            desc=description,
            unit="gen",
            disable=not show_progress,
            dynamic_ncols=True,
        )

    def record(self, generation: int, **values: Any) -> dict:
        record = {"generation": int(generation), **_jsonable(values)}
        append_records(self.path, [record])
        tracking.log("meta", generation, values)  # to TensorBoard / W&B when the job asked for them
        postfix = {"gen": generation}
        for key, label in (("fitness_max", "best"), ("fitness_mean", "mean"), ("seconds", "s/gen")):
            if key in record and isinstance(record[key], (int, float)):
                postfix[label] = f"{record[key]:.3g}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)
        return record

    def record_failure(self, generation: int, **values: Any) -> dict:
        """A failed attempt at ``generation`` (``"failed": true``); the bar does not move."""
        record = {"generation": int(generation), "failed": True, **_jsonable(values)}
        append_records(self.path, [record])
        return record

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> GenerationLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
