"""A checked plan in, the run's objects out: the data, the model (checked against the data), the
loss, the optimiser, the instruments (set up on the run) and the logger. Below this module the
trainer gets objects and plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gradtrace.components import data as data_module
from gradtrace.components import metrics as metrics_module
from gradtrace.components import optim as optim_module
from gradtrace.components import tasks
from gradtrace.components.data import Batch, Samples
from gradtrace.errors import ConfigError
from gradtrace.loggers import Logger, NullLogger
from gradtrace.setup.devices import resolve_device, resolve_threads
from gradtrace.setup.plan import Plan
from gradtrace.training.distributed import ALONE, World, check_shards
from gradtrace.training.instruments import HOOKS, Instruments, RunContext
from gradtrace.training.loop import LossFn


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
    scheduler: Optional[Any]  # a torch.optim.lr_scheduler on the optimiser; None: constant lr
    task: str  # gradtrace.components.tasks: "classes", "binary" or "regression"
    metrics: dict[str, metrics_module.Metric]
    batches: Iterator[Batch]
    context: RunContext  # what the instruments were set up with
    instruments: Instruments  # set up on this run; checkpoints are mounted by the experiment


def build_run(plan: Plan, run_dir: str, place: World = ALONE) -> Run:
    """Build everything but the logger, in an order that keeps results reproducible: the seed,
    then the data, then the model's initial values; then set the instruments up on the run (each
    may refuse it with a ConfigError, before any file is written).

    Across processes (`place`, gradtrace.training.distributed) every rank builds the same
    objects and trains on its shard of each batch through DistributedDataParallel; instruments
    see `is_main` (validation and the landscape run on rank 0 only)."""
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
    loss_fn = plan.loss.build()  # first: it says what the targets must be (gradtrace.components.tasks)
    if isinstance(loss_fn, nn.Module):
        loss_fn = loss_fn.to(device)  # class weights
    kind = tasks.kind_of(loss_fn)
    train_data, val_data = load_data(plan, kind)
    check_shards(place, len(train_data), plan.batch_size)
    model: nn.Module = plan.model.build(
        in_features=train_data.features, input_shape=train_data.shape,
        outputs=tasks.outputs(train_data, kind),
    ).to(device)
    part = (place.rank, place.size)
    batches = data_module.batches(train_data, plan.batch_size, plan.seed, device, part)
    size = plan.batch_size or len(train_data)  # the first batch's worth of samples
    inputs, targets = train_data.inputs[:size].to(device), train_data.targets[:size].to(device)
    preds = tasks.check_contract(model, plan.model.path, plan.loss.path, kind, inputs, targets)
    if kind == tasks.CLASSES:
        for samples, where in ((train_data, "data"), (val_data, "validation data")):
            if samples is not None:
                tasks.check_classes(samples, preds.shape[1], where)
    tasks.check_loss(loss_fn, plan.loss.path, preds, targets)
    metrics = metrics_module.resolve(plan.metrics, kind, loss_fn)
    for name, metric in metrics.items():  # each on the first batch: a wrong fit fails here
        check_metric(name, metric, preds, targets)
    optim_module.skip_compiler_import()  # 2 s of start-up
    optimizer = plan.optim.build(model.parameters())
    scheduler = None if plan.scheduler is None else plan.scheduler.build(optimizer)
    context = RunContext(
        model=model, loss_fn=loss_fn, optimizer=optimizer, train_data=train_data,
        val_data=val_data, device=device, run_dir=run_dir, steps=plan.trainer.steps,
        seed=plan.seed, is_main=place.is_main, processes=place.size, task=kind, metrics=metrics,
    )
    instruments = build_instruments(plan, context)  # each may refuse the run: before DDP
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
        scheduler=scheduler,
        task=kind,
        metrics=metrics,
        batches=batches,
        context=context,
        instruments=instruments,
    )


def check_metric(name: str, metric: metrics_module.Metric, preds: torch.Tensor,
                 targets: torch.Tensor) -> None:
    """A metric must give one number for a batch of the run's predictions and targets."""
    try:
        value = metric(preds, targets)
        float(value)
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(f"metrics: {name} failed on the first batch: {type(error).__name__}: "
                          f"{' '.join(str(error).split())}") from None


def build_instruments(plan: Plan, context: RunContext) -> Instruments:
    """The plan's instruments, each built from its config and set up on the run."""
    built = {}
    for name, (target, every) in plan.instruments.items():
        instrument = target.build()
        if not any(callable(getattr(instrument, hook, None)) for hook in HOOKS):
            raise ConfigError(f"instruments.{name}: {target.path} has none of the methods an "
                              f"instrument is called by: {', '.join(HOOKS)} (see docs/instruments.md)")
        built[name] = (instrument, every)
    instruments = Instruments(built)
    instruments.setup(context)
    return instruments


def load_data(plan: Plan, kind: str) -> tuple[Samples, Optional[Samples]]:
    """The training samples and the validation samples (None when there are none), their targets
    as the task `kind` needs them; a validation split of class labels keeps each class's share."""
    source = f"data: {plan.data.path}"
    samples = tasks.prepare(data_module.as_samples(plan.data.build(seed=plan.seed), source),
                            kind, source, plan.loss.path)
    if plan.val_data is None:
        stratify = kind == tasks.CLASSES and samples.targets.ndim == 1
        train, held_out = data_module.split(samples, plan.val_fraction, plan.seed,
                                            stratify=stratify)
    else:
        train = samples
        held_out = data_module.as_samples(plan.val_data.build(seed=plan.seed), source)
        held_out = tasks.prepare(data_module.align_classes(held_out, train.classes), kind,
                                 f"data.val_path={plan.val_data.kwargs['path']}", plan.loss.path)
        if held_out.shape != train.shape or held_out.targets.shape[1:] != train.targets.shape[1:]:
            raise ConfigError(
                f"data.val_path: a validation sample has inputs of shape {list(held_out.shape)} "
                f"and targets of shape {list(held_out.targets.shape[1:])}, a training sample "
                f"{list(train.shape)} and {list(train.targets.shape[1:])}"
            )
    data_module.check_batch_size(plan.batch_size, len(train))
    return train, held_out


def build_logger(
    plan: Plan, run_dir: str, resume: Optional[dict[str, Any]] = None, place: World = ALONE
) -> Logger:
    """resume: where the logger's output stood at the checkpoint a run resumes from. Only rank 0
    of a distributed run logs."""
    if not place.is_main:
        return NullLogger(run_dir)
    logger: Logger = plan.logger.build(run_dir=run_dir, resume=resume)
    return logger


def _parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """The model wrapped for DistributedDataParallel: backward() averages the ranks' gradients
    (it also makes every rank start from rank 0's initial values)."""
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


