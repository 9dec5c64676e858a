"""Per-generation logging shared by every ES meta-trainer: a JSONL file and a tqdm bar.

One JSON object per line, one line per generation.  On resume the log is cut
back to the generations covered by the checkpoint, so a resumed run's log is
the same as an uninterrupted one's (up to wall-clock fields).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm


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
    path = Path(path)
    if not path.exists():
        return []
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def truncate_log(path: str | os.PathLike, num_generations: int) -> None:
    """Keep only records with ``generation < num_generations`` (atomic rewrite)."""
    path = Path(path)
    records = [r for r in read_log(path) if r["generation"] < num_generations]
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
        if start_generation == 0 and self.path.exists():
            self.path.unlink()
        elif self.path.exists():
            truncate_log(self.path, start_generation)
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
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        postfix = {"gen": generation}
        for key, label in (("fitness_max", "best"), ("fitness_mean", "mean"), ("seconds", "s/gen")):
            if key in record and isinstance(record[key], (int, float)):
                postfix[label] = f"{record[key]:.3g}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)
        return record

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> GenerationLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
