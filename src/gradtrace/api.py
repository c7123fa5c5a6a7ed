"""The Python API, for notebooks and scripts: the same experiments as the CLI, as a function.

    import gradtrace
    result = gradtrace.run(["model=linear", "optim.lr=0.1"])
    result.final_loss, result.history["loss/train"].values, result.model

`run` composes the same configs as `gradtrace train` (gradtrace's configs, and your own folder of
options with `config_dir`), from any working directory, writes the same run folder (event file,
result.json, landscape.png, train.log, .hydra/) and raises the same errors with the same messages.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Sequence

from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from gradtrace.errors import ConfigError, OutputError
from gradtrace.setup.resolvers import register
from gradtrace.training.experiment import RunResult, check_new_folder, run_experiment

__all__ = ["RunResult", "compose_config", "run"]

CONFIG_MODULE = "gradtrace.configs"  # the repository's configs/, inside the installed package


def run(
    overrides: Sequence[str] = (),
    *,
    run_dir: str | Path | None = None,
    config_dir: str | Path | None = None,
    verbose: bool = True,
) -> RunResult:
    """Train the experiment that `gradtrace train OVERRIDES` would, in this process.

    run_dir: the run folder (created if needed); None: outputs/runs/<time>_<pid>_<overrides>
    under the current folder, as the CLI names it. config_dir: a folder of your own options
    (model/, data/, loss/, optim/), as the CLI's --config-dir. verbose: print the run's log lines
    (they always go to <run_dir>/train.log). Raises ConfigError (a bad value), NonFiniteError,
    GradCheckError, OutputError, Hydra's errors for an unknown key or option, or Interrupted when
    Ctrl-C (SIGINT) or SIGTERM stopped the run after a checkpoint (resume it with
    `trainer.resume=true` and the same run_dir).
    """
    cfg, choices, default_dir = compose_config(overrides, config_dir)
    folder = Path(run_dir) if run_dir is not None else Path(default_dir)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write {folder}: it is a file, not a folder (run_dir)")
    check_new_folder(folder, resume=bool(cfg.trainer.resume), overwrite=bool(cfg.trainer.overwrite))
    (folder / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, folder / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(list(overrides)), folder / ".hydra" / "overrides.yaml")
    with _log_to(folder / "train.log", verbose):
        return run_experiment(cfg, str(folder), choices)


def compose_config(
    overrides: Sequence[str] = (), config_dir: str | Path | None = None
) -> tuple[DictConfig, dict[str, Optional[str]], str]:
    """The job config the CLI would run with, the option chosen in each group, and the run
    folder the CLI would write to (relative to the current folder)."""
    if isinstance(overrides, str):
        raise TypeError(f"overrides must be a list of strings, got the string {overrides!r}")
    try:
        bad = next((o for o in overrides if not isinstance(o, str)), None)
    except TypeError:
        raise TypeError(f"overrides must be a list of strings such as 'optim.lr=0.1', got "
                        f"{type(overrides).__name__}") from None
    if bad is not None:
        raise TypeError(f"overrides must be a list of strings such as 'optim.lr=0.1', got {bad!r} "
                        f"({type(bad).__name__})")
    if config_dir is not None and not Path(config_dir).is_dir():
        raise ConfigError(f"config_dir={str(config_dir)!r} is not a folder (your own options: "
                          f"<folder>/model/*.yaml, ...)")
    register()
    extra = []
    if config_dir is not None:
        extra.append(f"hydra.searchpath=[file://{Path(config_dir).resolve()}]")
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, *extra], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)  # for ${now:...} and ${hydra:...} in run.dir
        run_dir = str(cfg.hydra.run.dir)
        choices = dict(OmegaConf.to_container(cfg.hydra.runtime.choices))  # type: ignore[arg-type]
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices, run_dir


@contextmanager
def _log_to(log_file: Path, verbose: bool) -> Iterator[None]:
    """gradtrace's log lines into `log_file` (as Hydra's train.log) and, if verbose, stderr."""
    logger = logging.getLogger("gradtrace")
    handlers: list[logging.Handler] = [logging.FileHandler(log_file)]
    handlers[0].setFormatter(
        logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    )
    if verbose:
        handlers.append(logging.StreamHandler(sys.stderr))
        handlers[-1].setFormatter(logging.Formatter("%(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = not verbose  # printed here: not a second time by the root's handlers
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(level)
        logger.propagate = propagate
