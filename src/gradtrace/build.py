"""Config in, objects out: the one place that reads a DictConfig. Below it, the trainer gets a
model, a loss, an optimiser, batches, a probe, a logger and plain numbers."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Iterator, Mapping, Optional

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gradtrace.config import ConfigError, TrainConfig, validate
from gradtrace.data import Batch, TensorData
from gradtrace.insight.explain import StepExplainer
from gradtrace.insight.gradcheck import GradCheck
from gradtrace.insight.landscape import Landscape
from gradtrace.insight.trajectory import Trajectory
from gradtrace.loggers import HParams, Logger
from gradtrace.probe import Probe
from gradtrace.trainer import LossFn

GROUPS = ("model", "data", "loss", "optim", "trainer", "logger")
log = logging.getLogger(__name__)


@dataclass
class Run:
    config: TrainConfig  # validated, plain dataclasses
    device: torch.device
    data: TensorData
    model: nn.Module
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    batches: Iterator[Batch]
    probe: Probe
    # Gradient insight, each None when off (trainer.grad_check, trainer.explain_steps, landscape).
    grad_check: Optional[GradCheck] = None
    explainer: Optional[StepExplainer] = None
    trajectory: Optional[Trajectory] = None  # recorded for the landscape
    landscape: Optional[Landscape] = None


def build_run(cfg: DictConfig) -> Run:
    """Check every value, then build everything but the logger. Raises ConfigError."""
    config = validate(cfg)
    device = resolve_device(config.trainer.device)
    threads = resolve_threads(config.trainer.threads)
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(config.seed)  # the model's initial values (linear, regressor)
    torch.use_deterministic_algorithms(True, warn_only=True)
    data: TensorData = _instantiate(cfg.data)
    model: nn.Module = _instantiate(cfg.model, in_features=data.features).to(device)
    optimizer = _instantiate(cfg.optim)(model.parameters())
    loss_fn = _instantiate(cfg.loss)
    probe = Probe(model.named_parameters(), config.trainer.log_elements_max)
    landscape = _landscape(config, model, loss_fn, data, probe, device)
    return Run(
        config=config,
        device=device,
        data=data,
        model=model,
        loss_fn=loss_fn,
        optimizer=optimizer,
        batches=data.batches(device),
        probe=probe,
        grad_check=_grad_check(config, model, loss_fn),
        explainer=_explainer(config, model, loss_fn, optimizer),
        trajectory=Trajectory(probe.columns) if landscape is not None else None,
        landscape=landscape,
    )


def _grad_check(config: TrainConfig, model: nn.Module, loss_fn: LossFn) -> Optional[GradCheck]:
    check = config.trainer.grad_check
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
    config: TrainConfig, model: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer
) -> Optional[StepExplainer]:
    if config.trainer.explain_steps == 0:
        return None
    return StepExplainer(
        model,
        loss_fn,
        optimizer,
        steps=config.trainer.explain_steps,
        max_elements=config.trainer.log_elements_max,
    )


def _landscape(
    config: TrainConfig,
    model: nn.Module,
    loss_fn: LossFn,
    data: TensorData,
    probe: Probe,
    device: torch.device,
) -> Optional[Landscape]:
    """The landscape, when on and every parameter element is logged (the path needs them)."""
    if not config.landscape.enabled:
        return None
    if probe.large:
        log.info(
            "landscape: skipped, as %s has more than trainer.log_elements_max=%d elements "
            "(the picture draws every parameter element's logged path)",
            ", ".join(name for name, _ in probe.large),
            config.trainer.log_elements_max,
        )
        return None
    return Landscape(
        model,
        loss_fn,
        data.inputs.to(device),
        data.targets.to(device),
        resolution=config.landscape.resolution,
        axes=config.landscape.axes,
        margin=config.landscape.margin,
        seed=config.seed,
    )


def _instantiate(node: DictConfig, **kwargs: object):
    """hydra.utils.instantiate, letting a ConfigError from a constructor through unwrapped."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        if isinstance(error.__cause__, ConfigError):
            raise error.__cause__ from None
        raise


def build_logger(cfg: DictConfig, run_dir: str, probe: Probe) -> Logger:
    return instantiate(cfg.logger, run_dir=run_dir, columns=probe.columns)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    return torch.device(name)


def resolve_threads(threads: int | None) -> int | None:
    """torch CPU threads for this job, None for torch's default.

    `threads` when set. Otherwise, under a launcher that runs jobs side by side, few enough that
    the jobs together use at most every core: torch's default of one thread per core in each of N
    parallel jobs would make N times too many threads, which slows every job down.
    """
    if threads is not None or not HydraConfig.initialized():
        return threads
    launcher = HydraConfig.get().launcher
    cores = _cores()
    if "n_jobs" in launcher:  # joblib: n_jobs worker processes on this machine, -1 one per core
        n_jobs = int(launcher.n_jobs)
        jobs = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)
        return max(1, cores // jobs)
    if "cpus_per_task" in launcher and launcher.cpus_per_task:  # submitit: cores per job
        return int(launcher.cpus_per_task)
    return None  # the basic launcher: one job at a time


def _cores() -> int:
    """The cores this process may run on (a SLURM or container limit, not the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def hparams(cfg: DictConfig, choices: Mapping[str, str | None]) -> HParams:
    """The options chosen in each group, and every number, flag and string setting."""
    out: dict[str, float | int | str | bool] = {
        group: choices[group] for group in GROUPS if choices.get(group) is not None
    }
    container = OmegaConf.to_container(cfg, resolve=True)
    for key, value in _flatten(container):
        if isinstance(value, (bool, int, float, str)) and not key.endswith(("_target_", "_partial_")):
            out[key] = value
        elif isinstance(value, list) and len(value) <= 4 and all(isinstance(v, (int, float)) for v in value):
            out[key] = str(value)  # short numeric lists such as optim.betas
    return out


def _flatten(node: object, prefix: str = ""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _flatten(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node
