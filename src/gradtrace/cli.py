"""What scripts/train.py runs for each job: the experiment, then an exit code for a single run
or a number for a sweeper.

A failed run prints one line and exits with 2 (a bad config value or a user's object that cannot
be built), 3 (NaN/Inf, see optim.lr) or 4 (trainer.grad_check.strict and a gradient disagreed with
its check). A failed job of a sweep (-m) returns +inf instead, so that the other jobs go on and a
minimising sweeper ranks it last; the sweep's summary lists it, and the sweep exits with 1.
SIGTERM and SIGINT stop a run after its current step, with a checkpoint: one line, exit 143 or 130
(a sweep stops there too).
"""

from __future__ import annotations

import logging
import math
import os
import sys

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from gradtrace.errors import Interrupted, exit_code
from gradtrace.experiment import describe, run_experiment

log = logging.getLogger("gradtrace")


def main(cfg: DictConfig) -> float:
    """The Hydra task: run one job, return its objective (config key `objective`)."""
    # A user's own classes (model._target_=mypackage.MLP) import from the folder they run from,
    # as with `python -m`; appended, so it never shadows an installed package.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    hydra_config = HydraConfig.get()
    multirun = hydra_config.mode == RunMode.MULTIRUN
    try:
        outcome = run_experiment(cfg, hydra_config.runtime.output_dir, hydra_config.runtime.choices)
    except Exception as error:
        return give_up(error, multirun=multirun)
    return outcome.objective


def give_up(error: Exception, *, multirun: bool) -> float:
    """One line and the exit code for a single run; +inf for a sweep job, so the sweep goes on."""
    code = exit_code(error)
    if isinstance(error, Interrupted):  # not a failure of this job: the user stops everything
        log.warning("%s", error)
        sys.exit(code)
    if code is None and not multirun:
        raise error  # a bug, not a bad value or a divergence: Hydra prints the traceback
    log.error("%s", describe(error), exc_info=error if code is None else None)
    if multirun:
        return math.inf
    sys.exit(code)
