"""The command lines that run a sweep's failed jobs again, with the launcher they ran under.

When the failed jobs' overrides form a grid (say optim.lr=1000,2000), one `-m` command reruns
them all; otherwise one command per job, since a Hydra sweep is always a grid. A search sweeper
(optuna) is not carried over: its failed trials are rerun as the fixed values it had picked.
"""

from __future__ import annotations

import itertools
import shlex
from pathlib import Path

from omegaconf import OmegaConf

from gradtrace.sweeps.jobs import Job

KEEP_HYDRA_OVERRIDES = ("hydra/launcher=", "hydra.launcher.")  # where and how jobs ran


def rerun_commands(failed: list[Job], python: str = "python") -> list[list[str]]:
    """argv lists that rerun `failed` (jobs that failed or never finished)."""
    if not failed:
        return []
    script = _train_script()
    launcher = _launcher_overrides(failed[0])
    grid = _as_grid([job.overrides for job in failed])
    if grid is not None:
        return [[python, script, "-m", *launcher, *grid]]
    return [[python, script, "-m", *launcher, *job.overrides] for job in failed]


def format_command(argv: list[str]) -> str:
    return shlex.join(argv)


def _train_script() -> str:
    """This checkout's scripts/train.py, never one named in a sweep folder (which could be
    anyone's code); relative to the current folder when inside it, as users type it."""
    script = Path(__file__).resolve().parents[3] / "scripts" / "train.py"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _launcher_overrides(job: Job) -> list[str]:
    """The job's launcher settings; none when its .hydra/hydra.yaml is missing or damaged."""
    try:
        overrides = OmegaConf.load(job.folder / ".hydra" / "hydra.yaml").hydra.overrides.hydra
    except Exception:  # a damaged folder: rerun it with the default launcher
        return []
    return [str(o) for o in overrides if str(o).startswith(KEEP_HYDRA_OVERRIDES)]


def _as_grid(override_sets: list[list[str]]) -> list[str] | None:
    """`key=v1,v2` overrides whose grid is exactly these sets, or None if there is no such grid."""
    keys = [o.partition("=")[0] for o in override_sets[0]]
    values: dict[str, list[str]] = {key: [] for key in keys}
    rows = set()
    for overrides in override_sets:
        pairs = [o.partition("=") for o in overrides]
        if [key for key, _, _ in pairs] != keys or any(not sep for _, sep, _ in pairs):
            return None
        for key, _, value in pairs:
            if "," in value:  # a list value: "a,b" would read as two sweep values
                return None
            if value not in values[key]:
                values[key].append(value)
        rows.add(tuple(value for _, _, value in pairs))
    if rows != set(itertools.product(*values.values())) or len(rows) != len(override_sets):
        return None
    return [f"{key}={','.join(vals)}" for key, vals in values.items()]
