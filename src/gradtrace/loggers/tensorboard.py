"""The TensorBoard logger: buffers steps in memory and writes them in blocks.

Tags (see README, "TensorBoard tags"):

    loss/train            the training loss of the step's batch
    optim/lr              the learning rate of the step
    grad_norm/total       the L2 norm of all gradients together
    param/<name>[i,j]     parameter elements, the values the step's loss was computed with
    grad/<name>[i,j]      that loss's gradients; for SGD param[k+1] = param[k] - lr * grad[k]
    param_norm/<name>     L2 norms of tensors too large for per-element scalars ...
    grad_norm/<name>      ... and of their gradients; histograms under param/<name>, grad/<name>
    loss/final, loss/best the HParams metrics, written once at the last step
    config                the resolved config (text); hparams: the HParams tab
"""

from __future__ import annotations

import time
from typing import Mapping

import numpy as np
import torch
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import summary_v2 as hp
from torch.utils.tensorboard.summary import histogram, text as text_summary

from gradtrace.loggers.events import EventFileWriter, ScalarBlockEncoder

FIXED_TAGS = ["loss/train", "optim/lr", "grad_norm/total"]
FLUSH_EVERY_STEPS = 4096  # buffer at most this many steps (also flushed by time)


class TensorBoardLogger:
    def __init__(self, run_dir: str, columns: list[str], *, flush_every_secs: float = 5.0):
        self.writer = EventFileWriter(run_dir)
        self.encoder = ScalarBlockEncoder(FIXED_TAGS + list(columns))
        self.grad_columns = [i for i, c in enumerate(columns) if c.startswith("grad")]
        self.flush_every_secs = flush_every_secs
        self._last_flush = time.monotonic()
        self._steps: list[int] = []
        self._wall_times: list[float] = []
        self._losses: list[float] = []
        self._lrs: list[float] = []
        self._rows: list[torch.Tensor] = []

    def log_config(self, config_yaml: str, hparams: Mapping[str, float | int | str | bool]):
        # Four-space indent: TensorBoard's text dashboard renders Markdown, this as code.
        markdown = "\n".join("    " + line for line in config_yaml.splitlines())
        self.writer.write_summary(text_summary("config", markdown), step=0)
        metrics = [hp.Metric("loss/final"), hp.Metric("loss/best")]
        config = hp.hparams_config_pb(hparams=[hp.HParam(k) for k in hparams], metrics=metrics)
        self.writer.write_summary(config, step=0)
        self.writer.write_summary(hp.hparams_pb(dict(hparams)), step=0)
        self.writer.flush()

    def log_step(self, step: int, loss: float, lr: float, values: torch.Tensor) -> None:
        # The hot path: append and return; encoding happens in blocks in flush().
        self._steps.append(step)
        self._wall_times.append(time.time())
        self._losses.append(loss)
        self._lrs.append(lr)
        self._rows.append(values)
        if (
            len(self._steps) >= FLUSH_EVERY_STEPS
            or time.monotonic() - self._last_flush > self.flush_every_secs
        ):
            self.flush()

    def log_histograms(self, step: int, tensors: Mapping[str, torch.Tensor]) -> None:
        for tag, tensor in tensors.items():
            data = tensor.detach().float().cpu().numpy()
            self.writer.write_summary(histogram(tag, data, bins="auto"), step=step)

    def log_summary(self, step: int, metrics: Mapping[str, float]) -> None:
        self.flush()
        values = [Summary.Value(tag=tag, simple_value=value) for tag, value in metrics.items()]
        self.writer.write_summary(Summary(value=values), step=step)
        self.writer.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._steps:
            return
        rows = torch.stack(self._rows).cpu().numpy().astype(np.float64)  # [N, columns]
        grad_norm = np.sqrt(np.square(rows[:, self.grad_columns]).sum(axis=1))
        values = np.column_stack([self._losses, self._lrs, grad_norm, rows])
        self.writer.write_records(
            self.encoder.encode(
                np.array(self._steps, dtype=np.int64), np.array(self._wall_times), values
            )
        )
        self.writer.flush()
        for buffer in (self._steps, self._wall_times, self._losses, self._lrs, self._rows):
            buffer.clear()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.writer.close()
