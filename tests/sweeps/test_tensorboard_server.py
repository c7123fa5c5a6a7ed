"""A real TensorBoard server on a sweep folder, checked through its HTTP API: every job is a run,
a run's loss series is what the run logged, and the HParams dashboard lists every job with its
hyperparameters and final loss.

The scalar example: loss = w^2 with w0 = 3, and SGD gives w' = (1 - 2 lr) w, so the run with
learning rate lr logs loss_k = 9 (1 - 2 lr)^(2k) at step k.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from sweep_helpers import job_results, only_sweep_dir

STEPS = 6
LRS = ("0.05", "0.1", "0.2")
TENSORBOARD = Path(sys.executable).parent / "tensorboard"
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def tensorboard_server(logdir: Path, log_file: Path) -> Iterator[str]:
    """Start `tensorboard --logdir`, wait until it answers, yield its URL; always stop it."""
    port = free_port()
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [str(TENSORBOARD), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"tensorboard exited with {process.returncode}:\n{log_file.read_text()}")
            try:
                urllib.request.urlopen(f"{url}/data/runs", timeout=2).read()
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail(f"tensorboard did not answer in {START_TIMEOUT_S} s:\n"
                                f"{log_file.read_text()}")
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()  # by its own process id; it is our child
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def get_json(url: str, path: str, **params: str):
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}{path}{query}", timeout=30) as response:
        return json.load(response)


def post_json(url: str, path: str, body: dict):
    request = urllib.request.Request(
        f"{url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_tensorboard_serves_every_job_of_a_sweep(cli, tmp_path: Path):
    result = cli("-m", f"trainer.steps={STEPS}", f"optim.lr={','.join(LRS)}")
    assert result.returncode == 0, result.stderr
    sweep_dir = only_sweep_dir(tmp_path)
    jobs = {p.parent.name: p.parent for p in sweep_dir.glob("*/.hydra")}
    lr_of_run = {name: name.split("optim.lr=")[1].split(",")[0] for name in jobs}
    final_losses = {lr: r["final_loss"] for lr, r in job_results(sweep_dir).items()}

    with tensorboard_server(sweep_dir, tmp_path / "tensorboard.log") as url:
        assert sorted(get_json(url, "/data/runs")) == sorted(jobs)

        for run, lr in lr_of_run.items():
            points = get_json(url, "/data/plugin/scalars/scalars", run=run, tag="loss/train")
            steps = [step for _, step, _ in points]
            values = [value for _, _, value in points]
            assert steps == list(range(STEPS))
            expected = [9 * (1 - 2 * float(lr)) ** (2 * k) for k in range(STEPS)]
            assert values == pytest.approx(expected, rel=1e-5)

        groups = post_json(url, "/data/plugin/hparams/session_groups", {
            "experimentName": "",
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                                "STATUS_RUNNING"],
            "colParams": [
                {"hparam": "optim.lr", "includeInResult": True},
                {"hparam": "model", "includeInResult": True},
                {"hparam": "optim", "includeInResult": True},
                {"metric": {"tag": "loss/final"}, "includeInResult": True},
            ],
            "startIndex": 0,
            "sliceSize": 100,
        })["sessionGroups"]

    sessions = {group["sessions"][0]["name"]: group for group in groups}
    assert sorted(sessions) == sorted(jobs)  # one session (row) per job
    for run, group in sessions.items():
        lr = lr_of_run[run]
        assert group["hparams"] == {"optim.lr": float(lr), "model": "scalar", "optim": "sgd"}
        metrics = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        assert metrics["loss/final"] == pytest.approx(final_losses[lr], rel=1e-6)
        assert metrics["loss/final"] == pytest.approx(9 * (1 - 2 * float(lr)) ** (2 * (STEPS - 1)),
                                                      rel=1e-5)
