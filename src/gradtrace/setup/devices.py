"""Where a run computes: the torch device, and how many CPU threads torch uses."""

from __future__ import annotations

import os

import torch
from hydra.core.hydra_config import HydraConfig

from gradtrace.errors import ConfigError


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """local_rank: this process's place on its machine in a distributed run, which picks its GPU
    (CUDA_VISIBLE_DEVICES or LOCAL_RANK)."""
    if local_rank is not None and name.startswith("cuda:"):
        raise ConfigError(
            f"trainer.device={name} names one GPU, but each process of a distributed run uses "
            f"its own (the one its LOCAL_RANK says): use trainer.device=cuda or auto"
        )
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        build = "a CPU build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise ConfigError(
            f"trainer.device={name}, but this torch {torch.__version__} ({build}) finds no CUDA "
            f"device: use trainer.device=cpu (or auto), or on a machine with an NVIDIA GPU install "
            f"a CUDA build of torch (https://pytorch.org/get-started/locally/)"
        )
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise ConfigError(
            f"trainer.device={name}, but there are {torch.cuda.device_count()} CUDA devices"
        )
    if name.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
        if local_rank is not None:
            torch.cuda.set_device(local_rank)
            return torch.device("cuda", local_rank)
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
