"""A sweep killed with kill -9 in the middle of a job loses nothing: its summary counts and names
the job that never finished and the jobs that never started, and rerun_failed.py completes every
one of them in its own folder, the unfinished one from its checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gradtrace.training import checkpoint

from conftest import TRAIN_SCRIPT
from sweep_helpers import job_results, kill_9_when, only_sweep_dir, run_script

pytestmark = pytest.mark.slow  # every test here starts processes


LRS = ("0.01", "0.02", "0.03", "0.04")
SWEEP = ["-m", "model=regressor", "trainer.steps=4000", "trainer.checkpoint.every_steps=500",
         "landscape.enabled=false", f"optim.lr={','.join(LRS)}"]


@pytest.mark.parametrize("launcher", [(), ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")],
                         ids=["basic", "joblib"])
def test_a_killed_sweep_is_counted_and_completed(launcher: tuple[str, ...], tmp_path: Path):
    # Killed, with any workers, once some job has written a checkpoint.
    kill_9_when([sys.executable, str(TRAIN_SCRIPT), *SWEEP, *launcher], tmp_path,
                lambda: any(checkpoint.checkpoints(d) for d in tmp_path.glob("outputs/multirun/*/*_*")))
    sweep_dir = only_sweep_dir(tmp_path)
    started = [d for d in sweep_dir.iterdir() if (d / ".hydra").is_dir()]
    assert 1 <= len(started) < len(LRS)

    summary = run_script(tmp_path, "summarize.py", str(sweep_dir), "--no-plot")
    assert summary.returncode == 1
    completed = len(job_results(sweep_dir))  # the jobs that wrote result.json before the kill
    unfinished = len(started) - completed
    assert unfinished >= 1
    counts = [f"{completed} completed", f"{unfinished} unfinished",
              f"{len(LRS) - len(started)} not started"]
    assert f"{len(LRS)} jobs: " in summary.stdout and all(c in summary.stdout for c in counts)
    assert "never started: the sweep stopped before it" in summary.stdout

    checkpointed = {d.name for d in started
                    if checkpoint.checkpoints(d) and not (d / "result.json").exists()}
    assert checkpointed  # the sweep was killed once one had a checkpoint

    rerun = run_script(tmp_path, "rerun_failed.py", str(sweep_dir), timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{len(LRS)} jobs: {len(LRS)} completed, 0 failed" in rerun.stdout
    results = job_results(sweep_dir)
    assert sorted(results) == sorted(LRS) and all(r["steps"] == 4000 for r in results.values())
    logs = [d / "train.log" for d in sweep_dir.iterdir() if (d / "train.log").is_file()]
    resumed = {log.parent.name for log in logs if "resuming from" in log.read_text()}
    assert resumed == checkpointed  # from their checkpoints, not from step 0
