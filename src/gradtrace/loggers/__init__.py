"""Where the trainer's numbers go. A logger is a sink: the trainer calls these methods and nothing
else, and never touches TensorBoard itself.

    log_config(config_yaml, hparams, metrics) once, before step 0; metrics: the HParams columns
    log_step(step, loss, lr, values)          every logged step; values is the Probe's row
    log_histograms(step, tensors)             now and then, for tensors too large for per-element
    log_summary(step, metrics)                once, at the end (final, best, validation loss)
    log_scalars(step, scalars)                rare extra scalars by tag (grad_check/...)
    log_text(step, tag, markdown)             a text entry (explain: a step's table)
    log_image(step, tag, png)                 a PNG image (landscape)
    sync()                                    write out every logged step; returns where the
                                              output stands, for a checkpoint (None: nothing)
    close()                                   always, also when training fails
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Protocol

import torch

from gradtrace.loggers.tensorboard import TensorBoardLogger

HParams = Mapping[str, "float | int | str | bool"]


class Logger(Protocol):
    def log_config(self, config_yaml: str, hparams: HParams, metrics: list[str]) -> None: ...

    def log_step(self, step: int, loss: float, lr: float, values: list[float]) -> None: ...

    def log_histograms(self, step: int, tensors: Mapping[str, torch.Tensor]) -> None: ...

    def log_summary(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def log_scalars(self, step: int, scalars: Mapping[str, float]) -> None: ...

    def log_text(self, step: int, tag: str, markdown: str) -> None: ...

    def log_image(self, step: int, tag: str, png: bytes) -> None: ...

    def sync(self) -> Optional[dict[str, Any]]: ...

    def close(self) -> None: ...


class NullLogger:
    """Logs nothing (logger=none): the console summary and Hydra's log file remain."""

    def __init__(self, run_dir: str, columns: list[str]) -> None:
        del run_dir, columns

    def log_config(self, config_yaml: str, hparams: HParams, metrics: list[str]) -> None:
        pass

    def log_step(self, step: int, loss: float, lr: float, values: list[float]) -> None:
        pass

    def log_histograms(self, step: int, tensors: Mapping[str, torch.Tensor]) -> None:
        pass

    def log_summary(self, step: int, metrics: Mapping[str, float]) -> None:
        pass

    def log_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        pass

    def log_text(self, step: int, tag: str, markdown: str) -> None:
        pass

    def log_image(self, step: int, tag: str, png: bytes) -> None:
        pass

    def sync(self) -> Optional[dict[str, Any]]:
        return None

    def close(self) -> None:
        pass


__all__ = ["HParams", "Logger", "NullLogger", "TensorBoardLogger"]
