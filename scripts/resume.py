"""Resume a run from its newest valid checkpoint: python scripts/resume.py outputs/runs/<run>

Runs this checkout's scripts/train.py again with the run's own overrides and config folders (from
its .hydra/), into the same folder, with trainer.resume=true. More overrides after the folder are
added, e.g. trainer.steps=5000 to train on. The run's values come out bitwise as if it had never
stopped. A run of several processes (torchrun) resumes with as many, through torchrun. Exit
status: train.py's (torchrun's: 1 when a process failed).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gradtrace.sweeps.rerun import resume_command


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run folder, e.g. outputs/runs/<run>")
    parser.add_argument("overrides", nargs="*", help="more overrides, e.g. trainer.steps=5000")
    args = parser.parse_args()
    if not (args.run_dir / ".hydra" / "overrides.yaml").is_file():
        print(f"error: {args.run_dir} is not a run folder (no .hydra/overrides.yaml)", file=sys.stderr)
        return 2
    argv = resume_command(args.run_dir, args.overrides)
    print(" ".join(argv[1:]), flush=True)
    os.execv(argv[0], argv)  # train.py in this process: signals reach it directly


if __name__ == "__main__":
    sys.exit(main())
