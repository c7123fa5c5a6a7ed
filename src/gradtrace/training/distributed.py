"""Training across processes with torch.distributed: `torchrun --nproc_per_node=N -m gradtrace train`
(or N SLURM tasks of a submitit job) runs one copy of the experiment per process, a *rank*.

Every rank builds the same model, data and optimiser from the same config and seed, and trains on
its own equal shard of every batch; DistributedDataParallel averages the gradients, so every rank
takes the same step, and the averaged gradient of a mean loss over equal shards is the whole
batch's gradient. Rank 0 alone writes: the run folder, the event file, checkpoints, result.json.
The ranks agree first on what they must share: the run folder's name (the time and process id
in it are rank 0's), and, at each step, the loss and whether any rank was asked to stop.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import torch
import torch.distributed as dist

from gradtrace.errors import ConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1  # processes in the run
    local_rank: int = 0  # on this machine: which GPU is this rank's

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes and talks."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


@dataclass(frozen=True)
class Launch:
    """What names a run's folder: when and by which process it was started (rank 0's)."""

    time: float
    pid: int


ALONE = World()
_world = ALONE
_launch: Optional[Launch] = None


def world() -> World:
    """This process's place among the run's processes (ALONE unless `join` was called)."""
    return _world


def launch() -> Launch:
    """The launch that names this run's folder: this process, or rank 0 once joined."""
    global _launch
    if _launch is None:
        _launch = Launch(time.time(), os.getpid())
    return _launch


def from_env() -> World:
    """The place torchrun (RANK, WORLD_SIZE, LOCAL_RANK) gives this process; ALONE without."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return ALONE
    return World(
        rank=int(os.environ["RANK"]),
        size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def join(place: World) -> None:
    """Join the other ranks (gloo for CPU tensors, nccl for CUDA ones when there are GPUs), and
    take rank 0's launch as this run's. MASTER_ADDR and MASTER_PORT say where rank 0 listens."""
    global _world, _launch
    if not place.distributed or (dist.is_available() and dist.is_initialized()):
        return
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend, rank=place.rank, world_size=place.size)
    agreed: list[Any] = [launch()]
    dist.broadcast_object_list(agreed, src=0)
    _world, _launch = place, agreed[0]


def leave() -> None:
    global _world
    if dist.is_available() and dist.is_initialized():  # some builds lack torch.distributed
        dist.destroy_process_group()
    _world = ALONE


@contextlib.contextmanager
def session(place: World) -> Iterator[World]:
    """Joined with the other ranks inside (`join`), left after, also on an error."""
    join(place)
    try:
        yield place
    finally:
        leave()


@contextlib.contextmanager
def joined() -> Iterator[World]:
    """For `gradtrace train` under torchrun: join before Hydra names the run folder, and leave at
    the end. Ranks other than 0 ask Hydra for no files of its own (.hydra/, the log file) and
    print only warnings and errors."""
    place = from_env()
    with session(place):
        if not place.is_main:
            sys.argv += ["hydra.output_subdir=null", "hydra/job_logging=none",
                         "hydra/hydra_logging=none"]
        yield place


def check_shards(place: World, samples: int, batch_size: Optional[int]) -> None:
    """Every batch must split into `place.size` equal shards: only then is the average of the
    ranks' mean losses (and of their gradients) the whole batch's."""
    if not place.distributed:
        return
    sizes = {samples} if batch_size is None else {batch_size, samples % batch_size or batch_size}
    if any(size % place.size for size in sizes):
        what = (
            f"the full batch of {samples} training samples" if batch_size is None
            else f"data.batch_size={batch_size} (an epoch of {samples} samples ends with a batch "
                 f"of {samples % batch_size or batch_size})"
        )
        raise ConfigError(
            f"{what} does not split into {place.size} equal shards, one per process: choose a "
            f"data.batch_size (and a sample count) divisible by {place.size}"
        )


class StepAgreement:
    """One all-reduce per step, of two numbers: the loss (every rank's mean loss, averaged: the
    whole batch's) and how many ranks were asked to stop. All ranks then log, check and stop
    alike, at the same step, and none waits for another that has left."""

    def __init__(self, place: World, stop_requested: Callable[[], bool]) -> None:
        self.size = place.size
        self.stop_requested = stop_requested  # this rank's own signal
        self.stopping = False

    def loss(self, loss: torch.Tensor) -> float:
        flag = 1.0 if self.stop_requested() else 0.0
        both = torch.stack([loss.detach().float(), loss.new_tensor(flag, dtype=torch.float32)])
        dist.all_reduce(both)  # SUM: gloo has no average
        total, stops = both.tolist()
        self.stopping = stops > 0
        return total / self.size

    def stop(self) -> bool:
        return self.stopping


def gather(value: Any, place: World) -> Optional[list[Any]]:
    """Every rank's `value` on rank 0, in rank order (None on the others)."""
    if not place.distributed:
        return [value]
    out: Optional[list[Any]] = [None] * place.size if place.is_main else None
    dist.gather_object(value, out, dst=0)
    return out
