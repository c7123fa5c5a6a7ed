"""Config in, objects out: the one place that reads a DictConfig.

`make_plan(cfg)` checks everything that can be checked without building anything (types, ranges,
that each `_target_` imports and takes the keys it is given) and returns a `Plan` of plain values;
`build_run(plan)` builds the data, the model (and checks it fits the data), the loss, the
optimiser and the insight objects. Below this module the trainer gets objects and plain numbers.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Mapping, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gradtrace.components import data as data_module
from gradtrace.setup.schema import LandscapeConfig, TrainerConfig, validate
from gradtrace.components.data import Batch, Samples
from gradtrace.setup.devices import resolve_device, resolve_threads
from gradtrace.training.distributed import ALONE, World, check_shards
from gradtrace.errors import ConfigError
from gradtrace.insight.explain import StepExplainer
from gradtrace.insight.gradcheck import GradCheck
from gradtrace.insight.landscape import Landscape
from gradtrace.insight.trajectory import Trajectory
from gradtrace.loggers import HParams, Logger, NullLogger
from gradtrace.components.models import check_contract, check_loss, evaluating
from gradtrace.components.optim import CHECKS as OPTIM_CHECKS
from gradtrace.training.probe import Probe
from gradtrace.setup.targets import Target
from gradtrace.training.loop import LossFn

GROUPS = ("model", "data", "loss", "optim", "trainer", "logger")  # for hparams: chosen options
DATA_KEYS = ("batch_size", "val_fraction", "val_path")  # gradtrace's own, not the loader's
log = logging.getLogger(__name__)


@dataclass
class Plan:
    """A checked config: gradtrace's settings, and what to build for each group."""

    trainer: TrainerConfig
    landscape: LandscapeConfig
    seed: int
    objective: str  # gradtrace.setup.schema.OBJECTIVES
    model: Target
    data: Target
    val_data: Optional[Target]  # data.val_path: the same loader on another file
    batch_size: Optional[int]
    val_fraction: float
    loss: Target
    optim: Target
    logger: Target
    config_yaml: str  # the resolved config, for the run's record
    hparams: HParams
    # The config, less what a resumed run may change (trainer.steps, .checkpoint, .resume): a
    # checkpoint holds it, and a run resumes only a checkpoint of its own config.
    identity: str

    @property
    def has_validation(self) -> bool:
        return self.val_fraction > 0 or self.val_data is not None


@dataclass
class Run:
    plan: Plan
    place: World  # this process among the run's processes (ALONE: the only one)
    device: torch.device
    train_data: Samples
    val_data: Optional[Samples]
    model: nn.Module
    forward: nn.Module  # what the loop calls: the model, or its DistributedDataParallel wrapper
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    batches: Iterator[Batch]
    probe: Probe
    validation: Optional[Callable[[], float]] = None  # loss on every validation sample
    # Gradient insight, each None when off (trainer.grad_check, trainer.explain_steps, landscape).
    grad_check: Optional[GradCheck] = None
    explainer: Optional[StepExplainer] = None
    trajectory: Optional[Trajectory] = None  # recorded for the landscape
    landscape: Optional[Landscape] = None


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
        model=Target.from_config("model", config.model, optional=("in_features",)),
        data=data,
        val_data=val_data,
        batch_size=own["batch_size"],
        val_fraction=val_fraction,
        loss=Target.from_config("loss", config.loss),
        optim=Target.from_config("optim", config.optim, positional=1, checks=OPTIM_CHECKS),
        logger=Target.from_config(
            "logger", config.logger, given=("run_dir", "columns"), optional=("resume",)
        ),
        config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
        hparams=hparams(cfg, choices or {}),
        identity=_identity(cfg),
    )
    data_module.check_batch_size(plan.batch_size)  # against the samples once they are read
    if plan.objective == "loss/val_final" and not plan.has_validation:
        raise ConfigError(
            "objective=loss/val_final needs validation samples: set data.val_fraction "
            "(e.g. 0.2) or data.val_path"
        )
    return plan


def build_run(plan: Plan, place: World = ALONE) -> Run:
    """Build everything but the logger, in an order that keeps results reproducible: the seed,
    then the data, then the model's initial values. Raises ConfigError.

    Across processes (`place`, gradtrace.training.distributed) every rank builds the same objects, trains
    on its shard of each batch through DistributedDataParallel, and only rank 0 validates and
    keeps the landscape's path."""
    _check_distributed(plan, place)
    device = resolve_device(plan.trainer.device, place.local_rank if place.distributed else None)
    threads = resolve_threads(plan.trainer.threads)
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(plan.seed)  # the model's initial values (linear, regressor, a user's)
    if device.type == "cuda":
        # Same config and seed, same numbers: CUDA has kernels that differ run to run unless
        # asked not to. torch's CPU kernels are deterministic for a given thread count, and this
        # call imports torch's compiler (0.8 s of every run's start), so CPU runs skip it.
        torch.use_deterministic_algorithms(True, warn_only=True)
    train_data, val_data = load_data(plan)
    check_shards(place, len(train_data), plan.batch_size)
    model: nn.Module = plan.model.build(in_features=train_data.features).to(device)
    part = (place.rank, place.size)
    batches = data_module.batches(train_data, plan.batch_size, plan.seed, device, part)
    size = plan.batch_size or len(train_data)  # the first batch's worth of samples
    inputs, targets = train_data.inputs[:size].to(device), train_data.targets[:size].to(device)
    preds = check_contract(model, plan.model.path, inputs, targets)
    loss_fn = plan.loss.build()
    check_loss(loss_fn, plan.loss.path, preds, targets)
    optimizer = plan.optim.build(model.parameters())
    probe = Probe(model.named_parameters(), plan.trainer.log_elements_max)
    landscape = _landscape(plan, model, loss_fn, train_data, probe, device) if place.is_main else None
    return Run(
        plan=plan,
        place=place,
        device=device,
        train_data=train_data,
        val_data=val_data,
        model=model,
        forward=_parallel(model, device) if place.distributed else model,
        loss_fn=loss_fn,
        optimizer=optimizer,
        batches=batches,
        probe=probe,
        validation=_validation(model, loss_fn, val_data, device) if place.is_main else None,
        grad_check=_grad_check(plan.trainer, model, loss_fn),
        explainer=_explainer(plan.trainer, model, loss_fn, optimizer),
        trajectory=Trajectory(probe.columns) if landscape is not None else None,
        landscape=landscape,
    )


def load_data(plan: Plan) -> tuple[Samples, Optional[Samples]]:
    """The training samples and the validation samples (None when there are none)."""
    source = f"data: {plan.data.path}"
    samples = data_module.as_samples(plan.data.build(seed=plan.seed), source)
    if plan.val_data is None:
        train, held_out = data_module.split(samples, plan.val_fraction, plan.seed)
    else:
        train = samples
        held_out = data_module.as_samples(plan.val_data.build(seed=plan.seed), source)
        if held_out.features != train.features:
            raise ConfigError(
                f"data.val_path: the validation samples have {held_out.features} features, the "
                f"training samples {train.features}"
            )
    data_module.check_batch_size(plan.batch_size, len(train))
    return train, held_out


def build_logger(
    plan: Plan,
    run_dir: str,
    probe: Probe,
    resume: Optional[dict[str, Any]] = None,
    place: World = ALONE,
) -> Logger:
    """resume: where the logger's output stood at the checkpoint a run resumes from. Only rank 0
    of a distributed run logs."""
    if not place.is_main:
        return NullLogger(run_dir, probe.columns)
    logger: Logger = plan.logger.build(run_dir=run_dir, columns=probe.columns, resume=resume)
    return logger


def _check_distributed(plan: Plan, place: World) -> None:
    if not place.distributed:
        return
    for key, value in (
        ("trainer.grad_check.every_steps", plan.trainer.grad_check.every_steps),
        ("trainer.explain_steps", plan.trainer.explain_steps),
    ):
        if value:
            raise ConfigError(
                f"{key}={value} needs a single process (it recomputes one process's gradients "
                f"on its own data), got {place.size} processes: set {key}=0 or run without torchrun"
            )


def _parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """The model wrapped for DistributedDataParallel: backward() averages the ranks' gradients
    (it also makes every rank start from rank 0's initial values)."""
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def _identity(cfg: DictConfig) -> str:
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    trainer = dict(container.get("trainer") or {})
    for key in ("steps", "checkpoint", "resume"):
        trainer.pop(key, None)
    return json.dumps({**container, "trainer": trainer}, sort_keys=True, default=str)


def _validation(
    model: nn.Module, loss_fn: LossFn, val: Optional[Samples], device: torch.device
) -> Optional[Callable[[], float]]:
    """The loss on every validation sample, computed without gradients and in eval mode, the
    model's mode restored after: training goes on exactly as without it."""
    if val is None:
        return None
    inputs, targets = val.inputs.to(device), val.targets.to(device)

    def validation_loss() -> float:
        with evaluating(model):
            return float(loss_fn(model(inputs), targets).item())

    return validation_loss


def _grad_check(trainer: TrainerConfig, model: nn.Module, loss_fn: LossFn) -> Optional[GradCheck]:
    check = trainer.grad_check
    if check.every_steps == 0:
        return None
    return GradCheck(
        model,
        loss_fn,
        every_steps=check.every_steps,
        tolerance=check.tolerance,
        abs_tolerance=check.abs_tolerance,
        step_size=check.step_size,
        strict=check.strict,
    )


def _explainer(
    trainer: TrainerConfig, model: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer
) -> Optional[StepExplainer]:
    if trainer.explain_steps == 0:
        return None
    return StepExplainer(
        model,
        loss_fn,
        optimizer,
        steps=trainer.explain_steps,
        max_elements=trainer.log_elements_max,
    )


def _landscape(
    plan: Plan,
    model: nn.Module,
    loss_fn: LossFn,
    data: Samples,
    probe: Probe,
    device: torch.device,
) -> Optional[Landscape]:
    """The landscape, when on and every parameter element is logged (the path needs them)."""
    if not plan.landscape.enabled:
        return None
    if probe.large:
        log.info(
            "landscape: skipped, as %s has more than trainer.log_elements_max=%d elements "
            "(the picture draws every parameter element's logged path)",
            ", ".join(name for name, _ in probe.large),
            plan.trainer.log_elements_max,
        )
        return None
    return Landscape(
        model,
        loss_fn,
        data.inputs.to(device),
        data.targets.to(device),
        resolution=plan.landscape.resolution,
        axes=plan.landscape.axes,
        margin=plan.landscape.margin,
        seed=plan.seed,
        max_samples=plan.landscape.max_samples,
    )


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
