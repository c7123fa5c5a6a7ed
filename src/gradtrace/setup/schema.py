"""The schema of gradtrace's own settings: the type, default and allowed range of every key of
the trainer and landscape groups and of the top level (seed, metrics, objective, early stopping).

Hydra checks their types and unknown keys while it composes (each of those YAML options pulls in
one of these dataclasses as its schema, which holds the defaults); ranges are checked in
`__post_init__`, which runs when `validate` turns the composed config into these objects, before
anything is built. The groups that name a class (model, data, loss, optim, logger) have no schema
here: their YAML holds the values, and gradtrace.setup.targets checks them against the class itself,
the built-in options and a user's own alike.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from gradtrace.errors import ConfigError, require
from gradtrace.errors import is_finite_number as _finite

# --- trainer ----------------------------------------------------------------------------


@dataclass
class GradCheckConfig:
    """trainer.grad_check: autograd vs. finite differences and closed forms (gradtrace.insight)."""

    every_steps: int = 0  # check at steps 0, every_steps, 2 * every_steps, ...; 0: never
    # An element fails when |autograd - reference| > abs_tolerance + tolerance * |reference|.
    tolerance: float = 1e-3
    abs_tolerance: float = 1e-5
    step_size: float = 1e-6  # h of the central differences, in parameter units (float64)
    strict: bool = False  # a failure stops the run (exit code 4); otherwise a warning

    def __post_init__(self) -> None:
        require(
            self.every_steps >= 0,
            "trainer.grad_check.every_steps",
            self.every_steps,
            "an integer >= 0 (0: off)",
        )
        for key in ("tolerance", "step_size"):
            value = getattr(self, key)
            allowed = "a finite number > 0"
            require(_finite(value) and value > 0, f"trainer.grad_check.{key}", value, allowed)
        require(
            _finite(self.abs_tolerance) and self.abs_tolerance >= 0,
            "trainer.grad_check.abs_tolerance",
            self.abs_tolerance,
            "a finite number >= 0",
        )


@dataclass
class CheckpointConfig:
    """trainer.checkpoint: the run's whole state, to resume it exactly (gradtrace.training.checkpoint)."""

    # Every every_steps steps, after the last step, and on SIGTERM/SIGINT; 0: only those two.
    every_steps: int = 1000
    keep: int = 2  # the newest checkpoints kept in <run folder>/checkpoints; the rest are deleted

    def __post_init__(self) -> None:
        require(self.every_steps >= 0, "trainer.checkpoint.every_steps", self.every_steps,
                "an integer >= 0 (0: only after the last step and on a stop signal)")
        require(self.keep >= 1, "trainer.checkpoint.keep", self.keep, "an integer >= 1")


@dataclass
class TrainerConfig:
    steps: int = 100
    log_every_steps: int = 1
    # Tensors with at most this many elements are logged element by element, every logged step;
    # larger ones as L2 norms every logged step and histograms every histogram_every_steps.
    log_elements_max: int = 64
    histogram_every_steps: int = 100
    device: str = "auto"  # auto: CUDA when present, else CPU
    # torch CPU threads. null: torch's default, or, under a launcher that runs jobs side by side
    # (joblib, submitit), the cores shared out so that jobs x threads <= cores.
    threads: Optional[int] = None
    grad_check: GradCheckConfig = field(default_factory=GradCheckConfig)
    # Print (and log as text) a table of every parameter element's update for the first K steps.
    explain_steps: int = 0
    # loss/val on every validation sample, at steps 0, val_every_steps, ... and after the last
    # step; only when there are validation samples (data.val_fraction or data.val_path).
    val_every_steps: int = 100
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    # Continue this run folder (hydra.run.dir) from its newest valid checkpoint: see
    # gradtrace resume, which sets both.
    resume: bool = False
    # A new run in a folder that already holds files (false: refused, so that no earlier run is
    # overwritten); gradtrace rerun-failed sets it to restart a job that left no checkpoint.
    overwrite: bool = False
    # What changes the update (gradtrace.training.loop): per optimiser step, the gradients of
    # accumulate_steps micro-batches of data.batch_size (trainer.steps counts optimiser steps),
    # then clipped, elementwise to [-clip_grad_value, clip_grad_value] and then to an L2 norm of
    # at most clip_grad_norm (null: no clipping). The logged gradients are the raw ones.
    accumulate_steps: int = 1
    clip_grad_norm: Optional[float] = None
    clip_grad_value: Optional[float] = None

    def __post_init__(self) -> None:
        require(self.steps >= 1, "trainer.steps", self.steps, "an integer >= 1")
        require(
            self.explain_steps >= 0, "trainer.explain_steps", self.explain_steps, "an integer >= 0"
        )
        require(
            self.threads is None or 1 <= self.threads <= 4096,
            "trainer.threads",
            self.threads,
            "null (automatic) or an integer in [1, 4096]",
        )
        for key in ("log_every_steps", "histogram_every_steps", "val_every_steps"):
            value = getattr(self, key)
            require(value >= 1, f"trainer.{key}", value, "an integer >= 1")
        require(
            self.log_elements_max >= 0,
            "trainer.log_elements_max",
            self.log_elements_max,
            "an integer >= 0",
        )
        require(isinstance(self.accumulate_steps, int) and self.accumulate_steps >= 1,
                "trainer.accumulate_steps", self.accumulate_steps, "an integer >= 1")
        for key in ("clip_grad_norm", "clip_grad_value"):
            value = getattr(self, key)
            require(value is None or (_finite(value) and value > 0), f"trainer.{key}", value,
                    "null (no clipping) or a finite number > 0")
        device = self.device
        require(
            device in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", device) is not None,
            "trainer.device",
            device,
            "one of auto, cpu, cuda, cuda:N",
        )


# --- landscape -------------------------------------------------------------------------------


@dataclass
class LandscapeConfig:
    """The loss-landscape picture drawn after training (gradtrace.insight.landscape)."""

    # Drawn when every parameter element is logged (tensors of at most trainer.log_elements_max
    # elements), as for the worked examples; other runs skip it with a line saying why.
    enabled: bool = True
    resolution: int = 41  # grid points per axis: the cost is resolution**2 losses on all samples
    # Two parameter elements as the slice's axes, e.g. ["weight[0,2]", "bias[0]"]; null: the
    # model's elements when it has one or two, else two random directions normalised per tensor.
    axes: Optional[list[str]] = None
    margin: float = 0.25  # added on each side of the trajectory, as a fraction of its extent
    # The losses are computed on at most this many training samples (a seeded random subset when
    # there are more), so that the picture costs a few seconds whatever the data's size.
    max_samples: int = 10_000

    def __post_init__(self) -> None:
        require(
            3 <= self.resolution <= 401,
            "landscape.resolution",
            self.resolution,
            "an integer in [3, 401]",
        )
        require(
            _finite(self.margin) and self.margin >= 0,
            "landscape.margin",
            self.margin,
            "a finite number >= 0",
        )
        require(self.max_samples >= 1, "landscape.max_samples", self.max_samples,
                "an integer >= 1")
        require(
            self.axes is None or len(self.axes) == 2,
            "landscape.axes",
            self.axes if self.axes is None else list(self.axes),
            'null or two parameter elements, e.g. ["weight[0,2]","bias[0]"]',
        )


# --- the objective and early stopping ---------------------------------------------------------

MODES = ("min", "max")
# The tags logged once, at the end, each a summary of a tag logged during training: the series
# that early stopping and a plateau schedule watch when the objective is one of these.
SUMMARIES = {"loss/final": "loss/train", "loss/best": "loss/train", "loss/val_final": "loss/val"}


@dataclass
class ObjectiveConfig:
    """What a run is judged by: a sweeper optimises it, the summary ranks by it, early stopping
    and a plateau schedule watch it. Its value is the tag's last logged value (for a validation
    tag: the validation after the last step)."""

    metric: str = "loss/final"  # any logged tag: loss/val_final, accuracy/val, ...
    mode: str = "min"  # min or max: which way is better

    def __post_init__(self) -> None:
        require(isinstance(self.metric, str) and "/" in self.metric.strip("/"),
                "objective.metric", self.metric,
                "a logged tag such as loss/final, loss/val_final or accuracy/val")
        require(self.mode in MODES, "objective.mode", self.mode, "min or max")


@dataclass
class EarlyStoppingConfig:
    """End the run when `metric` has not improved by more than min_delta for `patience` of its
    logged values in a row (validations, for a validation tag)."""

    patience: Optional[int] = None  # null: off
    min_delta: float = 0.0
    metric: Optional[str] = None  # null: the objective's (loss/train for loss/final, ...)
    mode: Optional[str] = None  # null: objective.mode

    def __post_init__(self) -> None:
        require(self.patience is None or self.patience >= 1, "early_stopping.patience",
                self.patience, "null (off) or an integer >= 1")
        require(_finite(self.min_delta) and self.min_delta >= 0, "early_stopping.min_delta",
                self.min_delta, "a finite number >= 0")
        require(self.mode is None or self.mode in MODES, "early_stopping.mode", self.mode,
                "null (objective.mode), min or max")
        require(self.metric not in SUMMARIES, "early_stopping.metric", self.metric,
                f"a tag logged during training (loss/train, loss/val, accuracy/val, ...); "
                f"{self.metric} is logged once, at the end")


# --- the whole run ---------------------------------------------------------------------------


@dataclass
class TrainConfig:
    # The groups that name a class: their YAML (or the user's) holds the values.
    model: Any = MISSING
    data: Any = MISSING
    loss: Any = MISSING
    optim: Any = MISSING
    logger: Any = MISSING
    # name -> {_target_, every_steps, ...}: what watches each step (gradtrace.training.instruments)
    instruments: Any = field(default_factory=dict)
    trainer: TrainerConfig = MISSING
    landscape: LandscapeConfig = MISSING
    # The learning-rate schedule: a torch.optim.lr_scheduler class (or factory) that takes the
    # optimiser first; null: a constant lr. Stepped once per optimiser step; ReduceLROnPlateau
    # once per logged value of the objective's series (each validation).
    scheduler: Any = None
    # Besides the loss: names (gradtrace.components.metrics) or dotted paths to functions;
    # null: accuracy for classification losses, none for regression.
    metrics: Optional[list[str]] = None
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        require(0 <= self.seed < 2**63, "seed", self.seed, "an integer in [0, 2**63)")


def check_known_keys(node: Any, schema: type, prefix: str = "") -> None:
    """Every key of a schema node is a field of its dataclass: `+trainer.new=1` or `+foo=1` (the
    `+` adds a key Hydra's struct mode would refuse) is one line, never silently ignored."""
    types = {f.name: f.type for f in fields(schema)}
    names = list(types)
    for key in map(str, node.keys() if isinstance(node, DictConfig) else ()):
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            where = prefix.rstrip(".") or "the top level"
            raise ConfigError(f"{prefix}{key} is not a setting{hint}; {where} takes "
                              f"{', '.join(names)}: drop it with ~{prefix}{key}")
        kind = types[key]
        nested = SCHEMA_TYPES.get(kind if isinstance(kind, str) else getattr(kind, "__name__", ""))
        if nested is not None:
            check_known_keys(node[key], nested, f"{prefix}{key}.")


SCHEMAS: dict[str, dict[str, type]] = {
    "trainer": {"trainer": TrainerConfig},
    "landscape": {"landscape": LandscapeConfig},
}

# The dataclasses a schema field may name (by the annotation's name: `from __future__ import
# annotations` makes annotations strings).
SCHEMA_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    TrainerConfig, GradCheckConfig, CheckpointConfig, LandscapeConfig, ObjectiveConfig,
    EarlyStoppingConfig)}


def validate(cfg: DictConfig) -> TrainConfig:
    """Resolve `cfg` and build the schema objects, which runs every range check. The groups that
    name a class come back as plain dicts."""
    check_known_keys(cfg, TrainConfig)
    try:
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except MissingMandatoryValue as error:
        raise ConfigError(
            f"{error.full_key} must be set: {error.full_key}=..."
        ) from None
    except OmegaConfBaseException as error:
        message = " ".join(str(error).split("\n")[0].split())
        raise ConfigError(f"{getattr(error, 'full_key', '') or 'config'}: {message}") from None
