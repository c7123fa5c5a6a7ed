
"""A sweep job under submitit that is preempted (or times out) stops at the end of a step, saves a
checkpoint, is requeued by submitit, and resumes by itself: its results are bitwise those of the
same run never stopped. hydra/launcher=slurm_local runs the cluster path on this machine, and
submitit's preemption signal (SIGUSR2) is sent to the job's process by its own id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gradtrace.loggers.reading import read_scalars
from gradtrace.training import checkpoint

from conftest import TRAIN_SCRIPT

pytestmark = pytest.mark.slow  # every test here starts processes

RUN = ["model=regressor", "trainer.steps=20000", "trainer.checkpoint.every_steps=500",
       "landscape.enabled=false", "data.batch_size=64", "optim=adam"]


def job_process(sweep_dir: Path) -> int:
    """The process id of the submitit job running in `sweep_dir` (a child of the sweep's)."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or it has just ended
            continue
        if b"submitit.core._submit" in command and str(sweep_dir).encode() in b" ".join(command):
            return int(entry.name)
    raise AssertionError(f"no submitit job process for {sweep_dir}")


def test_a_preempted_job_is_requeued_and_resumes_bitwise(tmp_path: Path):
    reference = subprocess.run([sys.executable, str(TRAIN_SCRIPT), *RUN, "hydra.run.dir=ref"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    sweep_dir = tmp_path / "sweep"
    sweep = subprocess.Popen(
        [sys.executable, str(TRAIN_SCRIPT), "-m", "hydra/launcher=slurm_local", *RUN,
         f"hydra.sweep.dir={sweep_dir}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not any(checkpoint.checkpoints(d) for d in sweep_dir.glob("0_*")):
            assert sweep.poll() is None, sweep.communicate()[0]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(job_process(sweep_dir), signal.SIGUSR2)  # what SLURM sends before a time limit
        output, _ = sweep.communicate(timeout=300)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
            sweep.wait()
    assert sweep.returncode == 0, output
    (job,) = sweep_dir.glob("0_*")
    log = (job / "train.log").read_text()
    assert "Caught signal SIGUSR2" in log and "resuming from" in log  # requeued, not restarted
    expected, got = read_scalars(tmp_path / "ref"), read_scalars(job)
    assert set(got) == set(expected)
    for tag, series in expected.items():
        assert got[tag].steps.tolist() == series.steps.tolist(), tag
        assert np.array_equal(got[tag].values, series.values), tag
