"""Seed groups: in a sweep that varies `seed`, the jobs that differ only in their seed form a
group, and a group, not one job, answers "is this setting better than that one".

For each group and each statistic (the objective, the final loss, every metric the jobs
recorded), over its completed jobs: n, the mean, the sample standard deviation (n - 1), the
minimum, the maximum, and the 95% confidence interval of the mean, mean +- t(0.975, n - 1) s /
sqrt(n), Student's t for n samples of a normal distribution. Groups rank by their mean objective;
two groups whose intervals overlap are not told apart by these seeds.

The curves: per step, the mean and sample std over the group's jobs of loss/train, loss/val and
every metric, read back from each job's event file (gradtrace.loggers.reading).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from gradtrace.loggers.reading import read_scalar
from gradtrace.sweeps.jobs import Job, swept_keys

SEED = "seed"
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Stat:
    """One statistic of a group over its completed jobs' values."""

    n: int
    mean: float
    std: float  # sample std (n - 1); NaN for n < 2
    min: float
    max: float
    low: float  # the 95% interval of the mean; NaN for n < 2
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        x = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
        n = len(x)
        if n == 0:
            return cls(0, *(math.nan,) * 6)
        mean = float(x.mean())
        if n < 2:
            return cls(1, mean, math.nan, mean, mean, math.nan, math.nan)
        std = float(x.std(ddof=1))
        half = t_quantile(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n)
        return cls(n, mean, std, float(x.min()), float(x.max()), mean - half, mean + half)

    def overlaps(self, other: Stat) -> bool:
        """Whether the two intervals share a point (False when either is undefined)."""
        return self.low <= other.high and other.low <= self.high


def t_quantile(p: float, df: int) -> float:
    """Student's t distribution's p-quantile with df degrees of freedom (scipy, imported here:
    only a sweep with seed groups pays its import)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


@dataclass
class Group:
    number: int  # 1, 2, ...: the rank by mean objective, best first
    jobs: list[Job]  # whose overrides are the same but for the seed
    stats: dict[str, Stat] = field(default_factory=dict)  # "objective", "final_loss", metric tags
    differs: list[str] = field(default_factory=list)  # key=value of the keys groups differ in
    _bands: dict[str, Band] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """What sets the group apart, e.g. "optim.lr=0.1"; "all" when the sweep varied only the
        seed."""
        return " ".join(self.differs) or "all"

    @property
    def completed(self) -> list[Job]:
        return [job for job in self.jobs if job.completed]

    @property
    def seeds(self) -> list[str]:
        return [job.override_values().get(SEED, "") for job in self.jobs]

    def band(self, tag: str) -> Band:
        """`tag` over the completed jobs, read once (the picture and the aggregate run share it)."""
        if tag not in self._bands:
            self._bands[tag] = band(self.completed, tag)
        return self._bands[tag]


def seed_groups(jobs: list[Job], metrics: Sequence[str]) -> Optional[list[Group]]:
    """The sweep's jobs grouped by everything but their seed, ranked best first by the mean
    objective (groups without a completed job last); None when the sweep did not vary `seed`."""
    swept = swept_keys(jobs)
    if SEED not in swept:
        return None
    keys = [key for key in swept if key != SEED]
    by_rest: dict[tuple[str, ...], list[Job]] = {}
    for job in sorted(jobs, key=lambda job: job.num):
        rest = tuple(sorted(o for o in job.overrides if o.partition("=")[0].lstrip("+") != SEED))
        by_rest.setdefault(rest, []).append(job)
    groups = []
    for members in by_rest.values():
        done = [job for job in members if job.completed]
        recorded = [(job.result.metrics or {}) if job.result else {} for job in done]
        stats = {"objective": Stat.of([job.score for job in done]),
                 "final_loss": Stat.of([job.final_loss for job in done])}
        stats.update({tag: Stat.of([m.get(tag, math.nan) for m in recorded]) for tag in metrics})
        values = members[0].override_values()
        differs = [f"{key}={values[key]}" for key in keys if key in values]
        groups.append(Group(0, members, stats, differs))
    mode = next((job.mode for job in jobs if job.result), "min")

    def key(group: Group) -> tuple[bool, float]:
        mean = group.stats["objective"].mean
        return (math.isnan(mean), 0.0 if math.isnan(mean) else (-mean if mode == "max" else mean))

    groups.sort(key=key)
    for number, group in enumerate(groups, start=1):
        group.number = number
    return groups


def overlapping(group: Group, groups: list[Group]) -> list[Group]:
    """The other groups whose objective's interval overlaps this group's."""
    mine = group.stats["objective"]
    return [g for g in groups if g is not group and mine.overlaps(g.stats["objective"])]


@dataclass(frozen=True)
class Band:
    """A tag's curve over a group's jobs: per step, how many jobs logged it, their mean and
    their sample std (NaN where fewer than two did)."""

    steps: np.ndarray  # [S] int64
    n: np.ndarray  # [S]
    mean: np.ndarray  # [S] float64
    std: np.ndarray  # [S]


def band(jobs: list[Job], tag: str) -> Band:
    """`tag` of each job's event file, aligned by step."""
    series = [read_scalar(job.folder, tag) for job in jobs]
    steps = np.concatenate([s.steps for s in series]) if series else np.zeros(0, np.int64)
    values = np.concatenate([s.values for s in series]) if series else np.zeros(0)
    keep = np.isfinite(values)
    steps, values = steps[keep], values[keep]
    unique, where = np.unique(steps, return_inverse=True)
    n = np.bincount(where, minlength=len(unique))
    mean = np.bincount(where, weights=values, minlength=len(unique)) / np.maximum(n, 1)
    # Two passes (the deviations from the mean, then their squares): no cancellation.
    squares = np.bincount(where, weights=(values - mean[where]) ** 2, minlength=len(unique))
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.where(n >= 2, np.sqrt(squares / (n - 1)), np.nan)
    return Band(unique.astype(np.int64), n, mean, std)
