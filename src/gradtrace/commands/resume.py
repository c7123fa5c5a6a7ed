"""gradtrace resume RUN_DIR [OVERRIDES]: resume a run from its newest valid checkpoint.

Runs `gradtrace train` again with the run's own overrides and config folders (from its .hydra/),
into the same folder, with trainer.resume=true. More overrides after the folder are added, e.g.
trainer.steps=5000 to train on. The run's values come out bitwise as if it had never stopped. A
run of several processes (torchrun) resumes with as many, through torchrun. Exit status: the
training's (torchrun's: 1 when a process failed); 2 when the folder is not a run folder or its
.hydra/overrides.yaml is not a list of overrides.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

from gradtrace.errors import ConfigError
from gradtrace.sweeps.rerun import format_command, resume_command


def main(argv: Optional[list[str]] = None, prog: str = "gradtrace resume") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[2])
    parser.add_argument("run_dir", type=Path, help="a run folder, e.g. outputs/runs/<run>")
    parser.add_argument("overrides", nargs="*", help="more overrides, e.g. trainer.steps=5000")
    args = parser.parse_args(argv)
    if not (args.run_dir / ".hydra" / "overrides.yaml").is_file():
        print(f"error: {args.run_dir} is not a run folder (no .hydra/overrides.yaml)", file=sys.stderr)
        return 2
    try:
        command = resume_command(args.run_dir, args.overrides)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_command(command[1:]), flush=True)
    os.execv(command[0], command)  # the training in this process: signals reach it directly
