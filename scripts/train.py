"""Train one configured experiment: python scripts/train.py model=linear optim.lr=0.1

Hydra composes the config from configs/ (and your own config folder: --config-dir); the package
does the rest (gradtrace.cli, then gradtrace.experiment): check and build, train, always close the
logger, report, write result.json. Exit codes: 0 done, 2 a bad value, 3 NaN/Inf, 4 a strict
gradient check failed; a sweep (-m) exits 1 when a job failed.

`torchrun --standalone --nproc_per_node=N scripts/train.py ...` trains one run on N processes
(gradtrace.distributed).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from gradtrace import cli, distributed
from gradtrace.config import register


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
def main(cfg: DictConfig) -> float:
    return cli.main(cfg)


if __name__ == "__main__":
    register()
    with cli.exit_when_done():  # the run is written: skip the interpreter's slow teardown
        with distributed.joined():  # under torchrun: join the other processes (alone: nothing)
            main()
