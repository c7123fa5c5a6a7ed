"""Train one configured experiment: python scripts/train.py model=linear optim.lr=0.1

Reads like a table of contents: check and build, train, always close the logger, report. Returns
the final loss so that a Hydra sweeper can minimise it.
"""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from gradtrace.build import build_logger, build_run, hparams
from gradtrace.config import ConfigError, register
from gradtrace.report import summary_lines
from gradtrace.trainer import NonFiniteError, train

log = logging.getLogger("gradtrace")


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float:
    runtime = HydraConfig.get().runtime
    try:
        run = build_run(cfg)  # every check happens here: before step 0 and any event file
    except ConfigError as error:
        log.error("%s", error)
        sys.exit(2)
    logger = build_logger(cfg, runtime.output_dir, run.probe)
    try:
        logger.log_config(OmegaConf.to_yaml(cfg, resolve=True), hparams(cfg, runtime.choices))
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
        )
        logger.log_summary(
            result.steps - 1, {"loss/final": result.final_loss, "loss/best": result.best_loss}
        )
    except NonFiniteError as error:
        log.error("%s", error)
        sys.exit(3)
    finally:
        logger.close()  # flushes every buffered step, also when training failed
    for line in summary_lines(result, run.model, runtime.output_dir):
        log.info("%s", line)
    return result.final_loss


if __name__ == "__main__":
    register()
    main()
