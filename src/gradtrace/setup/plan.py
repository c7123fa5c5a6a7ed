"""Config in, a checked plan out: the one place that reads a DictConfig.

`make_plan(cfg)` checks everything that can be checked without building anything (types, ranges,
that each `_target_` imports and takes the keys it is given) and returns a `Plan` of plain values
and `Target`s; gradtrace.setup.build turns it into objects. Below this layer nothing sees a config.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Iterator, Mapping, Optional

from omegaconf import DictConfig, OmegaConf

from gradtrace.components import data as data_module
from gradtrace.components.optim import CHECKS as OPTIM_CHECKS
from gradtrace.errors import ConfigError, require
from gradtrace.loggers import HParams
from gradtrace.setup.schema import (
    SUMMARIES,
    EarlyStoppingConfig,
    LandscapeConfig,
    ObjectiveConfig,
    TrainerConfig,
    validate,
)
from gradtrace.setup.targets import Target, locate

# for hparams: the chosen options
GROUPS = ("model", "data", "loss", "optim", "scheduler", "trainer", "logger", "experiment")
DATA_KEYS = ("batch_size", "val_fraction", "val_path")  # gradtrace's own, not the loader's
SCHEDULE_KEYS = ("every_steps",)  # an instrument's keys that the loop reads, not its class


@dataclass
class Plan:
    """A checked config: gradtrace's settings, and what to build for each group."""

    trainer: TrainerConfig
    landscape: LandscapeConfig
    seed: int
    objective: ObjectiveConfig
    early_stopping: EarlyStoppingConfig
    model: Target
    data: Target
    val_data: Optional[Target]  # data.val_path: the same loader on another file
    batch_size: Optional[int]
    val_fraction: float
    loss: Target
    optim: Target
    scheduler: Optional[Target]  # takes the optimiser; None: a constant lr
    metrics: Optional[list[Any]]  # names, and a user's functions; None: the task's default
    logger: Target
    instruments: dict[str, tuple[Target, int]]  # name -> (what to build, every_steps); on ones
    config_yaml: str  # the resolved config, for the run's record
    hparams: HParams
    # The config, less what a resumed run may change (trainer.steps, .checkpoint, .resume): a
    # checkpoint holds it, and a run resumes only a checkpoint of its own config.
    identity: str

    @property
    def has_validation(self) -> bool:
        return self.val_fraction > 0 or self.val_data is not None

    @property
    def monitor(self) -> str:
        """The tag logged during training that the objective summarises (loss/train for
        loss/final and loss/best, loss/val for loss/val_final; else the objective itself)."""
        return SUMMARIES.get(self.objective.metric, self.objective.metric)

def make_plan(cfg: DictConfig, choices: Mapping[str, Optional[str]] | None = None) -> Plan:
    """Check every value that can be checked before building anything. Raises ConfigError."""
    config = validate(cfg)  # trainer, landscape, seed, objective: typed and range-checked
    data_node = dict(config.data)
    own = {key: data_node.pop(key, None) for key in DATA_KEYS}
    val_fraction = own["val_fraction"] or 0.0
    data_module.check_val_fraction(val_fraction)  # before has_validation compares it
    data = Target.from_config("data", data_node, optional=("seed",))
    val_data = None
    if own["val_path"] is not None:
        if not data.takes("path"):
            raise ConfigError(
                f"data.val_path needs a data option that reads a file (its target takes path), "
                f"e.g. data=file; {data.path} does not"
            )
        if val_fraction:
            raise ConfigError(
                "data.val_fraction and data.val_path are two ways to get validation samples: "
                f"set one, got val_fraction={val_fraction} and val_path={own['val_path']}"
            )
        val_data = replace(data, kwargs={**data.kwargs, "path": own["val_path"]})
    plan = Plan(
        trainer=config.trainer,
        landscape=config.landscape,
        seed=config.seed,
        objective=config.objective,
        early_stopping=config.early_stopping,
        model=Target.from_config("model", config.model,
                                 optional=("in_features", "input_shape", "outputs")),
        data=data,
        val_data=val_data,
        batch_size=own["batch_size"],
        val_fraction=val_fraction,
        loss=Target.from_config("loss", config.loss),
        optim=Target.from_config("optim", config.optim, positional=1, checks=OPTIM_CHECKS),
        scheduler=None if config.scheduler is None else
        Target.from_config("scheduler", config.scheduler, positional=1),
        metrics=None if config.metrics is None else
        [locate("metrics", name) if "." in name else name for name in config.metrics],
        logger=Target.from_config("logger", config.logger, given=("run_dir",), optional=("resume",)),
        instruments=instruments(config.instruments),
        config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
        hparams=hparams(cfg, choices or {}),
        identity=_identity(cfg),
    )
    data_module.check_batch_size(plan.batch_size)  # against the samples once they are read
    for key, tag in (("objective.metric", plan.objective.metric),
                     ("early_stopping.metric", plan.early_stopping.metric)):
        if tag is not None and (tag.endswith("/val") or tag == "loss/val_final") \
                and not plan.has_validation:
            raise ConfigError(f"{key}={tag} needs validation samples: set data.val_fraction "
                              f"(e.g. 0.2) or data.val_path")
    return plan


def instruments(node: Mapping[str, Any]) -> dict[str, tuple[Target, int]]:
    """The `instruments` mapping, name -> {_target_, every_steps, ...}: each checked against its
    class; every_steps (default 1) is the loop's, 0 switches one off."""
    if not isinstance(node, Mapping):
        raise ConfigError(f"instruments must be a mapping of name -> {{_target_: ..., "
                          f"every_steps: K}}, got {node!r}")
    out = {}
    for name, settings in node.items():
        if not isinstance(settings, Mapping):
            raise ConfigError(f"instruments.{name} must be a mapping with _target_ (and "
                              f"every_steps), got {settings!r}")
        settings = dict(settings)
        every = settings.pop("every_steps", 1)
        require(isinstance(every, int) and not isinstance(every, bool) and every >= 0,
                f"instruments.{name}.every_steps", every, "an integer >= 0 (0: off)")
        if every:
            out[str(name)] = (Target.from_config(f"instruments.{name}", settings), every)
    return out


def _identity(cfg: DictConfig) -> str:
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    trainer = dict(container.get("trainer") or {})
    for key in ("steps", "checkpoint", "resume", "overwrite"):
        trainer.pop(key, None)
    return json.dumps({**container, "trainer": trainer}, sort_keys=True, default=str)


def hparams(cfg: DictConfig, choices: Mapping[str, Optional[str]]) -> HParams:
    """The options chosen in each group, and every number, flag and string setting."""
    out: dict[str, float | int | str | bool] = {
        group: choice for group in GROUPS if (choice := choices.get(group)) is not None
    }
    container = OmegaConf.to_container(cfg, resolve=True)
    for key, value in _flatten(container):
        if isinstance(value, (bool, int, float, str)) and not key.endswith(("_target_", "_partial_")):
            out[key] = value
        elif isinstance(value, list) and len(value) <= 4 and all(isinstance(v, (int, float)) for v in value):
            out[key] = str(value)  # short numeric lists such as optim.betas
    return out


def _flatten(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _flatten(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node
