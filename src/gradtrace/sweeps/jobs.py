"""The jobs of a sweep folder, read from what each job left in its own folder.

A job folder is any folder under the sweep folder with `.hydra/overrides.yaml` (Hydra writes it
before the job starts) and, once the job has ended, `result.json` (scripts/train.py writes it).
This works the same whichever launcher or sweeper ran the jobs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from gradtrace.sweeps.result import COMPLETED, FAILED, JobResult, read_result

MISSING = "missing"  # no result.json: the job is still running, or was killed


@dataclass
class Job:
    folder: Path
    num: int  # hydra.job.num, the number in the folder's name
    overrides: list[str]  # as typed or chosen by the sweeper, e.g. ["optim.lr=0.1"]
    result: Optional[JobResult]

    @property
    def status(self) -> str:
        return self.result.status if self.result is not None else MISSING

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @property
    def error_line(self) -> str:
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


def find_jobs(sweep_dir: str | Path) -> list[Job]:
    """Every job under `sweep_dir`, in job-number order. Raises FileNotFoundError if none."""
    sweep_dir = Path(sweep_dir)
    jobs = []
    for overrides_file in sweep_dir.glob("*/.hydra/overrides.yaml"):
        folder = overrides_file.parent.parent
        hydra_file = folder / ".hydra" / "hydra.yaml"
        num = OmegaConf.load(hydra_file).hydra.job.num if hydra_file.is_file() else -1
        overrides = [str(o) for o in OmegaConf.load(overrides_file)]
        jobs.append(Job(folder=folder, num=int(num), overrides=overrides, result=read_result(folder)))
    if not jobs:
        raise FileNotFoundError(
            f"{sweep_dir} holds no sweep jobs (folders with .hydra/overrides.yaml): "
            f"pass a folder under outputs/multirun/"
        )
    return sorted(jobs, key=lambda job: (job.num, job.folder.name))


def ranked(jobs: list[Job]) -> list[Job]:
    """Completed jobs by their objective (final loss unless the config chose another), lowest
    first; then failed ones, then unfinished ones."""
    order = {COMPLETED: 0, FAILED: 1, MISSING: 2}
    return sorted(jobs, key=lambda j: (order.get(j.status, 1), j.score if j.completed else 0, j.num))


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
