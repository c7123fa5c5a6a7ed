"""gradtrace rerun-failed SWEEP_DIR: complete a sweep.

Every job that failed, never finished (killed) or never started (the sweep stopped before it) runs
again in its own folder, from its newest checkpoint when it has one, one after another on this
machine. Then the sweep's summary is rewritten. --dry-run prints the commands only. Exit status:
0 when every job is then complete, else 1; 2 when the folder holds no sweep.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Optional

from gradtrace.sweeps.jobs import find_jobs
from gradtrace.sweeps.rerun import format_command, rerun_command
from gradtrace.sweeps.summary import summarize


def main(argv: Optional[list[str]] = None, prog: str = "gradtrace rerun-failed") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[2])
    parser.add_argument("sweep_dir", help="a sweep folder, e.g. outputs/multirun/<date>_<time>_p<pid>")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    try:
        jobs = [job for job in find_jobs(args.sweep_dir) if not job.completed]
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not jobs:
        print(f"every job of {args.sweep_dir} is complete")
        return 0
    print(f"{len(jobs)} job(s) to run again: "
          + ", ".join(f"{job.num} ({job.status})" for job in jobs))
    for job in jobs:
        command = rerun_command(job, python=sys.executable)
        print(format_command(command), flush=True)
        if not args.dry_run:
            subprocess.run(command)
    if args.dry_run:
        return 0
    summary = summarize(args.sweep_dir)
    print(summary.headline())
    return 1 if summary.failed else 0
