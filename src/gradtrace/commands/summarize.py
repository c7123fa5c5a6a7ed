"""gradtrace summarize SWEEP_DIR: write a sweep's summary on demand.

summary.csv, summary.md and summary.png in the sweep folder, the same files that every multirun
writes at its end; useful for a sweep still running, killed, or run before this existed. Prints
summary.md. Exit status 1 when a job failed or has not finished; 2 when the folder holds no sweep.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from gradtrace.sweeps.summary import summarize


def main(argv: Optional[list[str]] = None, prog: str = "gradtrace summarize") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[2])
    parser.add_argument("sweep_dir", help="a sweep folder, e.g. outputs/multirun/<date>_<time>_p<pid>")
    parser.add_argument("--no-plot", action="store_true", help="skip summary.png")
    args = parser.parse_args(argv)
    print(f"summarising {args.sweep_dir}: each job's result.json and loss curve", file=sys.stderr,
          flush=True)
    try:
        summary = summarize(args.sweep_dir, plot=not args.no_plot)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print((summary.sweep_dir / "summary.md").read_text(), end="")
    return 1 if summary.failed else 0
