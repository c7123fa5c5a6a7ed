"""Training across processes: torchrun with 2 gloo processes against the same run in 1 process,
through the real CLI; and the sharding and checks, in process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gradtrace.components.data import Samples, batches, uniform
from gradtrace.errors import ConfigError
from gradtrace.loggers.reading import read_scalars
from gradtrace.setup.build import build_run
from gradtrace.setup.plan import make_plan
from gradtrace.training import checkpoint
from gradtrace.training.distributed import World, check_shards

from conftest import BUILD_DIR, REPO, TRAIN_SCRIPT, compose_config, run_cli, run_dirs

STEPS = 40
CASES = {
    # The regressor worked example: full batch of 1000 samples, mean absolute error, plain SGD.
    "full batch": ["model=regressor", f"trainer.steps={STEPS}"],
    # Shuffled mini-batches of 250 (each rank 125 of them) and Adam, whose state must stay in step.
    "mini-batches": ["model=regressor", "optim=adam", "optim.lr=0.01", "data.batch_size=250",
                     f"trainer.steps={STEPS}"],
}
# Float rounding: each rank sums its 500 (or 125) per-sample gradients and the two sums are
# averaged, where one process sums 1000: the same numbers added in another order, a relative
# difference of a few float32 ulps (1.2e-7) per gradient element. Over 40 steps of lr 0.01 on
# parameters of order 1, that moves them by far less than 1e-6 (measured: 0 for the full batch,
# 5e-8 with mini-batches and Adam).
TOLERANCE = 1e-6


def torchrun(cwd: Path, processes: int, *args: str) -> subprocess.CompletedProcess:
    """scripts/train.py under torchrun, to its end."""
    return finish(start_torchrun(cwd, processes, *args))


def resume(cwd: Path, run_dir: str | Path, *overrides: str) -> subprocess.CompletedProcess:
    """scripts/resume.py, which becomes torchrun (the same process) for a multi-process run."""
    command = [sys.executable, str(REPO / "scripts" / "resume.py"), str(run_dir), *overrides]
    return finish(subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True))


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=300)
    finally:
        stop(process)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def start_torchrun(cwd: Path, processes: int, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc_per_node={processes}", str(TRAIN_SCRIPT), *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def stop(process: subprocess.Popen) -> None:
    """End the torchrun this test started, if it still runs: SIGTERM first, which torchrun hands
    on to the processes it started, and which ends them; SIGKILL only if that fails."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def train_both(case: str, factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The case trained by 2 processes and by 1, each from a folder of its own."""
    two, one = factory.mktemp("two"), factory.mktemp("one")
    done = torchrun(two, 2, *CASES[case])
    assert done.returncode == 0, done.stdout + done.stderr
    done = run_cli(one, *CASES[case])
    assert done.returncode == 0, done.stdout + done.stderr
    return two, one


@pytest.fixture(scope="module")
def full_batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return train_both("full batch", tmp_path_factory)


@pytest.fixture(scope="module")
def mini_batches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return train_both("mini-batches", tmp_path_factory)


@pytest.fixture(params=["full_batch", "mini_batches"])
def runs(request: pytest.FixtureRequest) -> tuple[Path, Path]:
    return request.getfixturevalue(request.param)


def final_model(run_dir: Path) -> dict[str, torch.Tensor]:
    return checkpoint.read(checkpoint.checkpoints(run_dir)[0])["model"]


def assert_same_parameters(run: Path, reference: Path) -> None:
    """The final parameters (newest checkpoints): bitwise."""
    for key, value in final_model(reference).items():
        assert torch.equal(final_model(run)[key], value), key


def assert_bitwise_same(run: Path, reference: Path) -> None:
    """Every logged value of every tag, at the same steps, and the final parameters: bitwise."""
    got, expected = read_scalars(run), read_scalars(reference)
    assert set(got) == set(expected)
    for tag, series in expected.items():
        assert got[tag].steps.tolist() == series.steps.tolist(), tag
        assert np.array_equal(got[tag].values, series.values), tag
    assert_same_parameters(run, reference)


@pytest.mark.slow
def test_two_processes_train_the_same_parameters_as_one(runs) -> None:
    two, one = runs
    (run_two,), (run_one,) = run_dirs(two), run_dirs(one)
    got, expected = final_model(run_two), final_model(run_one)
    assert got.keys() == expected.keys()
    for key in expected:
        difference = (got[key] - expected[key]).abs().max().item()
        assert difference <= TOLERANCE, (key, difference)
    # Trained, not left where they started: the comparison means something.
    assert json.loads((run_two / "result.json").read_text())["final_loss"] < (
        read_scalars(run_two)["loss/train"].values[0]
    )


@pytest.mark.slow
def test_the_logged_loss_and_gradients_are_the_whole_batchs(runs) -> None:
    """What rank 0 logs is averaged over the ranks: the loss and gradients of all 1000 (or 250)
    samples, as one process computes them."""
    two, one = runs
    (run_two,), (run_one,) = run_dirs(two), run_dirs(one)
    got, expected = read_scalars(run_two), read_scalars(run_one)
    assert set(got) == set(expected)
    for tag in expected:
        if tag.startswith(("grad/", "loss/")):
            assert got[tag].steps.tolist() == expected[tag].steps.tolist(), tag
            np.testing.assert_allclose(got[tag].values, expected[tag].values, rtol=1e-4,
                                       atol=TOLERANCE, err_msg=tag)
    assert got["loss/train"].steps.tolist() == list(range(STEPS))


@pytest.mark.slow
def test_step_0_gradient_is_derived_by_hand_over_all_samples(full_batch) -> None:
    """Full batch: (1/N) sum_i sign(pred_i - target_i) x_i over all N = 1000 samples, although
    each process saw only 500 of them: the worked example's data, the logged step-0 parameters."""
    two, _ = full_batch
    (run_two,) = run_dirs(two)
    samples = uniform(1000, 10, seed=0)
    logged = read_scalars(run_two)
    params = torch.tensor([logged[f"param/params[{i}]"].values[0] for i in range(10)])
    residual_sign = torch.sign((samples.inputs * params).sum(1) - samples.targets)
    expected = (residual_sign[:, None] * samples.inputs).mean(0)
    got = torch.tensor([logged[f"grad/params[{i}]"].values[0] for i in range(10)])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_rank_0_alone_writes_one_run_folder(runs) -> None:
    """Both ranks name the same folder (a second one would exist if they did not: Hydra makes
    the folder on each rank), and only rank 0 writes into it."""
    two, _ = runs
    folders = [p for p in (two / "outputs" / "runs").iterdir()]
    assert len(folders) == 1, folders
    run = folders[0]
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert json.loads((run / "result.json").read_text())["world_size"] == 2
    # Rank 1 logs no file of its own: every step's console line is in train.log once.
    log = (run / "train.log").read_text()
    assert log.count(f"step 0/{STEPS} ") == 1
    assert (run / ".hydra" / "config.yaml").is_file()


@pytest.mark.slow
def test_a_two_process_run_resumes_with_two(tmp_path: Path) -> None:
    """Stopped after 20 of 40 steps (its last checkpoint), resumed through scripts/resume.py,
    which starts torchrun again: bitwise the uninterrupted 2-process run."""
    case = CASES["mini-batches"][:-1]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    for cwd in (whole, parts):
        cwd.mkdir()
    done = torchrun(whole, 2, *case, f"trainer.steps={STEPS}", "hydra.run.dir=run")
    assert done.returncode == 0, done.stderr
    done = torchrun(parts, 2, *case, "trainer.steps=20", "hydra.run.dir=run")
    assert done.returncode == 0, done.stderr
    done = resume(parts, "run", f"trainer.steps={STEPS}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "torch.distributed.run" in done.stdout and "--nproc_per_node=2" in done.stdout
    assert_bitwise_same(parts / "run", whole / "run")


@pytest.mark.slow
def test_a_submitit_job_of_two_tasks_trains_as_torchrun_does(mini_batches, tmp_path: Path) -> None:
    """hydra.launcher.tasks_per_node=2 (submitit's local executor, as SLURM would): the job's
    two tasks join one run, which comes out bitwise as torchrun's two processes."""
    two, _ = mini_batches
    done = run_cli(tmp_path, "-m", "hydra/launcher=slurm_local", "hydra.launcher.tasks_per_node=2",
                   *CASES["mini-batches"], "hydra.sweep.dir=sweep")
    assert done.returncode == 0, done.stdout + done.stderr
    (job,) = [p for p in (tmp_path / "sweep").iterdir() if p.name.startswith("0_")]
    assert json.loads((job / "result.json").read_text())["world_size"] == 2
    assert len(list(job.glob("events.out.tfevents.*"))) == 1
    assert (job / "train.log").read_text().count(f"step 0/{STEPS} ") == 1
    (run_two,) = run_dirs(two)
    assert_same_parameters(job, run_two)


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_rank_after_the_same_step(tmp_path: Path) -> None:
    """torchrun hands SIGTERM to its processes; they agree to stop after one same step, rank 0
    checkpoints, and the run resumes (with 2 processes) bitwise as the run never stopped."""
    case = [*CASES["mini-batches"][:-1], "trainer.checkpoint.every_steps=20"]
    stopped, whole = tmp_path / "stopped", tmp_path / "whole"
    process = start_torchrun(tmp_path, 2, *case, "trainer.steps=1000000",
                             f"hydra.run.dir={stopped}")
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.checkpoints(stopped) and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
        output = stdout + stderr
    finally:
        stop(process)
    result = json.loads((stopped / "result.json").read_text())
    assert result["status"] == "interrupted" and result["world_size"] == 2, output
    assert output.count("SIGTERM: stopped after step") >= 1
    steps = result["steps"] + 20
    done = resume(tmp_path, stopped, f"trainer.steps={steps}")
    assert done.returncode == 0, done.stdout + done.stderr
    done = torchrun(tmp_path, 2, *case, f"trainer.steps={steps}", f"hydra.run.dir={whole}")
    assert done.returncode == 0, done.stderr
    assert read_scalars(stopped)["loss/train"].steps.tolist() == list(range(steps))
    assert_bitwise_same(stopped, whole)


# --- in process ------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [None, 4])
def test_the_shards_of_each_batch_make_the_whole_batch(batch_size: int | None) -> None:
    samples = Samples(torch.arange(24.0).reshape(12, 2), torch.arange(12.0))
    device = torch.device("cpu")
    whole = batches(samples, batch_size, seed=3, device=device)
    shards = [batches(samples, batch_size, seed=3, device=device, part=(k, 2)) for k in range(2)]
    for _ in range(7):  # over two epochs of mini-batches
        inputs, targets = next(whole)
        parts = [next(s) for s in shards]
        assert torch.equal(torch.cat([p[0] for p in parts]), inputs)
        assert torch.equal(torch.cat([p[1] for p in parts]), targets)
        assert len(parts[0][1]) == len(parts[1][1]) == len(targets) // 2


@pytest.mark.parametrize(
    ("samples", "batch_size", "message"),
    [
        (1001, None, "the full batch of 1001 training samples does not split into 2"),
        (1000, 125, r"data.batch_size=125 \(an epoch of 1000 samples ends with a batch of 125\)"),
        (1000, 300, None),  # batches of 300, 300, 300, 100: all even
        (1000, 400, r"ends with a batch of 200\) does not split into 3"),
    ],
)
def test_batches_that_do_not_split_into_equal_shards_are_refused(
    samples: int, batch_size: int | None, message: str | None
) -> None:
    world = World(rank=0, size=3 if batch_size == 400 else 2)
    if message is None:
        check_shards(world, samples, batch_size)
        return
    with pytest.raises(ConfigError, match=message):
        check_shards(world, samples, batch_size)


@pytest.mark.parametrize("key", ["trainer.grad_check.every_steps=1", "trainer.explain_steps=1"])
def test_single_process_insight_is_refused_across_processes(key: str) -> None:
    plan = make_plan(compose_config("model=regressor", key))
    with pytest.raises(ConfigError, match=f"^{key.split('=')[0]} needs a single process .*, got 2 "
                                          f"processes: set {key.split('=')[0]}=0"):
        build_run(plan, BUILD_DIR.name, place=World(rank=0, size=2))
