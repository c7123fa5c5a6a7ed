"""A real TensorBoard server on a sweep folder, checked through its HTTP API: every job is a run,
a run's loss series is what the run logged, and the HParams dashboard lists every job with its
hyperparameters and final loss.

The scalar example: loss = w^2 with w0 = 3, and SGD gives w' = (1 - 2 lr) w, so the run with
learning rate lr logs loss_k = 9 (1 - 2 lr)^(2k) at step k.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep_helpers import job_results, only_sweep_dir
from tensorboard_server import get_json, post_json, tensorboard_server

pytestmark = pytest.mark.slow  # every test here starts processes


STEPS = 6
LRS = ("0.05", "0.1", "0.2")


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
