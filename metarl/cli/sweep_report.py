"""``metarl-sweep-report``: gather a sweep (the directory of a ``-m`` run) into a table, a CSV and a figure.

    metarl-sweep-report multirun/2026-01-01/12-00-00
    metarl-sweep-report <sweep dir> --metric final_return.max --out reports/lr_sweep

Reads every job directory below the sweep directory (their overrides,
``result.json`` or ``error.txt``) and writes ``sweep_report.md``,
``sweep_report.csv`` and ``sweep_report.png`` (:mod:`metarl.eval.sweep_report`)
into the sweep directory, or ``--out``. Prints the table and the failed jobs.
Bad input (a path that is not a sweep directory, a metric no job has, an
output directory that cannot be written) is one line and exit status 2,
before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from metarl.cli.app import DEBUG_FLAG, reported_errors

PROGRAM = "metarl-sweep-report"


class _OneLineParser(argparse.ArgumentParser):
    """argparse's usage errors as the suite's one line (``<program>: error: ...``, exit status 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog=PROGRAM, description="Gather the jobs of a sweep (a -m run) into one table "
                       "(mean and IQM with 95% CIs per configuration), one CSV and one figure.")
    p.add_argument("sweep_dir", help="the sweep's directory (hydra.sweep.dir, e.g. multirun/<date>/<time>)")
    p.add_argument("--metric", default=None,
                   help="dotted key of the jobs' summaries (default: the one they recorded, sweep.metric or their "
                        "headline), e.g. final_return.max")
    p.add_argument("--out", default=None, help="where to write sweep_report.{md,csv,png} (default: the sweep dir)")
    p.add_argument(DEBUG_FLAG, action="store_true", help="show the traceback of an error")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    with reported_errors(PROGRAM, args.debug):
        from metarl.cli.preflight import check_run_dir
        from metarl.eval.sweep_report import gather, write_report
        from metarl.io.sweep import check_sweep_dir

        sweep_dir = check_sweep_dir(args.sweep_dir)
        out_dir = sweep_dir if args.out is None else args.out
        check_run_dir(out_dir)
        sweep = gather(sweep_dir, args.metric)
        paths = write_report(sweep, out_dir)
    table = paths["table"].read_text()
    print(table.split("\n## Jobs")[0].rstrip())  # the summary and failed jobs; every job's row stays in the file
    print(f"report: {paths['table']}, {paths['csv']}, {paths['figure']}")


if __name__ == "__main__":
    main()
