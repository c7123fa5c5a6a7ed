"""The TensorBoard logger: buffers each step's scalars in memory and writes them in blocks.

Every tag is documented in docs/reference.md ("TensorBoard tags"). A step's scalars come as one
mapping (the loop's row: loss/train, optim/lr and what the instruments measured); steps whose
rows have the same tags, as a run's do, are encoded together with numpy (loggers/events.py).
"""

from __future__ import annotations

import struct
import time
from typing import Any, Mapping, Optional

import numpy as np
import torch
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.plugins.text.summary_v2 import text_pb
from torch.utils.tensorboard.summary import histogram

from gradtrace.errors import is_finite_number, require
from gradtrace.loggers.events import EventFileWriter, ScalarBlockEncoder

FLUSH_EVERY_STEPS = 4096  # buffer at most this many steps (also flushed by time)
# Buckets per histogram. TensorBoard re-bins what it shows into 30; numpy's "auto" estimate of a
# bin width sorts the tensor first and cost 3.4x as much (22 against 6.5 ms for 900,000 values).
HISTOGRAM_BINS = 64


class TensorBoardLogger:
    def __init__(
        self,
        run_dir: str,
        *,
        flush_every_secs: float,
        resume: Optional[dict[str, Any]] = None,
    ) -> None:
        """resume: what `sync` returned when the checkpoint being resumed was written: the event
        file is cut back to it, and the run's steps from there are written again."""
        require(
            is_finite_number(flush_every_secs) and flush_every_secs > 0,
            "logger.flush_every_secs",
            flush_every_secs,
            "a finite number > 0",
        )
        self.writer = EventFileWriter(run_dir, resume=resume)
        self.encoders: dict[tuple[str, ...], ScalarBlockEncoder] = {}  # one per set of tags
        self.flush_every_secs = flush_every_secs
        self._last_flush = time.time()
        # (step, wall time, tags, values) of each buffered log_scalars call
        self._pending: list[tuple[int, float, tuple[str, ...], list[float]]] = []

    def log_hparams(
        self, hparams: Mapping[str, float | int | str | bool], metrics: list[str]
    ) -> None:
        config = hp.hparams_config_pb(
            hparams=[hp.HParam(k) for k in hparams], metrics=[hp.Metric(m) for m in metrics]
        )
        self.writer.write_summary(config, step=0)
        self.writer.write_summary(hp.hparams_pb(dict(hparams)), step=0)
        self.writer.flush()

    def log_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        # The hot path: one append; encoding happens a block at a time in flush().
        now = time.time()
        self._pending.append((step, now, tuple(scalars), list(scalars.values())))
        if len(self._pending) >= FLUSH_EVERY_STEPS or now - self._last_flush > self.flush_every_secs:
            self.flush()

    def log_histograms(self, step: int, tensors: Mapping[str, torch.Tensor]) -> None:
        self.flush()  # the buffered steps first, so that events stay in step order
        for tag, tensor in tensors.items():
            data = tensor.detach().float().cpu().numpy()
            self.writer.write_summary(histogram(tag, data, bins=HISTOGRAM_BINS), step=step)

    def log_text(self, step: int, tag: str, markdown: str) -> None:
        self.flush()
        self.writer.write_summary(text_pb(tag, markdown), step=step)

    def log_image(self, step: int, tag: str, png: bytes) -> None:
        self.flush()
        # The PNG header's IHDR chunk: width and height at bytes 16-24, colour type at byte 25.
        width, height = struct.unpack(">II", png[16:24])
        channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(png[25], 4)  # grey, RGB, grey+alpha, RGBA
        image = Summary.Image(
            height=height, width=width, colorspace=channels, encoded_image_string=png
        )
        self.writer.write_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step=step)
        self.writer.flush()

    def flush(self) -> dict[str, Any]:
        """Write out every buffered step; where the event file stands (for a checkpoint)."""
        self._last_flush = time.time()
        pending, self._pending = self._pending, []
        start = 0
        while start < len(pending):  # runs of consecutive calls with the same tags: one block
            tags = pending[start][2]
            end = start + 1
            while end < len(pending) and pending[end][2] == tags:
                end += 1
            steps, wall_times, _, rows = zip(*pending[start:end])
            encoder = self.encoders.get(tags)
            if encoder is None:
                encoder = self.encoders[tags] = ScalarBlockEncoder(list(tags))
            values = np.array(rows, dtype=np.float64).reshape(end - start, len(tags))
            self.writer.write_records(
                encoder.encode(np.array(steps, dtype=np.int64), np.array(wall_times), values)
            )
            start = end
        self.writer.flush()
        return self.writer.position()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.writer.close()
