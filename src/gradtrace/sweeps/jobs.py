"""The jobs of a sweep folder: the job list the sweep recorded when it started (jobs.json), and
what each job left in its own folder.

A job folder is any folder under the sweep folder with `.hydra/overrides.yaml` (Hydra writes it
before the job starts) and, once the job has ended, `result.json` (`gradtrace train` writes it).
This works the same whichever launcher ran the jobs. A job of the recorded list without a folder
never started (the sweep was killed first); a folder without result.json never finished.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from gradtrace.atomic import write_atomically
from gradtrace.setup.folders import folder_suffix
from gradtrace.sweeps.result import COMPLETED, FAILED, INTERRUPTED, JobResult, read_result

UNFINISHED = "unfinished"  # a folder but no result.json: still running, or killed
NOT_STARTED = "not started"  # in the sweep's job list, but no folder: the sweep stopped first
JOB_LIST = "jobs.json"


@dataclass
class Job:
    folder: Path  # where it ran, or, if it never started, where it will
    num: int  # hydra.job.num, the number in the folder's name
    overrides: list[str]  # as typed or chosen by the sweeper, e.g. ["optim.lr=0.1"]
    result: Optional[JobResult]
    started: bool = True

    @property
    def status(self) -> str:
        if self.result is not None:
            return self.result.status
        return UNFINISHED if self.started else NOT_STARTED

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @property
    def error_line(self) -> str:
        if self.result is None and not self.started:
            return "never started: the sweep stopped before it"
        if self.result is None:
            return "no result.json: the job did not finish (still running, or killed)"
        return self.result.error_line

    @property
    def final_loss(self) -> float:
        """The final loss, NaN unless completed."""
        if self.result is None or self.result.final_loss is None:
            return math.nan
        return self.result.final_loss

    @property
    def objective(self) -> str:
        """What the sweep minimised and the summary ranks by (the config key `objective`)."""
        return (self.result.objective if self.result else None) or "loss/final"

    @property
    def mode(self) -> str:
        """"min" or "max": which way the objective is better."""
        return self.result.mode if self.result else "min"

    @property
    def score(self) -> float:
        """The objective's value, NaN unless completed."""
        value = self.result.objective_value if self.result is not None else None
        return math.nan if value is None or not self.completed else value

    @property
    def label(self) -> str:
        return " ".join(self.overrides) or "(no overrides)"

    def override_values(self) -> dict[str, str]:
        """`key=value` overrides as {key: value}; `+key`/`++key` count as key."""
        out = {}
        for override in self.overrides:
            key, sep, value = override.partition("=")
            if sep:
                out[key.lstrip("+")] = value
        return out


def write_job_list(sweep_dir: Path, sweeper: str, jobs: Optional[list[list[str]]],
                   trials: Optional[int] = None) -> Path:
    """jobs.json: the jobs a sweep will run (a grid's overrides, job by job), or for a search
    the number of trials, written when it starts."""
    data = {"sweeper": sweeper, "jobs": jobs, "trials": trials}
    return write_atomically(sweep_dir / JOB_LIST, json.dumps(data, indent=1) + "\n")


def read_job_list(sweep_dir: Path) -> dict[str, Any]:
    """What jobs.json recorded; empty when there is none (or it cannot be read)."""
    try:
        data = json.loads((sweep_dir / JOB_LIST).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def planned_folder(sweep_dir: Path, num: int, overrides: list[str]) -> Path:
    """The folder Hydra gives job `num` (configs/train.yaml's hydra.sweep.subdir)."""
    return sweep_dir / f"{num}{folder_suffix(','.join(sorted(overrides)))}"


def find_jobs(sweep_dir: str | Path) -> list[Job]:
    """Every job of `sweep_dir`, started or not, in job-number order. Raises FileNotFoundError if
    there is none."""
    sweep_dir = Path(sweep_dir)
    jobs = []
    for overrides_file in sweep_dir.glob("*/.hydra/overrides.yaml"):
        folder = overrides_file.parent.parent
        overrides = [str(o) for o in OmegaConf.load(overrides_file)]
        # What a rerun adds: not part of the job.
        overrides = [o for o in overrides if not o.startswith(("trainer.resume=", "trainer.overwrite="))]
        jobs.append(Job(folder, _job_num(folder), overrides, read_result(folder)))
    planned = read_job_list(sweep_dir).get("jobs") or []
    started = {job.num for job in jobs}
    for num, overrides in enumerate(planned):
        if num not in started:
            folder = planned_folder(sweep_dir, num, overrides)
            jobs.append(Job(folder, num, list(overrides), None, started=False))
    if not jobs:
        raise FileNotFoundError(
            f"{sweep_dir} holds no sweep jobs (folders with .hydra/overrides.yaml): "
            f"pass a folder under outputs/multirun/"
        )
    return sorted(jobs, key=lambda job: (job.num, job.folder.name))


def _job_num(folder: Path) -> int:
    """The number the folder's name starts with; hydra.yaml's job.num if it has none."""
    match = re.match(r"^(\d+)(_|$)", folder.name)
    if match:
        return int(match.group(1))
    try:
        return int(OmegaConf.load(folder / ".hydra" / "hydra.yaml").hydra.job.num)
    except Exception:
        return -1


def ranked(jobs: list[Job]) -> list[Job]:
    """Completed jobs by their objective (final loss unless the config chose another), best
    first (lowest, or highest for objective.mode=max; a NaN objective last); then failed ones,
    then unfinished ones."""
    order = {COMPLETED: 0, FAILED: 1, INTERRUPTED: 1, UNFINISHED: 2, NOT_STARTED: 3}

    def key(job: Job) -> tuple[int, bool, float, int]:
        score = job.score if job.completed else 0.0
        missing = math.isnan(score)
        return (order.get(job.status, 1), missing, 0.0 if missing else
                (-score if job.mode == "max" else score), job.num)

    return sorted(jobs, key=key)


def swept_keys(jobs: list[Job]) -> list[str]:
    """The override keys whose values differ between jobs, in the order they first appear."""
    values: dict[str, set[str | None]] = {}
    for job in jobs:
        for key in job.override_values():
            values.setdefault(key, set())
    for job in jobs:
        job_values = job.override_values()
        for key in values:
            values[key].add(job_values.get(key))
    return [key for key, seen in values.items() if len(seen) > 1]


def numeric(values: list[str]) -> Optional[list[float]]:
    """`values` as floats, or None when any one is not a number."""
    try:
        return [float(v) for v in values]
    except ValueError:
        return None
