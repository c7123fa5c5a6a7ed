"""Long runs: kill -9 at random steps and resume, bitwise equal to the run that was never stopped;
SIGTERM and SIGINT; a damaged checkpoint. Through the real CLI in subprocesses, each stopped by
its own process id."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gradtrace.loggers.reading import read_scalars
from gradtrace.training import checkpoint

from conftest import REPO, TRAIN_SCRIPT
from tensorboard_server import get_json, tensorboard_server

pytestmark = pytest.mark.slow  # every test here starts processes


RESUME_SCRIPT = REPO / "scripts" / "resume.py"
STEPS = 10_000  # about 1 s of training: long enough to stop anywhere in it
EVERY = 250  # steps between checkpoints
BASE = [
    "model=regressor", f"trainer.steps={STEPS}", f"trainer.checkpoint.every_steps={EVERY}",
    "logger.flush_every_secs=0.2",
]
CASES = {
    "sgd-momentum-minibatches": ["optim.momentum=0.9", "data.batch_size=64",
                                 "landscape.enabled=false"],
    "adam-minibatches": ["optim=adam", "optim.lr=0.01", "data.batch_size=100",
                         "landscape.enabled=false"],
    # Full batch with the landscape on: its trajectory is in the checkpoint too.
    "sgd-full-batch": ["optim.lr=0.05"],
}


def start(cwd: Path, *argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *argv], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def stop_mid_run(process: subprocess.Popen, run_dir: Path, signum: int, rng: random.Random,
                 after: int = 0, kept: int = 1) -> tuple[int, str]:
    """Send `signum` once the run has saved its checkpoint at a random step beyond `after` (one of
    the next eight, all in the run's first half) and holds at least `kept` checkpoints; return
    the exit code and the output. It waits for that state, never for a time: a busy machine only
    makes the wait longer. The process is always reaped."""
    target = after + EVERY * rng.randint(1, 8)
    try:
        deadline = time.monotonic() + 300
        while True:
            found = checkpoint.checkpoints(run_dir)
            if found and int(found[0].name[5:14]) >= target and len(found) >= kept:
                break
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, f"no checkpoint at step {target} in 300 s"
            time.sleep(0.01)
        assert process.poll() is None, "the run ended before it could be stopped"
        process.send_signal(signum)
        output, _ = process.communicate(timeout=300)
        return process.returncode, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def resume(run_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    """scripts/resume.py on `run_dir`, to its end."""
    done = subprocess.run([sys.executable, str(RESUME_SCRIPT), str(run_dir)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def train_and_stop(tmp_path: Path, case: str, signum: int, seed: object,
                   kept: int = 1) -> tuple[Path, int, str]:
    """Start the `case` run in tmp_path/run, send `signum` once it has saved a checkpoint at a
    random step (and holds `kept` checkpoints); the run folder, the exit code and the output."""
    run_dir = tmp_path / "run"
    process = start(tmp_path, str(TRAIN_SCRIPT), *BASE, *CASES[case], f"hydra.run.dir={run_dir}")
    return (run_dir, *stop_mid_run(process, run_dir, signum, random.Random(seed), kept=kept))


def newest_step(run_dir: Path) -> int:
    return int(checkpoint.checkpoints(run_dir)[0].name[5:14])


def assert_same_run(run: Path, reference: Path) -> None:
    """Every logged value of every tag, once per step, and the final state: bitwise equal."""
    got, expected = read_scalars(run), read_scalars(reference)
    assert set(got) == set(expected)
    for tag, series in expected.items():
        assert got[tag].steps.tolist() == series.steps.tolist(), tag
        assert np.array_equal(got[tag].values, series.values), tag
    assert got["loss/train"].steps.tolist() == list(range(STEPS))
    final, final_reference = (checkpoint.read(checkpoint.checkpoints(d)[0]) for d in (run, reference))
    assert final["step"] == final_reference["step"] == STEPS
    for key in final_reference["model"]:
        assert torch.equal(final["model"][key], final_reference["model"][key]), key
    assert str(final["optimizer"]) == str(final_reference["optimizer"])
    assert final["best_loss"] == final_reference["best_loss"]
    landscape = final_reference["instruments"].get("landscape")
    if landscape is not None:  # the landscape's path, kept in the checkpoint
        assert torch.equal(final["instruments"]["landscape"]["rows"], landscape["rows"])
    result = json.loads((run / "result.json").read_text())
    assert result["status"] == "completed" and result["steps"] == STEPS
    # Times, and the instruments' costs, are the last process's own.
    own = ("seconds", "train_seconds", "instruments")
    assert result == {**json.loads((reference / "result.json").read_text()),
                      **{k: result[k] for k in own}}


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each case run once without a stop."""
    cwd = tmp_path_factory.mktemp("references")
    processes = {}
    for name, overrides in CASES.items():
        processes[name] = start(cwd, str(TRAIN_SCRIPT), *BASE, *overrides, f"hydra.run.dir={name}")
    for process in processes.values():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
    return {name: cwd / name for name in CASES}


@pytest.mark.parametrize("case", list(CASES))
def test_kill_9_twice_then_resume_is_bitwise_the_uninterrupted_run(
    case: str, references: dict[str, Path], tmp_path: Path
):
    rng = random.Random(case)
    run_dir = tmp_path / "run"
    process = start(tmp_path, str(TRAIN_SCRIPT), *BASE, *CASES[case], f"hydra.run.dir={run_dir}")
    code, _ = stop_mid_run(process, run_dir, signal.SIGKILL, rng)  # the same rng kills twice
    assert code == -signal.SIGKILL
    first_kill = newest_step(run_dir)
    assert not (run_dir / "result.json").exists()
    # What a kill -9 loses is bounded: the event file holds at least every step up to the
    # newest checkpoint (each checkpoint writes out the logged steps before it).
    assert read_scalars(run_dir)["loss/train"].steps[-1] >= first_kill - 1

    code, _ = stop_mid_run(start(tmp_path, str(RESUME_SCRIPT), str(run_dir)), run_dir,
                           signal.SIGKILL, rng, after=first_kill)
    assert code == -signal.SIGKILL and newest_step(run_dir) > first_kill

    done = resume(run_dir, tmp_path)
    assert f"resuming from {checkpoint.checkpoints(run_dir)[-1].parent}" in done.stderr + done.stdout
    assert_same_run(run_dir, references[case])


def test_tensorboard_shows_one_value_per_step_after_a_kill(references: dict[str, Path],
                                                           tmp_path: Path):
    case = "adam-minibatches"
    run_dir, code, _ = train_and_stop(tmp_path, case, signal.SIGKILL, 7)
    assert code == -signal.SIGKILL
    resume(run_dir, tmp_path)
    expected = read_scalars(references[case])["loss/train"]
    # README ("Inspect runs"): TensorBoard keeps 1,000 points per tag unless told otherwise.
    with tensorboard_server(tmp_path, tmp_path / "tensorboard.log",
                            "--samples_per_plugin", f"scalars={STEPS}") as url:
        assert get_json(url, "/data/runs") == ["run"]
        points = get_json(url, "/data/plugin/scalars/scalars", run="run", tag="loss/train")
    assert [step for _, step, _ in points] == list(range(STEPS))
    assert [value for _, _, value in points] == expected.values.tolist()


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_ends_the_step_checkpoints_and_resumes(
    signum: int, code: int, references: dict[str, Path], tmp_path: Path
):
    case = "sgd-momentum-minibatches"
    run_dir, returncode, output = train_and_stop(tmp_path, case, signum, signum)
    assert returncode == code, output
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if "[WARNING]" in line or "[ERROR]" in line]
    name = signal.Signals(signum).name
    steps = newest_step(run_dir)
    assert line.endswith(f"{name}: stopped after step {steps - 1} of {STEPS}, every logged step "
                         f"and a checkpoint written; resume with: gradtrace resume "
                         f"{run_dir}")
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "interrupted" and result["steps"] == steps
    assert read_scalars(run_dir)["loss/train"].steps.tolist() == list(range(steps))
    resume(run_dir, tmp_path)
    assert_same_run(run_dir, references[case])


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(references: dict[str, Path],
                                                                 tmp_path: Path):
    case = "sgd-full-batch"
    # Two checkpoints on disk before the kill: the newest to damage, the one before to use.
    run_dir, code, _ = train_and_stop(tmp_path, case, signal.SIGKILL, 3, kept=2)
    assert code == -signal.SIGKILL
    newest, before = checkpoint.checkpoints(run_dir)[:2]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the middle of the state
    newest.write_bytes(bytes(data))
    done = resume(run_dir, tmp_path)
    output = done.stdout + done.stderr
    assert f"checkpoint {newest} is damaged (its checksum does not match its contents): using " \
           f"the one before it" in output
    assert f"resuming from {before}" in output
    assert_same_run(run_dir, references[case])
