"""A sweep's summary: summary.csv, summary.md and summary.png in the sweep folder.

One row per job, best first: its overrides, status (completed, or failed with the first line of
its error), final and best loss, steps and wall time. A sweep that varies `seed` also gets one row
per seed group (gradtrace.sweeps.groups) in summary_groups.csv and summary.md, bands in
summary.png, and an aggregate TensorBoard run per group (gradtrace.sweeps.aggregate). Written at
the end of every multirun by gradtrace.sweeps.callback, and on demand by `gradtrace summarize`.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from gradtrace.atomic import write_atomically
from gradtrace.sweeps.aggregate import write_aggregate
from gradtrace.sweeps.groups import SEED, Group, Stat, overlapping, seed_groups
from gradtrace.sweeps.jobs import NOT_STARTED, UNFINISHED, Job, find_jobs, ranked, swept_keys
from gradtrace.sweeps.rerun import format_command, rerun_command
from gradtrace.sweeps.result import COMPLETED, FAILED, INTERRUPTED

log = logging.getLogger(__name__)


@dataclass
class Summary:
    sweep_dir: Path
    jobs: list[Job]  # best first
    files: list[Path]
    groups: Optional[list[Group]] = None  # best first; None unless the sweep varied `seed`

    @property
    def best(self) -> Job | None:
        return self.jobs[0] if self.jobs and self.jobs[0].completed else None

    @property
    def failed(self) -> list[Job]:
        return [job for job in self.jobs if not job.completed]

    def counts(self) -> str:
        """e.g. "5 jobs: 2 completed, 1 failed, 1 unfinished, 1 not started"."""
        statuses = [job.status for job in self.jobs]
        parts = [f"{statuses.count(s)} {s}" for s in (COMPLETED, FAILED)]
        parts += [f"{statuses.count(s)} {s}" for s in (INTERRUPTED, UNFINISHED, NOT_STARTED)
                  if s in statuses]
        return f"{len(self.jobs)} jobs: " + ", ".join(parts)

    def headline(self) -> str:
        counts = self.counts()
        if self.best is None:
            return f"{counts}; no job completed"
        if self.groups:
            return f"{counts}; best group: {describe_group(self.groups[0], self.jobs)}"
        return f"{counts}; best: {describe_job(self.best)}"


def describe_job(job: Job) -> str:
    loss = f"{job.objective} {job.score:.6g}" if job.completed else job.status
    return f"job {job.num} ({job.label}), {loss}, folder {job.folder.name}"


def describe_group(group: Group, jobs: list[Job]) -> str:
    """e.g. "1 (optim.lr=0.1), loss/final mean 0.264 +- 0.00655 over 3 seeds"."""
    stat = group.stats["objective"]
    return (f"{group.number} ({group.label}), {jobs[0].objective} mean {_plus_minus(stat)} over "
            f"{stat.n} seed{'s' if stat.n != 1 else ''}")


def summarize(sweep_dir: str | Path, *, plot: bool = True) -> Summary:
    """Read every job of `sweep_dir` and write the summary files there."""
    sweep_dir = Path(sweep_dir)
    jobs = ranked(find_jobs(sweep_dir))
    summary = Summary(sweep_dir, jobs, [], seed_groups(jobs, metric_tags(jobs)))
    summary.files.append(write_csv(summary, sweep_dir / "summary.csv"))
    if summary.groups is not None:
        summary.files.append(write_groups_csv(summary, sweep_dir / "summary_groups.csv"))
        _also(summary, "the aggregate runs", lambda: write_aggregate(
            sweep_dir, summary.groups or [], metric_tags(jobs)))
    if plot:
        from gradtrace.sweeps.paths import PICTURE, plot_paths
        from gradtrace.sweeps.plots import plot_summary  # matplotlib, imported when needed

        _also(summary, "summary.png", lambda: plot_summary(
            summary.jobs, sweep_dir / "summary.png", title=sweep_dir.name, groups=summary.groups))
        _also(summary, PICTURE, lambda: plot_paths(summary.jobs, sweep_dir / PICTURE,
                                                   title=sweep_dir.name))
    summary.files.insert(1, write_markdown(summary, sweep_dir / "summary.md"))
    return summary


def _also(summary: Summary, what: str, write: Callable[[], Optional[Path]]) -> None:
    """Write one more output; a failure is logged, not raised: a picture or the aggregate runs
    are not worth losing the tables and the exit code for."""
    try:
        path = write()
    except Exception:
        log.exception("could not write %s", what)
        return
    if path is not None:
        summary.files.append(path)


def _number(value: float | int | None, fmt: str = ".6g") -> str:
    return "" if value is None else format(value, fmt)


def metric_tags(jobs: list[Job]) -> list[str]:
    """Every metric tag some job recorded (accuracy/train, accuracy/val, ...), sorted."""
    return sorted({tag for job in jobs if job.result and job.result.metrics
                   for tag in job.result.metrics})


def _row(rank: int, job: Job, metrics: Sequence[str] = (), *, precise: bool = False
         ) -> dict[str, str]:
    """precise: every number with full precision (the CSV), not to 6 digits (the Markdown)."""
    result = job.result
    recorded = (result.metrics if result else None) or {}
    number = _exact if precise else _number
    return {
        "rank": str(rank),
        "job": str(job.num),
        "overrides": job.label,
        "status": job.status if job.completed else f"{job.status}: {job.error_line}",
        "objective": number(job.score if job.completed else None),
        **{tag: number(recorded.get(tag)) for tag in metrics},
        "final_loss": number(result.final_loss if result else None),
        "best_loss": number(result.best_loss if result else None),
        "val_loss": number(result.val_loss if result else None),
        "steps": _number(result.steps if result else None, "d"),
        "seconds": _number(result.seconds if result else None, ".3f"),
        "folder": job.folder.name,
    }


def _exact(value: float | None) -> str:
    """Full precision: the shortest text that reads back as the same float; empty for None."""
    return "" if value is None else repr(float(value))


def write_csv(summary: Summary, path: Path) -> Path:
    """One row per job, best first; one column per swept key besides the overrides column."""
    keys = swept_keys(summary.jobs)
    metrics = metric_tags(summary.jobs)
    file = io.StringIO(newline="")
    writer = csv.writer(file)
    header = list(_row(1, summary.jobs[0], metrics)) + keys
    writer.writerow(header)
    for rank, job in enumerate(summary.jobs, start=1):
        values = job.override_values()
        row = _row(rank, job, metrics, precise=True)
        writer.writerow(list(row.values()) + [values.get(k, "") for k in keys])
    return write_atomically(path, file.getvalue())


STATS = ("mean", "std", "min", "max", "ci95_low", "ci95_high")


def _full(value: float) -> str:
    """Full precision; empty for NaN (a statistic that is not defined)."""
    return "" if math.isnan(value) else _exact(value)


def group_stat_names(summary: Summary) -> list[str]:
    return ["objective", "final_loss", *metric_tags(summary.jobs)]


def write_groups_csv(summary: Summary, path: Path) -> Path:
    """One row per seed group, best first: n (its completed jobs), its overrides, and for the
    objective, the final loss and every metric, <name>_mean, _std, _min, _max, _ci95_low and
    _ci95_high; `overlaps`: the groups whose objective interval overlaps this one's."""
    groups = summary.groups or []
    keys = [k for k in swept_keys(summary.jobs) if k != SEED]
    names = group_stat_names(summary)
    file = io.StringIO(newline="")
    writer = csv.writer(file)
    writer.writerow(["group", "n", "jobs", "overrides", "seeds", *keys,
                     *(f"{name}_{stat}" for name in names for stat in STATS), "overlaps"])
    for group in groups:
        values = group.jobs[0].override_values()
        cells = []
        for name in names:
            st = group.stats[name]
            cells += [_full(v) for v in (st.mean, st.std, st.min, st.max, st.low, st.high)]
        writer.writerow([group.number, group.stats["objective"].n, len(group.jobs), group.label,
                         " ".join(group.seeds), *(values.get(k, "") for k in keys), *cells,
                         " ".join(str(g.number) for g in overlapping(group, groups))])
    return write_atomically(path, file.getvalue())


def group_lines(summary: Summary) -> list[str]:
    """summary.md's section on the seed groups: the ranking by mean and what it can tell."""
    groups = summary.groups or []
    objective = summary.jobs[0].objective if summary.jobs else "loss/final"
    mode = summary.jobs[0].mode if summary.jobs else "min"
    metrics = metric_tags(summary.jobs)
    lines = ["## Seed groups", "",
             f"Jobs that differ only in `seed`, ranked by the mean of {objective} ({mode}); "
             "mean +- sample std, and the 95% interval of the mean (Student's t).", ""]
    columns = ["group", "n", "overrides", f"{objective} mean +- std", "95% interval",
               "final loss mean +- std", *(f"{tag} mean" for tag in metrics), "overlaps"]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for group in groups:
        o, f = group.stats["objective"], group.stats["final_loss"]
        cells = [str(group.number), str(o.n), group.label, _plus_minus(o),
                 "" if math.isnan(o.low) else f"[{o.low:.6g}, {o.high:.6g}]", _plus_minus(f),
                 *(_number(group.stats[tag].mean) for tag in metrics),
                 " ".join(str(g.number) for g in overlapping(group, groups)) or "none"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if len(groups) >= 2 and groups[0].stats["objective"].n:
        best, close = groups[0], overlapping(groups[0], groups)
        if close:
            names = ", ".join(f"{g.number} ({g.label})" for g in close)
            lines += ["", f"Group 1 ({best.label}) has the best mean, but its 95% interval "
                      f"overlaps that of group {names}: these seeds do not tell them apart."]
        elif not math.isnan(best.stats["objective"].low):
            lines += ["", f"Group 1 ({best.label}) is best: its 95% interval overlaps no other "
                      "group's."]
    return lines


def _plus_minus(stat: Stat) -> str:
    if stat.n == 0:
        return ""
    return f"{stat.mean:.6g}" + ("" if math.isnan(stat.std) else f" +- {stat.std:.6g}")


def write_markdown(summary: Summary, path: Path) -> Path:
    lines = [f"# Sweep {summary.sweep_dir.name}", ""]
    if summary.best is not None and summary.groups:
        lines += [f"**Best group: {describe_group(summary.groups[0], summary.jobs)}.** Best job: "
                  f"{describe_job(summary.best)}.", ""]
    elif summary.best is not None:
        lines += [f"**Best: {describe_job(summary.best)}.**", ""]
    lines += [f"{summary.counts()}.", ""]
    if summary.groups is not None:
        lines += [*group_lines(summary), "", "## Jobs", ""]
    metrics = metric_tags(summary.jobs)
    objective = summary.jobs[0].objective if summary.jobs else "loss/final"
    mode = summary.jobs[0].mode if summary.jobs else "min"
    columns = ["rank", "job", "overrides", "status", f"{objective} ({mode})", *metrics,
               "final loss", "best loss", "val loss", "steps", "wall time (s)"]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for rank, job in enumerate(summary.jobs, start=1):
        row = list(_row(rank, job, metrics).values())[:-1]  # all but the folder
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    if any(path.name == "summary.png" for path in summary.files):
        lines += ["", "![loss curves](summary.png)"]
    if any(path.name == "summary_paths.png" for path in summary.files):
        lines += ["", "![every job's path](summary_paths.png)"]
    if summary.failed:
        lines += ["", "## Jobs to run again", ""]
        for job in summary.failed:
            see = f"; see `{job.folder.name}/train.log`" if job.started else ""
            lines.append(f"- job {job.num} ({job.label}): {job.status}: {job.error_line}{see}")
        lines += ["", "Complete the sweep in place (each job in its own folder, from its checkpoint "
                  "when it has one):", "", f"    gradtrace rerun-failed {summary.sweep_dir}",
                  "", "which runs:", ""]
        lines += [f"    {format_command(rerun_command(job))}" for job in summary.failed]
    return write_atomically(path, "\n".join(lines) + "\n")
