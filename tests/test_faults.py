"""Faults of the world: an output location that cannot be written, a disk that fills up during a
run, a damaged result.json. One line, a documented exit code, no traceback, nothing lost that was
already written."""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gradtrace
from gradtrace.errors import ConfigError
from gradtrace.loggers.reading import read_scalars
from gradtrace.sweeps.jobs import find_jobs
from gradtrace.sweeps.result import COMPLETED, FAILED, JobResult, read_result, write_result
from gradtrace.sweeps.summary import summarize

from conftest import TRAIN_SCRIPT, event_accumulator

pytestmark = pytest.mark.slow  # every test here starts processes


def one_error_line(output: str) -> str:
    assert "Traceback" not in output, output
    (line,) = [line for line in output.splitlines() if "ERROR" in line or "cannot write" in line]
    return line


def test_a_run_folder_that_is_a_file_is_one_line_exit_2(cli, tmp_path: Path):
    (tmp_path / "taken").write_text("a file, not a folder")
    for folder, args in [("taken/run", ["hydra.run.dir=taken/run"]),
                         ("taken/sweep", ["-m", "hydra.sweep.dir=taken/sweep", "optim.lr=1,2"])]:
        result = cli(*args)
        assert result.returncode == 2, result.stdout + result.stderr
        line = one_error_line(result.stdout + result.stderr)
        assert line.endswith(f"cannot write {folder}: Not a directory")
    assert (tmp_path / "taken").read_text() == "a file, not a folder"


def limit_file_size() -> None:
    """In the child: files may not grow past 200 kB, and writing past it fails with EFBIG (as a
    full disk fails with ENOSPC) instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_a_disk_that_fills_up_stops_the_run_with_one_line_and_keeps_what_was_written(tmp_path):
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), "model=regressor", "trainer.steps=5000",
         f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, preexec_fn=limit_file_size,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    (event_file,) = run_dir.glob("events.out.tfevents.*")
    line = one_error_line(done.stdout + done.stderr)
    assert line.endswith(f"cannot write {event_file}: File too large")
    # The steps written before the disk filled read back, in order, with TensorBoard's reader.
    steps = [e.step for e in event_accumulator(run_dir).Scalars("loss/train")]
    assert len(steps) > 100 and steps == list(range(len(steps)))
    assert read_scalars(run_dir)["loss/train"].steps.tolist() == steps
    result = json.loads((run_dir / "result.json").read_text())  # whole, not partial
    assert result["status"] == "failed" and result["error"].endswith("File too large")


def test_result_json_is_written_whole_or_not_at_all(tmp_path: Path, monkeypatch):
    write_result(tmp_path, JobResult(FAILED, error="the first"))
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary file left

    def disk_full(fd: int) -> None:  # where a full disk shows up: writing the data out
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        write_result(tmp_path, JobResult(COMPLETED, final_loss=1.0))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
    assert read_result(tmp_path) == JobResult(FAILED, error="the first")  # the old one, whole


def test_a_damaged_result_is_a_failed_job_with_its_reason(tmp_path: Path):
    for num, content in enumerate(['{"status": "completed", "final_los', "", '["a list"]']):
        job = tmp_path / f"{num}_job"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- optim.lr={num}\n")
        (job / "result.json").write_text(content)
        result = read_result(job)
        assert result is not None and result.status == FAILED
        assert result.error is not None and "result.json is damaged" in result.error
    jobs = find_jobs(tmp_path)
    assert [job.status for job in jobs] == [FAILED] * 3
    summary = summarize(tmp_path, plot=False)  # no traceback: a table of three failed jobs
    assert "3 jobs: 0 completed, 3 failed" in (tmp_path / "summary.md").read_text()
    assert len(summary.failed) == 3


# --- a used run folder is never overwritten ------------------------------------------------------


def test_a_new_run_into_a_used_folder_is_refused_and_the_old_run_kept(tmp_path: Path):
    first = gradtrace.run(["model=linear", "trainer.steps=2", "landscape.enabled=false"],
                          run_dir=tmp_path, verbose=False)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=rf"^hydra\.run\.dir={re.escape(str(tmp_path))} already "
                                          r"holds \.hydra, checkpoints, .*continue that run with: "
                                          r"gradtrace resume"):
        gradtrace.run(["model=linear", "trainer.steps=3"], run_dir=tmp_path, verbose=False)
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before and first.steps == 2
    # Resuming it is what that folder is for; an explicit overwrite writes there too.
    resumed = gradtrace.run(["model=linear", "trainer.steps=4", "landscape.enabled=false",
                             "trainer.resume=true"], run_dir=tmp_path, verbose=False)
    assert resumed.steps == 4
    again = gradtrace.run(["model=linear", "trainer.steps=1", "trainer.overwrite=true"],
                          run_dir=tmp_path, verbose=False)
    assert again.steps == 1


def test_an_empty_folder_is_a_fine_place_for_a_run(tmp_path: Path):
    assert gradtrace.run(["trainer.steps=1"], run_dir=tmp_path, verbose=False).steps == 1


def test_a_folder_of_a_run_refused_before_step_0_takes_the_corrected_one(tmp_path: Path):
    # A bad value fails before anything but .hydra, train.log and a failed result.json is
    # written: there is nothing to lose, and the same folder takes the corrected run.
    with pytest.raises(ConfigError, match=r"^optim\.lr must be"):
        gradtrace.run(["optim.lr=-1"], run_dir=tmp_path, verbose=False)
    assert json.loads((tmp_path / "result.json").read_text())["status"] == FAILED
    assert gradtrace.run(["trainer.steps=1"], run_dir=tmp_path, verbose=False).steps == 1


@pytest.mark.slow
def test_the_cli_refuses_a_used_folder_with_one_line_on_stderr(cli, tmp_path: Path):
    folder = tmp_path / "run"
    assert cli("trainer.steps=2", f"hydra.run.dir={folder}").returncode == 0
    result = json.loads((folder / "result.json").read_text())
    again = cli("trainer.steps=5", f"hydra.run.dir={folder}")
    assert again.returncode == 2 and again.stdout == "" and "Traceback" not in again.stderr
    assert again.stderr.startswith(f"hydra.run.dir={folder} already holds ")
    assert len(again.stderr.strip().splitlines()) == 1
    assert json.loads((folder / "result.json").read_text()) == result
    (tmp_path / "notes.txt").write_text("mine")
    here = cli("trainer.steps=1", "hydra.run.dir=''")
    assert here.returncode == 2 and "(the current folder) already holds" in here.stderr
    assert "gradtrace resume" not in here.stderr


# --- signals at start-up, Ctrl-C twice, folders outside ASCII ------------------------------------


def _signal_after(argv: list[str], cwd: Path, seconds: float, signals: list[int]):
    """Start the CLI, send `signals` after `seconds` (50 ms apart), wait; stop it in finally."""
    process = subprocess.Popen([sys.executable, str(TRAIN_SCRIPT), *argv], cwd=cwd, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(seconds)
        for number in signals:
            process.send_signal(number)
            time.sleep(0.05)
        out, err = process.communicate(timeout=120)
        return process.returncode, out, err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_while_the_process_starts_stops_after_step_0_with_one_line(tmp_path: Path):
    # 1 s in: past Python's own start (the early handler is installed by then), before torch and
    # Hydra have imported (seconds): the run's stop request takes the signal over from it.
    folder = tmp_path / "run"
    code, out, err = _signal_after(["model=regressor", "trainer.steps=100000",
                                    f"hydra.run.dir={folder}"], tmp_path, 1.0, [signal.SIGTERM])
    assert code == 143 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "SIGTERM: stopped after step " in err
    saved = json.loads((folder / "result.json").read_text())  # after step 0 here, unless the
    assert saved["status"] == "interrupted" and saved["steps"] >= 1  # machine starts in < 1 s


def test_ctrl_c_twice_is_one_line_exit_130_and_a_result(tmp_path: Path):
    folder = tmp_path / "run"
    code, out, err = _signal_after(["model=regressor", "trainer.steps=10000000",
                                    f"hydra.run.dir={folder}"], tmp_path, 6, [signal.SIGINT] * 2)
    assert code == 130 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert json.loads((folder / "result.json").read_text())["status"] == "interrupted"


def test_a_run_folder_outside_ascii_needs_no_quotes(cli, tmp_path: Path):
    folder = tmp_path / "rün名"
    done = cli("trainer.steps=1", f"hydra.run.dir={folder}")
    assert done.returncode == 0, done.stderr
    assert json.loads((folder / "result.json").read_text())["status"] == "completed"
