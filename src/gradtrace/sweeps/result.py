"""result.json: what one run ended with, written into its folder by `gradtrace train`.

Every run writes it, completed or failed, so that a sweep's summary reads one small file per job
instead of parsing logs, also for jobs that ran on other machines (submitit) or in other
processes (joblib).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from gradtrace.atomic import write_atomically

FILENAME = "result.json"
COMPLETED = "completed"
FAILED = "failed"
INTERRUPTED = "interrupted"  # a stop signal; a checkpoint holds where it stood


@dataclass
class JobResult:
    status: str  # COMPLETED, FAILED or INTERRUPTED
    # Why the run ended before trainer.steps: "signal" (INTERRUPTED), or an instrument's reason
    # such as "early_stopping" (COMPLETED); None: it ran every step, or failed.
    stopped: Optional[str] = None
    error: Optional[str] = None  # the failure's message ("ExceptionType: ..." when unexpected)
    final_loss: Optional[float] = None  # the loss of the last step (completed runs only)
    best_loss: Optional[float] = None
    val_loss: Optional[float] = None  # on the validation samples after the last step, if any
    objective: Optional[str] = None  # objective.metric, the tag the summary ranks by
    mode: str = "min"  # objective.mode: "min" or "max", which way is better
    value: Optional[float] = None  # the objective's value: that tag's last logged value
    best_value: Optional[float] = None  # the best logged value of the tag the objective sums up
    best_step: Optional[int] = None  # (loss/train for loss/final, ...), and the step of it
    metrics: Optional[dict[str, float]] = None  # each metric tag's last value: accuracy/val, ...
    steps: Optional[int] = None  # optimiser steps done
    seconds: Optional[float] = None  # wall time of the whole job: checks, build, train, close
    train_seconds: Optional[float] = None  # of which the training loop
    threads: Optional[int] = None  # torch CPU threads the job ran with (in each process)
    world_size: int = 1  # processes that trained it together (torchrun, gradtrace.training.distributed)
    # Each instrument's own cost: name -> {"seconds", "calls" (all hooks), "hooks": {hook: s}}.
    instruments: Optional[dict[str, dict[str, Any]]] = None

    @property
    def objective_value(self) -> Optional[float]:
        """The objective's value (for results written before `value` was: from the losses)."""
        if self.value is not None:
            return self.value
        return objective_of(self.objective or "loss/final", self.final_loss, self.best_loss,
                            self.val_loss)

    @property
    def error_line(self) -> str:
        """The first line of the error, for tables."""
        return (self.error or "").strip().splitlines()[0] if self.error else ""


def objective_of(
    objective: str, final: Optional[float], best: Optional[float], val: Optional[float]
) -> Optional[float]:
    """The value of a loss objective (loss/final, loss/best, loss/val_final) among a run's
    losses; None for any other."""
    return {"loss/final": final, "loss/best": best, "loss/val_final": val}.get(objective)


def write_result(run_dir: str | Path, result: JobResult) -> Path:
    """Write result.json atomically: a full disk leaves no empty or partial file."""
    # Non-finite numbers become null: JSON has no NaN, and a completed run's losses are finite.
    data = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in asdict(result).items()
    }
    return write_atomically(Path(run_dir) / FILENAME, json.dumps(data, indent=2) + "\n")


NUMBERS = ("final_loss", "best_loss", "val_loss", "value", "best_value", "seconds",
           "train_seconds")
INTEGERS = ("steps", "best_step", "threads", "world_size")
TEXTS = ("stopped", "error", "objective")


def _check_types(data: dict[str, Any]) -> None:
    """Each key of result.json holds what gradtrace writes there (null where it may)."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    wrong = [key for key in NUMBERS if data.get(key) is not None and not number(data[key])]
    wrong += [key for key in INTEGERS if data.get(key) is not None
              and (not isinstance(data[key], int) or isinstance(data[key], bool))]
    wrong += [key for key in TEXTS if data.get(key) is not None and not isinstance(data[key], str)]
    if data["status"] not in (COMPLETED, FAILED, INTERRUPTED):
        wrong.append("status")
    if data.get("mode", "min") not in ("min", "max"):
        wrong.append("mode")
    for key in ("metrics", "instruments"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            wrong.append(key)
    if isinstance(data.get("metrics"), dict) and not all(map(number, data["metrics"].values())):
        wrong.append("metrics")
    if wrong:
        raise ValueError(f"{wrong[0]} holds {data[wrong[0]]!r}, not what gradtrace writes there")


def read_result(run_dir: str | Path) -> Optional[JobResult]:
    """The run's result, or None when it has none (still running, or killed). A file that cannot
    be read as a result (damaged, or from elsewhere) is a failed job that says so."""
    path = Path(run_dir) / FILENAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        fields = {f.name for f in dataclasses.fields(JobResult)}
        if not isinstance(data, dict) or "status" not in data or not set(data) <= fields:
            raise ValueError("not a gradtrace result")
        _check_types(data)
        return JobResult(**data)
    except (OSError, ValueError) as error:  # JSONDecodeError is a ValueError
        return JobResult(FAILED, error=f"{path} is damaged ({error}); rerun the job")
