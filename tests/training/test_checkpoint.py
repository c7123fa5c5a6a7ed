"""gradtrace.training.checkpoint in process: the file format and its checks, the state it restores, and
what resuming refuses. (Killing and resuming real runs: test_resume.py.)"""

from __future__ import annotations

import hashlib
import io
import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import gradtrace
from gradtrace.components.data import batches, uniform
from gradtrace.errors import ConfigError
from gradtrace.training import checkpoint


def state(step: int) -> dict:
    return {"step": step, "model": {"w": torch.arange(3.0) * step}, "note": [1, "two", None]}


def test_save_and_read_back_keeping_the_newest(tmp_path: Path):
    for step in (10, 20, 30, 40):
        checkpoint.save(tmp_path, state(step), keep=3)
    (tmp_path / "checkpoints" / "notes.txt").write_text("not a checkpoint")
    paths = checkpoint.checkpoints(tmp_path)
    assert [p.name for p in paths] == ["step-000000040.ckpt", "step-000000030.ckpt",
                                       "step-000000020.ckpt"]
    back = checkpoint.read(paths[0])
    assert back["step"] == 40 and torch.equal(back["model"]["w"], torch.tensor([0.0, 40, 80]))
    assert back["note"] == [1, "two", None]
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))  # no temporary file left


def test_damage_is_detected_and_the_one_before_is_used(tmp_path: Path, caplog):
    checkpoint.save(tmp_path, state(1), keep=3)
    newest = checkpoint.save(tmp_path, state(2), keep=3)
    data = bytearray(newest.read_bytes())
    data[-5] ^= 0x10
    newest.write_bytes(bytes(data))
    with pytest.raises(checkpoint.DamagedCheckpoint, match="checksum does not match"):
        checkpoint.read(newest)
    with caplog.at_level(logging.WARNING):
        path, found = checkpoint.newest_valid(tmp_path)
    assert found["step"] == 1 and path.name == "step-000000001.ckpt"
    assert f"checkpoint {newest} is damaged (its checksum does not match its contents)" in caplog.text
    newest.write_bytes(b"PK\x03\x04 some zip")
    with pytest.raises(checkpoint.DamagedCheckpoint, match="no header"):
        checkpoint.read(newest)


class Payload:
    """Not a tensor, dict, list or number: weights_only=True must refuse to unpickle it."""


def test_loading_runs_no_pickled_code(tmp_path: Path):
    buffer = io.BytesIO()
    torch.save({"step": 1, "evil": Payload()}, buffer)
    payload = buffer.getvalue()
    path = tmp_path / "step-000000001.ckpt"
    path.write_bytes(checkpoint.MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"
                     + payload)  # a valid checksum: only weights_only stands in the way
    with pytest.raises(checkpoint.DamagedCheckpoint, match="torch cannot read it"):
        checkpoint.read(path)


def test_every_random_generator_is_restored():
    saved = checkpoint.rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    checkpoint.set_rng_state(saved)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2]


def test_mini_batches_go_on_from_where_they_stood():
    stream = batches(uniform(10, 2, seed=0), 4, 0, torch.device("cpu"))
    for _ in range(5):  # into the second epoch
        next(stream)
    saved = stream.state_dict()  # type: ignore[attr-defined]
    expected = [next(stream)[1].tolist() for _ in range(4)]
    other = batches(uniform(10, 2, seed=0), 4, 99, torch.device("cpu"))
    other.load_state_dict(saved)  # type: ignore[attr-defined]
    assert [next(other)[1].tolist() for _ in range(4)] == expected


LINEAR = ["model=linear", "data=uniform", "data.batch_size=100", "optim.momentum=0.9",
          "trainer.checkpoint.every_steps=10"]


def test_train_on_from_the_final_checkpoint_is_the_longer_run(tmp_path: Path):
    short = gradtrace.run([*LINEAR, "trainer.steps=30"], run_dir=tmp_path / "a", verbose=False)
    assert short.steps == 30
    longer = gradtrace.run([*LINEAR, "trainer.steps=50", "trainer.resume=true"],
                           run_dir=tmp_path / "a", verbose=False)
    straight = gradtrace.run([*LINEAR, "trainer.steps=50"], run_dir=tmp_path / "b", verbose=False)
    assert set(longer.history) == set(straight.history)
    for tag, series in straight.history.items():
        assert longer.history[tag].steps.tolist() == series.steps.tolist(), tag
        assert np.array_equal(longer.history[tag].values, series.values), tag
    assert torch.equal(longer.model.weight, straight.model.weight)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["optim.momentum=0.5"], r"was written with another config; a run resumes with its own"),
        (["trainer.steps=5"], r"^trainer\.steps must be at least the checkpoint's 30 steps"),
    ],
)
def test_resume_refuses_what_would_not_be_the_same_run(tmp_path: Path, overrides, message):
    gradtrace.run([*LINEAR, "trainer.steps=30"], run_dir=tmp_path, verbose=False)
    with pytest.raises(ConfigError, match=message):
        gradtrace.run([*LINEAR, "trainer.steps=30", "trainer.resume=true", *overrides],
                      run_dir=tmp_path, verbose=False)


def test_resume_without_a_checkpoint_says_where_it_looked(tmp_path: Path):
    with pytest.raises(ConfigError, match=rf"^trainer\.resume=true needs a checkpoint in "
                                          rf"{tmp_path / 'checkpoints'}"):
        gradtrace.run(["trainer.resume=true"], run_dir=tmp_path, verbose=False)
