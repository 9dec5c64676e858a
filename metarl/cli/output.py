"""What a console script prints around its job.

* Libraries' logs (absl, orbax, jax, hydra, ...) at INFO and below are off by
  default: the terminal shows the job's progress bars and results.
  ``verbose=true`` turns them on, on stderr (:func:`configure_logging`).
* Every command ends with its headline numbers and, last, where its outputs
  are (:func:`print_closing`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

THIRD_PARTY_LOGGERS = ("absl", "jax", "jaxlib", "orbax", "etils", "flax", "optax", "chex", "hydra", "matplotlib", "PIL")
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] %(message)s"
HELP_FOOTER = (
    "Also: verbose=true shows libraries' INFO logs (absl, orbax, jax, hydra); "
    "--debug shows the full traceback of an error."
)


class _AboveProgressBars(logging.StreamHandler):
    """Log lines on stderr, written through tqdm so that they do not cut through a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 (logging's own convention: report, never raise)
            self.handleError(record)


def configure_logging(verbose: bool) -> None:
    """Third-party INFO logs off (WARNING and up still show), or all of them on stderr when ``verbose``."""
    level = logging.INFO if verbose else logging.WARNING
    # XLA's C++ logging reads this when jaxlib loads; a value the user set wins
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "1")
    if verbose:
        handler = _AboveProgressBars()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logging.basicConfig(level=level, handlers=[handler], force=True)
    else:
        logging.getLogger().setLevel(level)
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(level)
    try:
        from absl import logging as absl_logging  # orbax logs through absl
    except ImportError:
        return
    absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.WARNING)


@contextlib.contextmanager
def help_footer(argv: Sequence[str]) -> Iterator[None]:
    """After Hydra's ``--help`` (which exits with status 0), name the switches this app adds."""
    try:
        yield
    except SystemExit as done:
        if done.code in (0, None) and {"--help", "-h"} & set(argv):
            print(HELP_FOOTER)
        raise


def output_listing(run_dir: str | os.PathLike) -> str:
    """``outputs in <absolute dir>: a.json, b.png, checkpoint/`` (hidden entries left out)."""
    run_dir = Path(run_dir).absolute()
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in run_dir.iterdir() if not p.name.startswith("."))
    return f"outputs in {run_dir}: {', '.join(names)}" if names else f"outputs in {run_dir}"


def print_closing(run_dir: str | os.PathLike, headline: Iterable[str] = ()) -> None:
    """The last lines of a command: its headline numbers, then where its outputs are."""
    for line in headline:
        print(line)
    print(output_listing(run_dir), flush=True)


def first_table(markdown: str) -> list[str]:
    """The rows of the first table in a markdown text (a block of lines starting with ``|``)."""
    rows: list[str] = []
    for line in markdown.splitlines():
        if line.lstrip().startswith("|"):
            rows.append(line)
        elif rows:
            break
    return rows


def interval(mean: float, low: float, high: float, digits: int = 2) -> str:
    """``12.30, 95% CI [10.00, 14.50]``."""
    return f"{mean:.{digits}f}, 95% CI [{low:.{digits}f}, {high:.{digits}f}]"
