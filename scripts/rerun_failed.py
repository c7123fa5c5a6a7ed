"""Rerun a sweep's failed jobs: python scripts/rerun_failed.py outputs/multirun/<sweep>

Failed means failed, or never finished (no result.json). They run again with the overrides and
the launcher they had, as a new sweep (one `-m` command when they form a grid, else one per job),
which writes its own summary. --dry-run prints the commands only. Exit status: the highest of
the commands'.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from gradtrace.sweeps.jobs import find_jobs
from gradtrace.sweeps.rerun import format_command, rerun_commands


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a sweep folder, e.g. outputs/multirun/<date>_<time>_p<pid>")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args()
    try:
        failed = [job for job in find_jobs(args.sweep_dir) if not job.completed]
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not failed:
        print(f"no failed jobs in {args.sweep_dir}")
        return 0
    print(f"{len(failed)} failed job(s): " + ", ".join(str(job.num) for job in failed))
    status = 0
    for argv in rerun_commands(failed, python=sys.executable):
        print(format_command(argv), flush=True)
        if not args.dry_run:
            status = max(status, subprocess.run(argv).returncode)
    return status


if __name__ == "__main__":
    sys.exit(main())
