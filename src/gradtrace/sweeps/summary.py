"""A sweep's summary: summary.csv, summary.md and summary.png in the sweep folder.

One row per job, best first: its overrides, status (completed, or failed with the first line of
its error), final and best loss, steps and wall time. Written at the end of every multirun by
gradtrace.sweeps.callback, and on demand by scripts/summarize.py.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from gradtrace.atomic import write_atomically
from gradtrace.sweeps.jobs import NOT_STARTED, UNFINISHED, Job, find_jobs, ranked, swept_keys
from gradtrace.sweeps.rerun import format_command, rerun_command
from gradtrace.sweeps.result import COMPLETED, FAILED, INTERRUPTED

log = logging.getLogger(__name__)


@dataclass
class Summary:
    sweep_dir: Path
    jobs: list[Job]  # best first
    files: list[Path]

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
        return f"{counts}; best: {describe_job(self.best)}"


def describe_job(job: Job) -> str:
    loss = f"{job.objective} {job.score:.6g}" if job.completed else job.status
    return f"job {job.num} ({job.label}), {loss}, folder {job.folder.name}"


def summarize(sweep_dir: str | Path, *, plot: bool = True) -> Summary:
    """Read every job of `sweep_dir` and write the summary files there."""
    sweep_dir = Path(sweep_dir)
    summary = Summary(sweep_dir, ranked(find_jobs(sweep_dir)), [])
    summary.files.append(write_csv(summary, sweep_dir / "summary.csv"))
    if plot:
        try:
            from gradtrace.sweeps.plots import plot_summary  # matplotlib, imported when needed

            path = plot_summary(summary.jobs, sweep_dir / "summary.png", title=sweep_dir.name)
            summary.files.append(path)
        except Exception:  # a picture is not worth losing the table and the exit code for
            log.exception("could not draw summary.png")
    summary.files.insert(1, write_markdown(summary, sweep_dir / "summary.md"))
    return summary


def _number(value: float | int | None, fmt: str = ".6g") -> str:
    return "" if value is None else format(value, fmt)


def metric_tags(jobs: list[Job]) -> list[str]:
    """Every metric tag some job recorded (accuracy/train, accuracy/val, ...), sorted."""
    return sorted({tag for job in jobs if job.result and job.result.metrics
                   for tag in job.result.metrics})


def _row(rank: int, job: Job, metrics: Sequence[str] = ()) -> dict[str, str]:
    result = job.result
    recorded = (result.metrics if result else None) or {}
    return {
        "rank": str(rank),
        "job": str(job.num),
        "overrides": job.label,
        "status": job.status if job.completed else f"{job.status}: {job.error_line}",
        "objective": _number(job.score if job.completed else None),
        **{tag: _number(recorded.get(tag)) for tag in metrics},
        "final_loss": _number(result.final_loss if result else None),
        "best_loss": _number(result.best_loss if result else None),
        "val_loss": _number(result.val_loss if result else None),
        "steps": _number(result.steps if result else None, "d"),
        "seconds": _number(result.seconds if result else None, ".3f"),
        "folder": job.folder.name,
    }


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
        writer.writerow(list(_row(rank, job, metrics).values()) + [values.get(k, "") for k in keys])
    return write_atomically(path, file.getvalue())


def write_markdown(summary: Summary, path: Path) -> Path:
    lines = [f"# Sweep {summary.sweep_dir.name}", ""]
    if summary.best is not None:
        lines += [f"**Best: {describe_job(summary.best)}.**", ""]
    lines += [f"{summary.counts()}.", ""]
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
