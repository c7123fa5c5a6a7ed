"""Resume a run from its newest valid checkpoint: python scripts/resume.py outputs/runs/<run>

Runs this checkout's scripts/train.py again with the run's own overrides and config folders (from
its .hydra/), into the same folder, with trainer.resume=true. More overrides after the folder are
added, e.g. trainer.steps=5000 to train on. The run's values come out bitwise as if it had never
stopped. Exit status: train.py's.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from omegaconf import OmegaConf

TRAIN = Path(__file__).resolve().parent / "train.py"
SET_BY_RESUME = ("trainer.resume=", "hydra.run.dir=")


def resume_command(run_dir: Path, extra: list[str]) -> list[str]:
    """The train.py command line that resumes `run_dir`."""
    hydra = OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra
    task = [str(o) for o in OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")]
    keys = {o.partition("=")[0].lstrip("+~") for o in extra}
    task = [o for o in task if not o.startswith(SET_BY_RESUME)
            and o.partition("=")[0].lstrip("+~") not in keys]
    hydra_overrides = [str(o) for o in hydra.overrides.hydra if not str(o).startswith(SET_BY_RESUME)]
    config_dirs = [s.path for s in hydra.runtime.config_sources if s.provider == "command-line"]
    argv = [sys.executable, str(TRAIN)]
    for folder in config_dirs:
        argv += ["--config-dir", folder]
    return argv + [*task, *extra, *hydra_overrides, f"hydra.run.dir={run_dir}", "trainer.resume=true"]


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
