"""A sweep over seeds, end to end through the real CLI: summary_groups.csv against statistics
computed here from each job's own result, the aggregate TensorBoard runs against each job's event
file read with TensorBoard's reader, and the margin-chart layout as a real TensorBoard server
serves it."""

from __future__ import annotations

import csv
import math
import shlex
import statistics
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from conftest import REPO, event_accumulator, run_gradtrace, scalars
from sweep_helpers import only_sweep_dir, summary_rows
from tensorboard_server import get_json, tensorboard_server
from test_docs import code_lines

pytestmark = pytest.mark.slow  # every test here starts processes

LRS = ("0.01", "0.1")
SWEEPS = REPO / "docs" / "guide" / "sweeps.md"


def test_the_documented_seed_sweep_is_summarised_by_group(tmp_path: Path):
    (command,) = code_lines(SWEEPS, "### Seeds: groups, means and intervals", "gradtrace ")
    argv = shlex.split(command)
    assert argv[:3] == ["gradtrace", "train", "-m"] and "optim.lr=0.01,0.1" in argv
    assert "seed=0,1,2" in argv and "data.val_fraction=0.2" in argv
    assert "trainer.val_every_steps=4" in argv
    done = run_gradtrace(tmp_path, *argv[1:])
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = only_sweep_dir(tmp_path)
    jobs = summary_rows(sweep)  # one row a job, still
    assert len(jobs) == 6 and all(row["final_loss"] for row in jobs)
    with (sweep / "summary_groups.csv").open() as file:
        groups = list(csv.DictReader(file))
    assert [g["optim.lr"] for g in groups] == ["0.1", "0.01"]  # by mean final loss

    folders = {}
    for group in groups:
        members = [row for row in jobs if f"optim.lr={group['optim.lr']} " in row["overrides"] + " "]
        assert group["n"] == "3" and group["seeds"] == "0 1 2" and len(members) == 3
        folders[group["optim.lr"]] = [sweep / row["folder"] for row in members]
        final = [float(row["final_loss"]) for row in members]
        mean, std = statistics.fmean(final), statistics.stdev(final)  # stdev: n - 1
        # written with full precision: equal to the last bits or nearly (summation order)
        assert float(group["final_loss_mean"]) == pytest.approx(mean, rel=1e-12)
        assert float(group["final_loss_std"]) == pytest.approx(std, rel=1e-9)
        assert float(group["final_loss_min"]) == min(final)
        assert float(group["final_loss_max"]) == max(final)
        half = stats.t.ppf(0.975, df=2) * std / math.sqrt(3)
        assert float(group["final_loss_ci95_low"]) == pytest.approx(mean - half, rel=1e-9)
        assert float(group["final_loss_ci95_high"]) == pytest.approx(mean + half, rel=1e-9)
        assert group["objective_mean"] == group["final_loss_mean"]  # loss/final is the objective
    apart = float(groups[0]["objective_ci95_high"]) < float(groups[1]["objective_ci95_low"])
    assert (groups[0]["overlaps"] == "") == apart
    markdown = (sweep / "summary.md").read_text()
    assert "**Best group: 1 (optim.lr=0.1), loss/final mean " in markdown

    # One aggregate run per group, the mean and sample std of each job's own logged series.
    for lr, members in folders.items():
        run = sweep / "aggregate" / f"optim.lr={lr}"
        aggregate = scalars(run)
        for tag, every in (("loss/train", 1), ("loss/val", 4)):
            per_job = np.array([[v for _, v in scalars(folder)[tag]] for folder in members])
            steps = [s for s, _ in aggregate[f"{tag}/mean"]]
            assert steps[:2] == [0, every]
            np.testing.assert_allclose([v for _, v in aggregate[f"{tag}/mean"]],
                                       per_job.mean(0), rtol=1e-6)
            np.testing.assert_allclose([v for _, v in aggregate[f"{tag}/std"]],
                                       per_job.std(0, ddof=1), rtol=1e-5)
            np.testing.assert_allclose([v for _, v in aggregate[f"{tag}/upper"]],
                                       per_job.mean(0) + per_job.std(0, ddof=1), rtol=1e-5)
        assert "custom_scalars__config__" in event_accumulator(run).Tags()["tensors"]

    with tensorboard_server(sweep, tmp_path / "tensorboard.log") as url:
        runs = get_json(url, "/data/runs")
        assert {f"aggregate/optim.lr={lr}" for lr in LRS} <= set(runs)
        layout = get_json(url, "/data/plugin/custom_scalars/layout")
        (category,) = layout["category"]
        charts = {chart["title"]: chart["margin"]["series"] for chart in category["chart"]}
        assert charts["loss/train: mean +- std over seeds"] == [
            {"value": "loss/train/mean", "lower": "loss/train/lower", "upper": "loss/train/upper"}]
        served = get_json(url, "/data/plugin/custom_scalars/scalars", run="aggregate/optim.lr=0.1",
                          tag="loss/train/(mean|lower|upper)")
        assert sorted(served["tag_to_events"]) == ["loss/train/lower", "loss/train/mean",
                                             "loss/train/upper"]
        mean = [value for _, _, value in served["tag_to_events"]["loss/train/mean"]]
        expected = [v for _, v in scalars(sweep / "aggregate" / "optim.lr=0.1")["loss/train/mean"]]
        assert mean == pytest.approx(expected, rel=1e-6)
