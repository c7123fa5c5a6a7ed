"""The Hydra callback around every multirun. At the start it refuses a sweep folder that already
holds another sweep's jobs and records the job list (jobs.json), so that a sweep killed before
its last job can still be counted and completed. At the end it writes the sweep's summary, so
nobody has to remember a command, and makes the sweep exit with 1 when a job failed or the
summary could not be written.

Failed jobs return +inf instead of raising (gradtrace.commands.train), so that Hydra's sweepers go on with
the other jobs and call this at the end; the failure itself is in each job's result.json.
"""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path
from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gradtrace.errors import ConfigError, exit_code
from gradtrace.sweeps.jobs import JOB_LIST, write_job_list
from gradtrace.sweeps.rerun import format_command, rerun_command
from gradtrace.sweeps.summary import summarize

log = logging.getLogger("gradtrace.sweeps")
FAILED_SWEEP_EXIT_CODE = 1


class SweepSummary(Callback):
    def __init__(self, plot: bool = True) -> None:
        self.plot = plot  # summary.png too (needs matplotlib)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # What exists now (torch, Hydra, ...) lives as long as the sweep: out of the garbage
        # collector's sight, so that its collections and the one at exit do not walk it again.
        gc.freeze()
        sweep_dir = Path(config.hydra.sweep.dir)
        sweeper = str(config.hydra.sweeper.get("_target_", ""))
        if sweeper.endswith("GradtraceOptunaSweeper") and (sweep_dir / "optuna.db").exists():
            log.info("continuing the search stored in %s", sweep_dir / "optuna.db")
            return  # the same search, resumed: its jobs.json stands
        if (sweep_dir / JOB_LIST).exists() or any(sweep_dir.glob("*/.hydra")):
            error = ConfigError(
                f"hydra.sweep.dir={sweep_dir} already holds another sweep's jobs: pick another "
                f"folder (each start gets its own by default); to complete that sweep, run "
                f"gradtrace rerun-failed {sweep_dir}"
            )
            log.error("%s", error)
            sys.exit(exit_code(error))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        write_job_list(sweep_dir, sweeper, _grid(config) if sweeper.endswith("BasicSweeper")
                       else None, trials=config.hydra.sweeper.get("n_trials"))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        log.info("writing the sweep summary: reading each job's result and loss curve")
        try:
            summary = summarize(sweep_dir, plot=self.plot)
        except Exception as error:  # the jobs' results stay; say so and fail the sweep
            log.error("could not write the sweep summary of %s: %s: %s", sweep_dir,
                      type(error).__name__, error)
            sys.exit(FAILED_SWEEP_EXIT_CODE)
        log.info("sweep summary: %s", ", ".join(str(p) for p in summary.files))
        log.info("%s", summary.headline())
        if summary.failed:
            for job in summary.failed:
                log.error("job %d (%s) %s: %s", job.num, job.label, job.status, job.error_line)
            log.error("complete the sweep: gradtrace rerun-failed %s", sweep_dir)
            for job in summary.failed:
                log.info("  which runs: %s", format_command(rerun_command(job)))
            # SystemExit, not an exception: Hydra turns a callback's exceptions into warnings.
            sys.exit(FAILED_SWEEP_EXIT_CODE)


def _grid(config: DictConfig) -> Optional[list[list[str]]]:
    """The basic sweeper's jobs, in its order (hydra.job.num): the grid of the command line's
    sweep overrides. None when it cannot be worked out here."""
    try:
        overrides = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
        batches = BasicSweeper.split_arguments(overrides, None)
        return [list(job) for batch in batches for job in batch]
    except Exception as error:  # e.g. a sweep over glob(): the summary then counts folders only
        log.warning("could not record the sweep's job list (%s)", error)
        return None
