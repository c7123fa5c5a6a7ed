"""The fast event writer produces standard records that TensorBoard's own code reads."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import (
    masked_crc32c as tb_masked_crc,
)

from gradtrace.loggers.events import EventFileWriter, ScalarBlockEncoder, masked_crc32c

from conftest import event_accumulator

TAGS = ["loss/train", "param/weight[0,2]", "grad/w"]
# Steps whose varint takes 1, 2, 3 and 4 bytes, so one block has records of four lengths.
STEPS = np.array([0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21 + 5], dtype=np.int64)


def records(data: bytes):
    """Split an event file body into record payloads, checking both CRCs as TensorBoard does."""
    offset = 0
    while offset < len(data):
        header = data[offset : offset + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[offset + 8 : offset + 12])
        payload = data[offset + 12 : offset + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[offset + 12 + length : offset + 16 + length])
        assert header_crc == tb_masked_crc(header)
        assert payload_crc == tb_masked_crc(payload)
        yield payload
        offset += 16 + length


def test_masked_crc_matches_tensorboard():
    for data in (b"", b"a", b"brain.Event:2", bytes(range(256)) * 3):
        assert masked_crc32c(data) == tb_masked_crc(data)


def test_block_encoding_parses_back_with_protobuf():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(len(STEPS), len(TAGS))) * 1e3
    values[0, 0], values[1, 1] = 0.0, -0.0  # zeros are written explicitly, still parse
    wall_times = 1.7e9 + np.arange(len(STEPS)) * 0.25
    encoded = ScalarBlockEncoder(TAGS).encode(STEPS, wall_times, values)
    events = [Event.FromString(payload) for payload in records(encoded)]
    assert [e.step for e in events] == STEPS.tolist()  # order kept across record lengths
    assert [e.wall_time for e in events] == wall_times.tolist()
    for event, row in zip(events, values):
        assert [v.tag for v in event.summary.value] == TAGS
        assert [v.simple_value for v in event.summary.value] == row.astype(np.float32).tolist()


def test_event_file_reads_back_with_event_accumulator(tmp_path: Path):
    writer = EventFileWriter(tmp_path)
    values = np.arange(len(STEPS) * len(TAGS), dtype=np.float64).reshape(len(STEPS), -1) / 7
    writer.write_records(ScalarBlockEncoder(TAGS).encode(STEPS, 1e9 + STEPS / 10, values))
    writer.close()
    accumulator = event_accumulator(tmp_path)
    assert sorted(accumulator.Tags()["scalars"]) == sorted(TAGS)
    for column, tag in enumerate(TAGS):
        read = accumulator.Scalars(tag)
        assert [e.step for e in read] == STEPS.tolist()
        np.testing.assert_array_equal(
            [e.value for e in read], values[:, column].astype(np.float32)
        )


@pytest.mark.slow
def test_one_tag_read_fast_is_what_tensorboard_reads(tmp_path: Path):
    from gradtrace.loggers.reading import read_scalar

    from conftest import run_cli

    done = run_cli(tmp_path, "model=regressor", "trainer.steps=300", "data.val_fraction=0.1",
                   "trainer.val_every_steps=50", "hydra.run.dir=run")
    assert done.returncode == 0, done.stderr
    accumulator = event_accumulator(tmp_path / "run")
    for tag in ("loss/train", "param/params[3]", "loss/val", "loss/final"):
        expected = [(e.step, e.value) for e in accumulator.Scalars(tag)]
        series = read_scalar(tmp_path / "run", tag)
        assert list(zip(series.steps.tolist(), series.values.tolist())) == expected, tag
    assert len(read_scalar(tmp_path / "run", "no/such/tag").steps) == 0


def test_reading_every_tag_fast_is_what_tensorboard_reads(tmp_path: Path):
    """Block-encoded records of four lengths, protobuf-written events among them (two scalar
    events of one length with different tags, a histogram, a step logged twice), and a record cut
    short at the end: read_scalars and read_scalar give what TensorBoard's reader gives. (It drops
    the values of a tag logged after a later step of it, as a restart; so the step logged twice
    here is the last one.)"""
    from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary

    from gradtrace.loggers.reading import read_scalar, read_scalars

    writer = EventFileWriter(tmp_path)
    rng = np.random.default_rng(1)
    encoder = ScalarBlockEncoder(TAGS)
    writer.write_records(encoder.encode(STEPS[:5], 1e9 + STEPS[:5], rng.normal(size=(5, 3))))
    for step, tag in ((5, "loss/val"), (6, "loss/vbl"), (128, "loss/val")):
        writer.write_summary(Summary(value=[Summary.Value(tag=tag, simple_value=step / 3)]), step)
    histogram = HistogramProto(min=0, max=1, num=2, bucket_limit=[1.0], bucket=[2.0])
    writer.write_summary(Summary(value=[Summary.Value(tag="param/w", histo=histogram)]), 7)
    writer.write_records(encoder.encode(STEPS[5:], 1e9 + STEPS[5:], rng.normal(size=(3, 3))))
    writer.write_records(encoder.encode(STEPS[-1:], np.array([2e9]), np.ones((1, 3))))  # again
    writer.close()
    accumulator = event_accumulator(tmp_path)
    expected = {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
                for tag in accumulator.Tags()["scalars"]}
    assert set(expected) == {*TAGS, "loss/val", "loss/vbl"}
    (path,) = tmp_path.glob("events.out.tfevents.*")
    with path.open("ab") as file:  # a record being written when the run was killed
        file.write(encoder.encode(np.array([9]), np.array([3e9]), np.ones((1, 3)))[:-9])
    got = read_scalars(tmp_path)
    assert set(got) == set(expected)
    for tag, points in expected.items():
        assert list(zip(got[tag].steps.tolist(), got[tag].values.tolist())) == points, tag
        one = read_scalar(tmp_path, tag)
        assert list(zip(one.steps.tolist(), one.values.tolist())) == points, tag


def test_one_tag_at_two_offsets_in_records_of_one_length(tmp_path: Path):
    """Rows of the same tags in two orders: records of one length that hold `loss/train` at
    two places. read_scalar must find both kinds (the search that tries the first record's
    offset in every record of its length finds half, and knows it by counting)."""
    from gradtrace.loggers.reading import read_scalar

    writer = EventFileWriter(tmp_path)
    first = ScalarBlockEncoder(["loss/train", "optim/lr"])
    second = ScalarBlockEncoder(["optim/lr", "loss/train"])
    for start in range(0, 40, 10):  # alternating blocks of the two layouts
        encoder = first if start % 20 == 0 else second
        steps = np.arange(start, start + 10, dtype=np.int64)
        values = np.column_stack([steps / 7, steps / 11]) if encoder is first else \
            np.column_stack([steps / 11, steps / 7])
        writer.write_records(encoder.encode(steps, 1e9 + steps, values))
    writer.close()
    series = read_scalar(tmp_path, "loss/train")
    expected = [(e.step, e.value) for e in event_accumulator(tmp_path).Scalars("loss/train")]
    assert list(zip(series.steps.tolist(), series.values.tolist())) == expected
    assert series.steps.tolist() == list(range(40))
    np.testing.assert_allclose(series.values, np.arange(40) / 7, rtol=1e-6)
