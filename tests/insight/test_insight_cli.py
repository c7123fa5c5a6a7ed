
"""Gradient insight through the real CLI: what lands in the run folder and the event file, and
the strict gradient check's exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TRAIN_SCRIPT, event_accumulator, run_dirs, scalars

pytestmark = pytest.mark.slow  # every test here starts processes

HERE = Path(__file__).resolve().parent  # broken_losses.py, for loss._target_


def train_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, env=env,
    )


def test_linear_run_with_check_explanation_and_picture(tmp_path: Path):
    result = train_cli(
        tmp_path, "model=linear", "trainer.steps=5", "trainer.grad_check.every_steps=1",
        "trainer.explain_steps=2",
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(tmp_path)
    series = scalars(run_dir)
    for reference in ("fd", "closed_form"):
        for kind in ("abs_error", "rel_error"):
            for name in ("weight", "bias"):
                points = series[f"grad_check/{reference}/{kind}/{name}"]
                assert [step for step, _ in points] == [0, 1, 2, 3, 4]
                assert all(value < 1e-3 for _, value in points)
    assert [v for _, v in series["grad_check/kink_samples"]] == [0.0] * 5
    events = event_accumulator(run_dir)
    assert "explain" in events.Tags()["tensors"]
    assert [e.step for e in events.Tensors("explain")] == [0, 1]
    (image,) = events.Images("landscape")
    assert image.step == 5  # drawn after the last update, with the final loss/val
    assert image.encoded_image_string == (run_dir / "landscape.png").read_bytes()
    assert "explain\nstep 0: loss" in result.stdout  # the console table (Hydra logs to stdout)
    assert "grad check step 4: pass" in result.stdout


def test_strict_check_stops_a_wrong_backward_with_exit_4(tmp_path: Path):
    result = train_cli(
        tmp_path, "model=linear", "model.weight=[[0.5,0.5,0.5]]", "model.bias=[-0.5]",
        "loss._target_=broken_losses.DoubledGradMSE", "trainer.grad_check.every_steps=1",
        "trainer.grad_check.strict=true",
    )
    assert result.returncode == 4, result.stderr
    output = result.stdout + result.stderr
    message = [line for line in output.splitlines() if "gradient check failed" in line]
    assert len(message) == 1 and "[ERROR]" in message[0] and "Traceback" not in output
    assert "step 0: gradient check failed for weight[0,2]: autograd gives -30 but finite " \
        "differences give -15" in message[0]
    # What was logged before the failure is readable, the failing check's errors included.
    (run_dir,) = run_dirs(tmp_path)
    series = scalars(run_dir)
    assert series["loss/train"] == [(0, 6.25)]
    assert series["grad_check/fd/rel_error/weight"][0][1] > 0.99


def test_not_strict_warns_and_finishes(tmp_path: Path):
    result = train_cli(
        tmp_path, "model=linear", "trainer.steps=3", "loss._target_=broken_losses.DoubledGradMSE",
        "trainer.grad_check.every_steps=2", "landscape.enabled=false",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("[WARNING] - step ") == 2  # steps 0 and 2, on stderr
    (run_dir,) = run_dirs(tmp_path)
    assert not (run_dir / "landscape.png").exists()
