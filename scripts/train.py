"""Train one configured experiment: python scripts/train.py model=linear optim.lr=0.1

Reads like a table of contents: check and build, train, always close the logger, report. Returns
the final loss so that a Hydra sweeper can minimise it, and writes result.json into the run folder.

A failed run prints one line and exits with 2 (a bad config value), 3 (NaN/Inf, see
optim.lr) or 4 (trainer.grad_check.strict and a gradient disagreed with its check). A failed
job of a sweep (-m) returns +inf instead, so that the other jobs go on and a minimising sweeper
ranks it last; the sweep's summary lists it, and the sweep exits with 1.
"""

from __future__ import annotations

import logging
import math
import sys
import time

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gradtrace.build import build_logger, build_run, hparams
from gradtrace.config import ConfigError, register
from gradtrace.insight.gradcheck import GradCheckError
from gradtrace.report import summary_lines
from gradtrace.sweeps.result import COMPLETED, FAILED, JobResult, write_result
from gradtrace.trainer import NonFiniteError, TrainResult, train

log = logging.getLogger("gradtrace")
EXIT_CODES = {ConfigError: 2, NonFiniteError: 3, GradCheckError: 4}  # a user can cause and fix


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float:
    hydra_config = HydraConfig.get()
    run_dir = hydra_config.runtime.output_dir
    start = time.perf_counter()
    try:
        result = run_experiment(cfg, run_dir, hydra_config.runtime.choices)
    except Exception as error:
        seconds = time.perf_counter() - start
        write_result(run_dir, JobResult(FAILED, error=describe(error), seconds=seconds))
        return give_up(error, multirun=hydra_config.mode == RunMode.MULTIRUN)
    write_result(
        run_dir,
        JobResult(
            COMPLETED,
            final_loss=result.final_loss,
            best_loss=result.best_loss,
            steps=result.steps,
            seconds=time.perf_counter() - start,
            train_seconds=result.seconds,
            threads=torch.get_num_threads(),
        ),
    )
    return result.final_loss


def run_experiment(cfg: DictConfig, run_dir: str, choices: dict[str, str | None]) -> TrainResult:
    run = build_run(cfg)  # every check happens here: before step 0 and any event file
    logger = build_logger(cfg, run_dir, run.probe)
    try:
        logger.log_config(OmegaConf.to_yaml(cfg, resolve=True), hparams(cfg, choices))
        result = train(
            model=run.model,
            loss_fn=run.loss_fn,
            optimizer=run.optimizer,
            batches=run.batches,
            probe=run.probe,
            logger=logger,
            steps=run.config.trainer.steps,
            log_every_steps=run.config.trainer.log_every_steps,
            histogram_every_steps=run.config.trainer.histogram_every_steps,
            grad_check=run.grad_check,
            explainer=run.explainer,
            trajectory=run.trajectory,
        )
        logger.log_summary(
            result.steps - 1, {"loss/final": result.final_loss, "loss/best": result.best_loss}
        )
        if run.landscape is not None:  # the loss around the path: landscape.png, TensorBoard
            png = run.landscape.save(run.trajectory, run_dir)
            logger.log_image(result.steps - 1, "landscape", png)
    finally:
        logger.close()  # flushes every buffered step, also when training failed
    for line in summary_lines(result, run.model, run_dir):
        log.info("%s", line)
    return result


def describe(error: Exception) -> str:
    """A user's error by its message alone; anything else with its type, as it is a bug."""
    known = isinstance(error, tuple(EXIT_CODES))
    return str(error) if known else f"{type(error).__name__}: {error}"


def give_up(error: Exception, *, multirun: bool) -> float:
    """One line and the exit code for a single run; +inf for a sweep job, so the sweep goes on."""
    code = next((c for kind, c in EXIT_CODES.items() if isinstance(error, kind)), None)
    if code is None and not multirun:
        raise error  # a bug, not a bad value or a divergence: Hydra prints the traceback
    log.error("%s", describe(error), exc_info=error if code is None else None)
    if multirun:
        return math.inf
    sys.exit(code)


if __name__ == "__main__":
    register()
    main()
