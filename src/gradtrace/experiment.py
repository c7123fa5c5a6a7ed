"""One experiment, start to end: check the config, build, train, always close the logger, draw the
landscape, report, and record how it ended in result.json. The CLI (scripts/train.py, through
gradtrace.cli) and the Python API (gradtrace.run) both run experiments through `run_experiment`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Mapping, Optional

import torch
from omegaconf import DictConfig
from torch import nn

from gradtrace.build import Plan, build_logger, build_run, make_plan
from gradtrace.errors import exit_code
from gradtrace.report import summary_lines
from gradtrace.sweeps.result import COMPLETED, FAILED, JobResult, write_result
from gradtrace.trainer import TrainResult, train

log = logging.getLogger("gradtrace")


@dataclass
class Outcome:
    plan: Plan
    result: TrainResult
    model: nn.Module  # trained

    @property
    def objective(self) -> float:
        """The value of `plan.objective`: what a sweeper minimises."""
        return objective_value(self.result, self.plan.objective)


def objective_value(result: TrainResult, objective: str) -> float:
    values = {
        "loss/final": result.final_loss,
        "loss/best": result.best_loss,
        "loss/val_final": result.val_loss,
    }
    value = values[objective]
    return math.nan if value is None else value


def run_experiment(
    cfg: DictConfig, run_dir: str, choices: Mapping[str, Optional[str]] | None = None
) -> Outcome:
    """Run the experiment `cfg` describes into `run_dir`, and write its result.json whether it
    completes or fails (then the error is raised again)."""
    start = time.perf_counter()
    try:
        plan = make_plan(cfg, choices)  # every check that needs no object: before anything runs
        outcome = train_plan(plan, run_dir)
    except Exception as error:
        seconds = time.perf_counter() - start
        write_result(run_dir, JobResult(FAILED, error=describe(error), seconds=seconds))
        raise
    result = outcome.result
    write_result(
        run_dir,
        JobResult(
            COMPLETED,
            final_loss=result.final_loss,
            best_loss=result.best_loss,
            val_loss=result.val_loss,
            objective=plan.objective,
            steps=result.steps,
            seconds=time.perf_counter() - start,
            train_seconds=result.seconds,
            threads=torch.get_num_threads(),
        ),
    )
    return outcome


def train_plan(plan: Plan, run_dir: str) -> Outcome:
    run = build_run(plan)  # the remaining checks (data, model contract): before any event file
    logger = build_logger(plan, run_dir, run.probe)
    metrics = ["loss/final", "loss/best"] + (["loss/val_final"] if plan.has_validation else [])
    try:
        logger.log_config(plan.config_yaml, plan.hparams, metrics)
        result = train(
            model=run.model,
            loss_fn=run.loss_fn,
            optimizer=run.optimizer,
            batches=run.batches,
            probe=run.probe,
            logger=logger,
            steps=plan.trainer.steps,
            log_every_steps=plan.trainer.log_every_steps,
            histogram_every_steps=plan.trainer.histogram_every_steps,
            validation=run.validation,
            val_every_steps=plan.trainer.val_every_steps,
            grad_check=run.grad_check,
            explainer=run.explainer,
            trajectory=run.trajectory,
        )
        summary = {"loss/final": result.final_loss, "loss/best": result.best_loss}
        if result.val_loss is not None:
            summary["loss/val_final"] = result.val_loss
        logger.log_summary(result.steps - 1, summary)
        if run.landscape is not None and run.trajectory is not None:
            # The loss around the path: landscape.png, and the image in TensorBoard. Imported
            # here: matplotlib takes about 0.5 s to import, paid only by runs that draw.
            from gradtrace.insight.picture import save_landscape

            png = save_landscape(run.landscape.compute(run.trajectory), run_dir)
            logger.log_image(result.steps - 1, "landscape", png)
    finally:
        logger.close()  # flushes every buffered step, also when training failed
    for line in summary_lines(result, run.model, run_dir):
        log.info("%s", line)
    return Outcome(plan, result, run.model)


def describe(error: BaseException) -> str:
    """A user's error by its message alone; anything else with its type, as it is a bug."""
    return str(error) if exit_code(error) is not None else f"{type(error).__name__}: {error}"
