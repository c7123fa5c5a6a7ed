"""Reading a run's scalars back from its event files, fast: the sweep summary's loss curves and
the Python API's history (gradtrace.run) read 100,000 logged steps in a small fraction of a second,
where TensorBoard's loaders take tens of seconds.

The event file stays the one source (see loggers/events.py for its records). Two facts make it
fast to read with numpy instead of record by record in Python:
- gradtrace writes one record per step, all of one length until the step's varint grows, so
  long runs of records follow each other at a fixed stride (`_bounds` finds them in bulk);
- those records differ only in their wall time, step and float values: records of one length
  whose every other byte equals the first one's hold the same tags at the same places, and their
  values are read as one array. Every other record (config, text, histograms, images, events
  written by another tool) is parsed by protobuf.
Only simple_value scalars count, as gradtrace and TensorBoard's own scalar writers write them.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event

from gradtrace.loggers.events import value_head

HEADER, FOOTER = 12, 4  # uint64 length + its masked CRC; the data's masked CRC
WALL_TIME = 0x09  # Event field 1 (wall_time, fixed64), first in every event gradtrace writes
STEP = 0x10  # Event field 2 (step, varint): absent when 0 (proto3)
CHUNK_BYTES = 1 << 25  # records compared at once: at most 32 MB of them

# Points of one tag as found: steps, values, and where each was in the files (for a step logged
# twice, the order it was written in).
Found = tuple[np.ndarray, np.ndarray, np.ndarray]


class Series(NamedTuple):
    """One scalar tag of a run: steps [N] (int64) and values [N] (float64), in step order."""

    steps: np.ndarray
    values: np.ndarray


def read_scalar(run_dir: str | os.PathLike, tag: str) -> Series:
    """One scalar tag of the run's event files: the float after each occurrence of the tag's
    encoded Summary.Value head, found by a bytes search, and the step of the record it is in."""
    head = value_head(tag)
    parts = []
    for number, buffer in enumerate(_files(run_dir)):
        data = np.frombuffer(buffer, dtype=np.uint8)
        starts, ends = _bounds(buffer)
        hits = _find_all(buffer, head, starts, ends)
        record = np.searchsorted(starts, hits, side="right") - 1
        inside = record >= 0
        inside[inside] = hits[inside] + len(head) + 4 <= ends[record[inside]]
        hits, record = hits[inside], record[inside]
        first = np.r_[True, record[1:] != record[:-1]][: len(record)]  # one value a record
        record, hits = record[first], hits[first]
        event = _events(data, starts[record], ends[record])
        parts.append((_steps(data, starts[record][event]), _floats(data, hits[event] + len(head)),
                      _position(number, hits[event])))
    return _sorted(parts)


def read_scalars(run_dir: str | os.PathLike) -> dict[str, Series]:
    """Every scalar tag of the run's event files. A record cut short at the end (a run still
    writing, or killed) ends its file."""
    found: dict[str, list[Found]] = {}
    for number, buffer in enumerate(_files(run_dir)):
        data = np.frombuffer(buffer, dtype=np.uint8)
        starts, ends = _bounds(buffer)
        keep = _events(data, starts, ends)
        starts, lengths = starts[keep], (ends - starts)[keep]
        for length in np.unique(lengths).tolist():
            group = starts[lengths == length]
            chunk = max(1, CHUNK_BYTES // length)
            for begin in range(0, len(group), chunk):
                _read_group(buffer, data, group[begin : begin + chunk], length, number, found)
    return {tag: _sorted(parts) for tag, parts in found.items()}


def _read_group(
    buffer: bytes, data: np.ndarray, starts: np.ndarray, length: int, number: int,
    found: dict[str, list[Found]],
) -> None:
    """Records of one length: those laid out as the first one, as one array; the rest one by one."""
    first = int(starts[0])
    event = Event.FromString(buffer[first : first + length])
    tags, offsets = [], []  # each simple value's tag, and where its float starts in the record
    position = first
    for value in event.summary.value:
        if value.WhichOneof("value") != "simple_value":
            continue
        head = value_head(value.tag)
        at = buffer.find(head, position, first + length)
        if at < 0:  # not where a Value would be: read every record of the group alone
            return _read_each(buffer, starts, length, number, found)
        tags.append(value.tag)
        offsets.append(at + len(head) - first)
        position = at + len(head) + 4
    rows = data[starts[:, None] + np.arange(length)]  # [records, length]
    varies = np.zeros(length, dtype=bool)  # wall time, step, floats: may differ between records
    varies[1:9] = True
    step_bytes = _varint_length(data, first + 10) if data[first + 9] == STEP else 0
    varies[10 : 10 + step_bytes] = True
    for offset in offsets:
        varies[offset : offset + 4] = True
    same = (rows[:, ~varies] == rows[0, ~varies]).all(1)
    # The step's varint must end where the first record's does, or the bytes after it mean
    # something else.
    continuation = rows[:, 10 : 10 + step_bytes] & 0x80
    same &= (continuation == continuation[0]).all(1)
    alike = starts[same]
    if tags:
        steps = _steps(data, alike)
        columns = np.asarray(offsets)[:, None] + np.arange(4)  # [tags, 4]
        values = np.ascontiguousarray(rows[same][:, columns.ravel()]).view("<f4")  # [n, tags]
        positions = _position(number, alike)
        for column, tag in enumerate(tags):
            found.setdefault(tag, []).append((steps, values[:, column], positions))
    if not same.all():
        _read_each(buffer, starts[~same], length, number, found)


def _read_each(
    buffer: bytes, starts: np.ndarray, length: int, number: int, found: dict[str, list[Found]]
) -> None:
    for start in starts.tolist():
        event = Event.FromString(buffer[start : start + length])
        position = _position(number, np.array([start]))
        for value in event.summary.value:
            if value.WhichOneof("value") == "simple_value":
                point = (np.array([event.step]), np.array([value.simple_value]), position)
                found.setdefault(value.tag, []).append(point)


def _files(run_dir: str | os.PathLike) -> list[bytes]:
    return [path.read_bytes() for path in sorted(Path(run_dir).glob("events.out.tfevents.*"))]


def _bounds(buffer: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Where each whole record's data starts and ends, in order. Following the length headers
    one by one, but checking, wherever a record is followed by more of its length, the headers at
    its stride with numpy, in growing chunks: a run of one length costs a few numpy calls."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    starts, lengths = [], []
    offset, chunk = 0, 16
    while offset + HEADER <= len(buffer):
        (length,) = struct.unpack_from("<Q", buffer, offset)
        stride = length + HEADER + FOOTER
        if offset + stride > len(buffer):
            break  # cut short: a run still writing, or killed
        count = min(chunk, (len(buffer) - offset) // stride)  # records that fit, if alike
        at = offset + stride * np.arange(count)
        headers = np.ascontiguousarray(data[at[:, None] + np.arange(8)]).view("<u8")[:, 0]
        same = int(count if (headers == length).all() else (headers == length).argmin())
        starts.append(at[:same] + HEADER)
        lengths.append(np.full(same, length))
        offset += stride * same
        chunk = chunk * 4 if same == count else 16
    if not starts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    begin = np.concatenate(starts).astype(np.int64)
    return begin, begin + np.concatenate(lengths).astype(np.int64)


def _events(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which records hold an event with a wall time (every gradtrace and TensorBoard one)."""
    return ((ends - starts) >= 10) & (data[np.minimum(starts, len(data) - 1)] == WALL_TIME)


def _steps(data: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The step of each event record: the varint after its wall time, 0 when absent."""
    steps = np.zeros(len(starts), dtype=np.int64)
    present = data[starts + 9] == STEP
    position = starts[present] + 10
    value = np.zeros(len(position), dtype=np.int64)
    going = np.ones(len(position), dtype=bool)
    for byte_index in range(10):
        byte = data[np.minimum(position + byte_index, len(data) - 1)].astype(np.int64)
        value |= np.where(going, (byte & 0x7F) << (7 * byte_index), 0)
        going &= byte >= 0x80
        if not going.any():
            break
    steps[present] = value
    return steps


def _floats(data: np.ndarray, positions: np.ndarray) -> np.ndarray:
    raw = np.ascontiguousarray(data[positions[:, None] + np.arange(4)])
    return raw.view("<f4")[:, 0].astype(np.float64) if len(positions) else np.zeros(0)


def _find_all(buffer: bytes, pattern: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Where `pattern` starts in `buffer`'s records, every occurrence, in order. Records of one
    length written by one logger hold it at one offset: it is looked for in the first record of
    each length and tried, in numpy, at that offset in all the others. That is the whole answer
    when each length's records all hold it there (or there is one such record, searched whole);
    otherwise (mixed layouts, or a length whose first record lacks it) a count of the
    occurrences in the file decides, and a search match by match is the fallback (a Python step
    per match: 0.15 s for 100,000)."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    width, expected = len(pattern), np.frombuffer(pattern, dtype=np.uint8)
    lengths = ends - starts
    kinds, first, sizes = np.unique(lengths, return_index=True, return_counts=True)
    found, certain = [], True
    for length, record, size in zip(kinds, first, sizes):
        start, end = int(starts[record]), int(ends[record])
        if size == 1:  # a record of its own length (the config, a histogram): search it
            found.append(_search(buffer, pattern, start, end))
            continue
        offset = buffer.find(pattern, start, end)
        if offset < 0:
            certain = False  # others of this length may hold it elsewhere
            continue
        at = starts[lengths == length] + (offset - start)
        there = (data[at[:, None] + np.arange(width)] == expected).all(1)
        certain = certain and bool(there.all()) and buffer.find(pattern, offset + 1, end) < 0
        found.append(at[there])
    hits = np.sort(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)
    if certain or len(hits) == buffer.count(pattern):
        return hits
    return _search(buffer, pattern, 0, len(buffer))


def _search(buffer: bytes, pattern: bytes, start: int, end: int) -> np.ndarray:
    matches = re.compile(re.escape(pattern)).finditer(buffer, start, end)
    return np.fromiter((match.start() for match in matches), dtype=np.int64)


def _varint_length(data: np.ndarray, position: int) -> int:
    length = 1
    while data[position + length - 1] >= 0x80:
        length += 1
    return length


def _position(file_number: int, offsets: np.ndarray) -> np.ndarray:
    """Where in the run's files (in name order) each point was written, as one number."""
    return file_number * (1 << 48) + offsets.astype(np.int64)


def _sorted(parts: list[Found]) -> Series:
    """The parts as one series in step order; a step logged twice, in the order written."""
    if not parts:
        return Series(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
    steps, values, positions = (np.concatenate(column) for column in zip(*parts))
    order = np.lexsort((positions, steps))
    return Series(steps[order].astype(np.int64), values[order].astype(np.float64))
