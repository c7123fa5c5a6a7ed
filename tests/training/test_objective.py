"""The objective (any logged tag, min or max), early stopping on it, and what result.json and the
sweep summary make of them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import gradtrace
from gradtrace.errors import ConfigError
from gradtrace.sweeps.summary import summarize

CLASSIFIER = ["model=logistic", "data.val_fraction=0.25", "trainer.val_every_steps=5",
              "trainer.steps=30", "optim.lr=0.5", "landscape.enabled=false"]


def run(tmp_path: Path, *overrides: str) -> gradtrace.RunResult:
    return gradtrace.run(list(overrides), run_dir=tmp_path, verbose=False)


def test_a_maximised_metric_objective_is_its_last_value_and_its_best(tmp_path: Path):
    result = run(tmp_path, *CLASSIFIER, "objective.metric=accuracy/val", "objective.mode=max")
    accuracy = result.history["accuracy/val"]
    # Validations at steps 0, 5, ..., 25 and once after the last update (logged at step 30).
    assert accuracy.steps.tolist() == [0, 5, 10, 15, 20, 25, 30]
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["objective"] == "accuracy/val" and saved["mode"] == "max"
    assert saved["value"] == pytest.approx(accuracy.values[-1]) == pytest.approx(result.objective)
    best = int(np.argmax(accuracy.values))  # the first step of the highest accuracy
    assert saved["best_value"] == pytest.approx(accuracy.values[best])
    assert saved["best_step"] == accuracy.steps[best]
    assert saved["metrics"]["accuracy/val"] == pytest.approx(accuracy.values[-1])
    assert saved["metrics"]["accuracy/train"] == pytest.approx(result.history["accuracy/train"].values[-1])


def test_accuracy_is_what_the_model_gets_right(tmp_path: Path):
    result = run(tmp_path, *CLASSIFIER)
    val = result.run.val_data
    with torch.no_grad():
        right = (result.model(val.inputs).argmax(1) == val.targets).float().mean().item()
    assert result.history["accuracy/val"].values[-1] == pytest.approx(right)


def test_the_default_objective_is_the_final_loss_minimised(tmp_path: Path):
    result = run(tmp_path, "model=linear", "trainer.steps=3", "landscape.enabled=false")
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["objective"] == "loss/final" and saved["mode"] == "min"
    assert saved["value"] == saved["final_loss"] == result.objective
    losses = result.history["loss/train"].values  # loss/final sums up loss/train
    assert saved["best_value"] == pytest.approx(losses.min()) and saved["best_step"] == 2


@pytest.mark.parametrize("overrides,message", [
    (["objective.metric=accuracy/vall"], r"^objective\.metric=accuracy/vall is never logged by this "
                                         r"run; it logs accuracy/train, accuracy/val, loss/best"),
    (["objective.metric=macro_f1/val"], r"^objective\.metric=macro_f1/val is never logged"),
    (["early_stopping.metric=loss/trian", "early_stopping.patience=2"],
     r"^early_stopping\.metric=loss/trian is never logged"),
    (["metrics=[r2]"], r"^metrics: r2 is a metric for regression tasks"),
])
def test_a_tag_that_is_never_logged_is_refused_before_step_0(overrides, message, tmp_path: Path):
    with pytest.raises(ConfigError, match=message):
        run(tmp_path, *CLASSIFIER, *overrides)
    assert not list(tmp_path.glob("events.out.tfevents.*"))


def test_an_instruments_own_tags_and_the_elements_are_known(tmp_path: Path):
    result = run(tmp_path, *CLASSIFIER, "objective.metric=grad_norm/total")
    assert result.objective == pytest.approx(result.history["grad_norm/total"].values[-1])


# --- early stopping ------------------------------------------------------------------------------


def test_early_stopping_ends_the_run_after_patience_validations_and_keeps_the_best(tmp_path: Path):
    # min_delta 10 on a loss below 2: no validation after the first (step 0) counts as better,
    # so with patience 3 the validations at steps 1, 2, 3 use it up and the run ends after step 3.
    result = run(tmp_path, "model=regressor", "data.val_fraction=0.5", "trainer.val_every_steps=1",
                 "trainer.steps=50", "early_stopping.patience=3", "early_stopping.min_delta=10",
                 "objective.metric=loss/val_final", "landscape.enabled=false")
    assert result.stopped == "early_stopping" and result.steps == 4
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "completed" and saved["stopped"] == "early_stopping"
    assert saved["steps"] == 4 and saved["best_step"] == 0
    best = torch.load(tmp_path / "best_model.pt", weights_only=True)
    assert best["step"] == 0
    start = [result.history[f"param/params[{i}]"].values[0] for i in range(10)]
    np.testing.assert_allclose(best["model"]["params"].numpy(), start, rtol=1e-7)
    assert result.history["loss/train"].steps.tolist() == [0, 1, 2, 3]


def test_early_stopping_on_a_maximised_metric_waits_while_it_improves(tmp_path: Path):
    result = run(tmp_path, *CLASSIFIER, "trainer.steps=200", "early_stopping.patience=2",
                 "early_stopping.metric=accuracy/val", "early_stopping.mode=max")
    accuracy = result.history["accuracy/val"]
    values = accuracy.values[:-1]  # the validations during training (the last is after it)
    # Stopped at the first validation that made it two without a new high, not before.
    waited, best, stop = 0, -1.0, None
    for i, value in enumerate(values):
        if value > best:
            best, waited = value, 0
        else:
            waited += 1
            if waited == 2:
                stop = i
                break
    assert stop is not None and result.stopped == "early_stopping"
    assert result.steps == accuracy.steps[stop] + 1


# --- the summary ----------------------------------------------------------------------------------


def test_the_summary_ranks_a_maximised_objective_highest_first(tmp_path: Path):
    scores = {0: 0.90, 1: 0.97, 2: 0.50}
    for num, score in scores.items():
        folder = tmp_path / f"{num}_seed={num}"
        (folder / ".hydra").mkdir(parents=True)
        (folder / ".hydra" / "overrides.yaml").write_text(f"- seed={num}\n")
        (folder / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  job:\n    num: {num}\n")
        (folder / "result.json").write_text(json.dumps({
            "status": "completed", "final_loss": 1 - score, "best_loss": 0.1, "objective":
            "accuracy/val", "mode": "max", "value": score, "metrics": {"accuracy/val": score},
            "steps": 10, "seconds": 0.1,
        }))
    summarize(tmp_path, plot=False)
    with (tmp_path / "summary.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["job"] for row in rows] == ["1", "0", "2"]
    assert [row["accuracy/val"] for row in rows] == ["0.97", "0.9", "0.5"]
    assert "accuracy/val (max)" in (tmp_path / "summary.md").read_text()
