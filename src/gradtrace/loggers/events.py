"""A TensorBoard event file writer fast enough to log every parameter every step.

An event file is a sequence of records, each

    uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)

where `data` is a serialized `tensorboard.compat.proto.event_pb2.Event`. Rare events (the config,
hparams, histograms) are serialized by protobuf itself. Scalars take a fast path: one Event per
step holding one Summary.Value per tag, encoded for a whole block of steps at once with numpy,
because every step's Summary has the same byte layout and only the float values differ. The file
stays open, and each block is one `write`.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path
from typing import Any, BinaryIO, Optional

import google_crc32c
import numpy as np
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary

from gradtrace.errors import ConfigError


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(n: int) -> bytes:
    """n as a protobuf varint: 7 bits a byte, low bits first, the high bit set on all but the last."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def value_head(tag: str) -> bytes:
    """The bytes of a Summary.Value before its float: field 1 (tag, length-delimited), then
    field 2's key (simple_value, fixed32)."""
    name = tag.encode()
    return b"\x0a" + varint(len(name)) + name + b"\x15"


def _record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


class ScalarBlockEncoder:
    """Encodes rows of float32 values for fixed tags as one Event record per step."""

    def __init__(self, tags: list[str]) -> None:
        self.tags = list(tags)
        summary = bytearray()
        value_offsets = []  # where each float32 goes inside the Summary bytes
        for tag in self.tags:
            value = value_head(tag)
            summary += b"\x0a" + varint(len(value) + 4) + value  # Summary.value, field 1
            value_offsets.append(len(summary))
            summary += b"\0\0\0\0"
        self.summary_template = np.frombuffer(bytes(summary), dtype=np.uint8)
        self.float_positions = (np.array(value_offsets)[:, None] + np.arange(4)).reshape(-1)

    def encode(self, steps: np.ndarray, wall_times: np.ndarray, values: np.ndarray) -> bytes:
        """Records for `steps` [N], `wall_times` [N] (seconds) and `values` [N, len(tags)]."""
        n = len(steps)
        summaries = np.tile(self.summary_template, (n, 1))
        values = np.ascontiguousarray(values, dtype="<f4")
        summaries[:, self.float_positions] = values.view(np.uint8).reshape(n, -1)
        summary_head = b"\x2a" + varint(summaries.shape[1])  # Event.summary, field 5
        # Steps are varints, so records differ in length only where a step crosses 2**7,
        # 2**14, ...: encode each run of equal-length steps as one fixed-width block.
        widths = _varint_widths(steps)
        chunks = []
        for width in np.unique(widths):
            rows = np.flatnonzero(widths == width)
            chunks.append((rows[0], self._encode_fixed(
                steps[rows], wall_times[rows], summaries[rows], int(width), summary_head
            )))
        return b"".join(chunk for _, chunk in sorted(chunks, key=lambda c: c[0]))

    @staticmethod
    def _encode_fixed(
        steps: np.ndarray,
        wall_times: np.ndarray,
        summaries: np.ndarray,
        width: int,
        summary_head: bytes,
    ) -> bytes:
        n = len(steps)
        step_bytes = np.empty((n, width), dtype=np.uint8)
        for i in range(width):
            byte = (steps >> (7 * i)) & 0x7F
            step_bytes[:, i] = byte | (0x80 if i < width - 1 else 0)
        head = np.frombuffer(summary_head, dtype=np.uint8)
        data = np.concatenate(
            [
                np.full((n, 1), 0x09, dtype=np.uint8),  # Event.wall_time, field 1, fixed64
                wall_times.astype("<f8").view(np.uint8).reshape(n, 8),
                np.full((n, 1), 0x10, dtype=np.uint8),  # Event.step, field 2, varint
                step_bytes,
                np.broadcast_to(head, (n, len(head))),
                summaries,
            ],
            axis=1,
        )
        length = data.shape[1]
        header = struct.pack("<Q", length)
        flat = data.tobytes()
        crcs = np.fromiter(
            (google_crc32c.value(flat[i * length : (i + 1) * length]) for i in range(n)),
            dtype=np.uint64,
            count=n,
        )
        masked = (((crcs >> 15) | (crcs << 17)) + 0xA282EAD8) & 0xFFFFFFFF
        records = np.concatenate(
            [
                np.broadcast_to(
                    np.frombuffer(header + struct.pack("<I", masked_crc32c(header)), np.uint8),
                    (n, 12),
                ),
                data,
                masked.astype("<u4").view(np.uint8).reshape(n, 4),
            ],
            axis=1,
        )
        return records.tobytes()


def _varint_widths(steps: np.ndarray) -> np.ndarray:
    widths = np.ones(len(steps), dtype=np.int64)
    for shift in range(7, 64, 7):
        widths += steps >= (1 << shift)
    return widths


class EventFileWriter:
    """Appends records to one event file in `log_dir`, kept open until `close`.

    resume: {"file": name, "bytes": size} from `position()`: reopen that file and cut it back to
    that size (the records written after it are written again by the resumed run)."""

    def __init__(self, log_dir: str | os.PathLike, resume: Optional[dict[str, Any]] = None) -> None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        if resume is not None:
            self.path = Path(log_dir) / resume["file"]
            size = self.path.stat().st_size if self.path.is_file() else -1
            if size < resume["bytes"]:
                raise ConfigError(
                    f"cannot resume: the event file {self.path} is missing or shorter than when "
                    f"the checkpoint was written ({max(size, 0)} < {resume['bytes']} bytes)"
                )
            self._file: BinaryIO = open(self.path, "r+b")
            self._file.truncate(resume["bytes"])
            self._file.seek(resume["bytes"])
            return
        now = time.time()
        name = f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}.0"
        self.path = Path(log_dir) / name
        self._file = open(self.path, "wb")
        self.write_event(Event(wall_time=now, file_version="brain.Event:2"))
        self.flush()

    def position(self) -> dict[str, Any]:
        """Where the file stands, every record so far written out: for `resume`."""
        self.flush()
        return {"file": self.path.name, "bytes": self._file.tell()}

    def write_event(self, event: Event) -> None:
        self.write_records(_record(event.SerializeToString()))

    def write_summary(self, summary: Summary, step: int, wall_time: float | None = None) -> None:
        wall_time = time.time() if wall_time is None else wall_time
        self.write_event(Event(wall_time=wall_time, step=step, summary=summary))

    def write_records(self, records: bytes) -> None:
        try:
            self._file.write(records)
        except OSError as error:  # a full disk: say which file
            raise OSError(error.errno, error.strerror, str(self.path)) from None

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(self.path)) from None

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()
