"""The `gradtrace` command (also `python -m gradtrace`): one subcommand per thing a user does.

    gradtrace train [OVERRIDES]          one run; -m OVERRIDES: a sweep (Hydra's command line)
    gradtrace summarize SWEEP_DIR        summary.csv, .md and .png of a sweep folder
    gradtrace resume RUN_DIR [OVERRIDES] a stopped run from its newest checkpoint, bitwise
    gradtrace rerun-failed SWEEP_DIR     every job of a sweep that did not complete, again

The repository's scripts (scripts/train.py, resume.py, summarize.py, rerun_failed.py) are thin
calls of the same functions.
"""

from __future__ import annotations

import sys
from typing import Callable, Optional

USAGE = """usage: gradtrace COMMAND [ARGS]

Configurable gradient-descent experiments in PyTorch, every loss, parameter and gradient in
TensorBoard.

commands:
  train [OVERRIDES]           train one run (-m: a sweep); gradtrace train --help lists the
                              config groups and options, --cfg job prints the config
  summarize SWEEP_DIR         write a sweep's summary (summary.csv, summary.md, summary.png)
  resume RUN_DIR [OVERRIDES]  resume a stopped run from its newest checkpoint
  rerun-failed SWEEP_DIR      run every failed, unfinished or unstarted job of a sweep again

gradtrace COMMAND --help says more. Outputs go to ./outputs; look at them with
tensorboard --logdir outputs
"""


def _train(argv: list[str]) -> Optional[int]:
    from gradtrace.training.signals import catch_early

    catch_early()  # before the imports of torch and Hydra, which take seconds
    from gradtrace.commands import train

    train.run(argv)
    return None


def _summarize(argv: list[str]) -> int:
    from gradtrace.commands import summarize

    return summarize.main(argv)


def _resume(argv: list[str]) -> int:
    from gradtrace.commands import resume

    return resume.main(argv)


def _rerun_failed(argv: list[str]) -> int:
    from gradtrace.commands import rerun_failed

    return rerun_failed.main(argv)


# Each imported when chosen: `gradtrace summarize` needs neither Hydra's task nor torch's DDP.
COMMANDS: dict[str, Callable[[list[str]], Optional[int]]] = {
    "train": _train,
    "summarize": _summarize,
    "resume": _resume,
    "rerun-failed": _rerun_failed,
}


def main(argv: Optional[list[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from gradtrace import __version__

        print(f"gradtrace {__version__}")
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"gradtrace: unknown command {args[0]!r}; the commands are {', '.join(COMMANDS)} "
              f"(gradtrace --help)", file=sys.stderr)
        return 2
    return command(args[1:]) or 0
