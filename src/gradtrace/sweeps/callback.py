"""The Hydra callback that ends every multirun (configs/train.yaml, hydra.callbacks): it writes
the sweep's summary, so nobody has to remember a command, and makes the sweep exit with 1 when a
job failed.

Failed jobs return +inf instead of raising (scripts/train.py), so that Hydra's sweepers go on
with the other jobs and call this at the end; the failure itself is in each job's result.json.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gradtrace.sweeps.rerun import format_command, rerun_commands
from gradtrace.sweeps.summary import summarize

log = logging.getLogger("gradtrace.sweeps")
FAILED_SWEEP_EXIT_CODE = 1


class SweepSummary(Callback):
    def __init__(self, plot: bool = True) -> None:
        self.plot = plot  # summary.png too (needs matplotlib)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        summary = summarize(sweep_dir, plot=self.plot)
        log.info("sweep summary: %s", ", ".join(str(p) for p in summary.files))
        log.info("%s", summary.headline())
        if summary.failed:
            for job in summary.failed:
                log.error("job %d (%s) %s: %s", job.num, job.label, job.status, job.error_line)
            log.error("rerun the failed jobs: python scripts/rerun_failed.py %s", sweep_dir)
            for argv in rerun_commands(summary.failed):
                log.info("  which runs: %s", format_command(argv))
            # SystemExit, not an exception: Hydra turns a callback's exceptions into warnings.
            sys.exit(FAILED_SWEEP_EXIT_CODE)
