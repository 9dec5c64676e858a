"""Silence for third-party loaders that print to the process's file descriptors (beyond Python's redirects)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def silenced(*warning_messages: str) -> Iterator[None]:
    """Nothing printed while the block runs, by Python or by C libraries, and the named Python warnings ignored.

    MuJoCo's compiler warns on stderr about deprecated MJCF attributes of the models brax and Playground ship
    (``settotalmass``), MJX prints a line per missing GPU backend, Warp prints a banner; none of it is the user's.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(os.devnull, "w") as null, warnings.catch_warnings():
            for message in warning_messages:
                warnings.filterwarnings("ignore", message=message)
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
