"""The commands that complete a sweep in place: every job that failed, never finished or never
started runs again in its own folder, resuming from its newest checkpoint when it has one.

Each is a single run of the installed gradtrace (`python -m gradtrace train`, never a script named
in the sweep folder, which could be anyone's code) with the job's overrides and config folders, into
`hydra.run.dir=<its folder>`. They run one after another on this machine, whatever launcher the
sweep had; a search sweeper (optuna) is not carried over: its trials rerun with the values it
picked.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from omegaconf import ListConfig, OmegaConf

from gradtrace.errors import ConfigError, one_line
from gradtrace.sweeps.jobs import Job

TRAIN = ["-m", "gradtrace", "train"]  # this Python's gradtrace, wherever it is installed
# Hydra overrides that make sense for one run of the job: not where or how a sweep ran it.
DROP_HYDRA = ("hydra/launcher", "hydra.launcher", "hydra/sweeper", "hydra.sweeper", "hydra.sweep.",
              "hydra.run.dir", "hydra.mode")


def rerun_command(job: Job, python: str = "python") -> list[str]:
    """argv that completes `job` in its own folder: from its checkpoint; or, with none, anew in
    its folder (which holds the failed attempt)."""
    from gradtrace.training import checkpoint  # torch: only for a job to run again

    resume = bool(checkpoint.checkpoints(job.folder))
    return _train_command(job, python) + ["trainer.resume=true" if resume else "trainer.overwrite=true"]


def _train_command(job: Job, python: str) -> list[str]:
    """argv that trains `job` again in its own folder, with its overrides and config folders."""
    hydra = _hydra_config(job)
    argv = [python, *_launcher(job.folder), *TRAIN]
    for source in hydra.get("runtime", {}).get("config_sources", []):
        if source.get("provider") == "command-line":
            argv += ["--config-dir", source["path"]]
    hydra_overrides = [o for o in hydra.get("overrides", {}).get("hydra", [])
                       if not str(o).startswith(DROP_HYDRA)]
    # Quoted for Hydra's override grammar: a sweep job's folder name holds '=' and ','.
    return argv + [*job.overrides, *map(str, hydra_overrides), f"hydra.run.dir='{job.folder}'"]


def resume_command(run_dir: Path, extra: list[str], python: str = sys.executable) -> list[str]:
    """argv that resumes the single run in `run_dir` (gradtrace resume), `extra` overrides
    added (replacing the run's own for the same keys)."""
    task = read_overrides(run_dir / ".hydra" / "overrides.yaml")
    keys = {o.partition("=")[0].lstrip("+~") for o in extra}
    task = [o for o in task if not o.startswith(("trainer.resume=", "trainer.overwrite="))
            and o.partition("=")[0].lstrip("+~") not in keys]
    return _train_command(Job(run_dir, 0, [*task, *extra], None), python) + ["trainer.resume=true"]


def read_overrides(path: Path) -> list[str]:
    """A run's .hydra/overrides.yaml: a YAML list of overrides; a ConfigError if it is not."""
    try:
        loaded = OmegaConf.load(path)
    except Exception as error:  # YAML's own errors are no ValueError
        raise ConfigError(f"{path} cannot be read as YAML: {one_line(error)}") from None
    if not isinstance(loaded, ListConfig) or not all(isinstance(o, str) for o in loaded):
        raise ConfigError(f"{path} must be a YAML list of overrides such as - optim.lr=0.1, got "
                          f"{type(OmegaConf.to_container(loaded)).__name__}")
    return [str(o) for o in loaded]


def _launcher(run_dir: Path) -> list[str]:
    """torchrun's arguments (as `python -m torch.distributed.run`) when the run's newest
    checkpoint was written by several processes: it resumes with as many; else none."""
    from gradtrace.training import checkpoint

    found = checkpoint.newest_valid(run_dir)
    processes = found[1].get("world_size", 1) if found else 1
    if processes == 1:
        return []
    return ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]


def format_command(argv: list[str]) -> str:
    return shlex.join(argv)


def _hydra_config(job: Job) -> dict[str, Any]:
    """The `hydra` node the job ran with (its .hydra/hydra.yaml), or for a job that never
    started the sweep's (multirun.yaml); empty when neither reads back."""
    for path in (job.folder / ".hydra" / "hydra.yaml", job.folder.parent / "multirun.yaml"):
        try:
            node = OmegaConf.to_container(OmegaConf.load(path).hydra, resolve=False)
            return {str(k): v for k, v in node.items()} if isinstance(node, dict) else {}
        except Exception:  # missing or damaged: try the next, else rerun with the defaults
            continue
    return {}
