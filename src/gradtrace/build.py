"""Config in, objects out: the one place that reads a DictConfig. Below it, the trainer gets a
model, a loss, an optimiser, batches, a probe, a logger and plain numbers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Mapping

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gradtrace.config import ConfigError, TrainConfig, validate
from gradtrace.data import Batch, TensorData
from gradtrace.loggers import HParams, Logger
from gradtrace.probe import Probe
from gradtrace.trainer import LossFn

GROUPS = ("model", "data", "loss", "optim", "trainer", "logger")


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


def build_run(cfg: DictConfig) -> Run:
    """Check every value, then build everything but the logger. Raises ConfigError."""
    config = validate(cfg)
    device = resolve_device(config.trainer.device)
    torch.manual_seed(config.seed)  # the model's initial values (linear, regressor)
    torch.use_deterministic_algorithms(True, warn_only=True)
    data: TensorData = _instantiate(cfg.data)
    model: nn.Module = _instantiate(cfg.model, in_features=data.features).to(device)
    optimizer = _instantiate(cfg.optim)(model.parameters())
    return Run(
        config=config,
        device=device,
        data=data,
        model=model,
        loss_fn=_instantiate(cfg.loss),
        optimizer=optimizer,
        batches=data.batches(device),
        probe=Probe(model.named_parameters(), config.trainer.log_elements_max),
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
