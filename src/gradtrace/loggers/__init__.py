"""Where a run's numbers go. A logger is a sink: the loop and the experiment call these methods
and nothing else, and never touch TensorBoard themselves. What every backend needs:

    log_scalars(step, scalars)           a step's numbers by tag: loss/train, an instrument's, ...
    log_histograms(step, tensors)        tensors too large for per-element scalars
    log_text(step, tag, markdown)        text (the config; explain: a step's table)
    log_image(step, tag, png)            a PNG image (landscape)
    log_hparams(hparams, metrics)        once, before step 0: the settings and the metric tags
    flush()                              write out everything; returns where the output stands,
                                         for a checkpoint (None: nothing to resume)
    close()                              always, also when training fails

TensorBoardLogger is imported from gradtrace.loggers.tensorboard (this module does not load
TensorBoard: the loop's layer imports it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Protocol

if TYPE_CHECKING:  # annotations only: reading event files back needs no torch
    import torch

    from gradtrace.loggers.tensorboard import TensorBoardLogger

HParams = Mapping[str, "float | int | str | bool"]


class Logger(Protocol):
    def log_scalars(self, step: int, scalars: Mapping[str, float]) -> None: ...

    def log_histograms(self, step: int, tensors: Mapping[str, torch.Tensor]) -> None: ...

    def log_text(self, step: int, tag: str, markdown: str) -> None: ...

    def log_image(self, step: int, tag: str, png: bytes) -> None: ...

    def log_hparams(self, hparams: HParams, metrics: list[str]) -> None: ...

    def flush(self) -> Optional[dict[str, Any]]: ...

    def close(self) -> None: ...


class NullLogger:
    """Logs nothing (logger=none): the console summary and the run's log file remain."""

    def __init__(self, run_dir: str) -> None:
        del run_dir

    def log_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        pass

    def log_histograms(self, step: int, tensors: Mapping[str, torch.Tensor]) -> None:
        pass

    def log_text(self, step: int, tag: str, markdown: str) -> None:
        pass

    def log_image(self, step: int, tag: str, png: bytes) -> None:
        pass

    def log_hparams(self, hparams: HParams, metrics: list[str]) -> None:
        pass

    def flush(self) -> Optional[dict[str, Any]]:
        return None

    def close(self) -> None:
        pass


def __getattr__(name: str) -> Any:
    # `_target_: gradtrace.loggers.TensorBoardLogger` (logger=tensorboard, and users' configs)
    # keeps working without every importer of this module loading TensorBoard.
    if name == "TensorBoardLogger":
        from gradtrace.loggers.tensorboard import TensorBoardLogger

        return TensorBoardLogger
    raise AttributeError(f"module 'gradtrace.loggers' has no attribute {name!r}")


__all__ = ["HParams", "Logger", "NullLogger", "TensorBoardLogger"]
