"""The validation loss: data.val_fraction / data.val_path, loss/val every trainer.val_every_steps
and after the last update, result.json's val_loss, the loss/val_final HParams metric and
`objective.metric=loss/val_final` for sweepers. Expected values are recomputed here in NumPy from the
data regenerated from the seed and the parameters read back from the event file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from tensorboard.plugins.hparams import metadata as hparams_metadata
from torch import nn

import gradtrace
from gradtrace.errors import ConfigError
from gradtrace.setup.build import build_run
from gradtrace.setup.plan import make_plan
from gradtrace.sweeps.summary import summarize

from conftest import BUILD_DIR, compose_config, event_accumulator, run_dirs

SEED = 5
SAMPLES, FEATURES = 1000, 10  # configs/data/uniform.yaml, which model=regressor brings
FRACTION = 0.2
LR = 0.1
REGRESSOR = ["model=regressor", f"seed={SEED}", f"optim.lr={LR}", "landscape.enabled=false"]
SPLIT = [f"data.val_fraction={FRACTION}"]


# --- independent recomputations ------------------------------------------------------------


def uniform_data(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """data=uniform as specified: inputs then targets, uniform [0, 1), from one seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(SAMPLES, FEATURES, generator=generator)
    y = torch.rand(SAMPLES, generator=generator)
    return x.double().numpy(), y.double().numpy()


def held_out_index(n: int = SAMPLES, fraction: float = FRACTION, seed: int = SEED) -> np.ndarray:
    """The split as specified: the first round(n * fraction) of a seeded permutation, sorted."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return np.sort(order[: round(n * fraction)].numpy())


def train_index(held: np.ndarray, n: int = SAMPLES) -> np.ndarray:
    return np.setdiff1d(np.arange(n), held)


def mae(x: np.ndarray, y: np.ndarray, params: np.ndarray) -> float:
    """model=regressor (preds = x @ params) with loss=mae, in float64."""
    return float(np.abs(x @ params - y).mean())


def logged(history, prefix: str, position: int, features: int = FEATURES) -> np.ndarray:
    """The regressor's param/ or grad/ elements as logged at the position-th logged step."""
    return np.array([history[f"{prefix}/params[{i}]"].values[position] for i in range(features)])


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as file:
        return list(csv.DictReader(file))


def run(tmp_path: Path, name: str, *overrides: str) -> gradtrace.RunResult:
    return gradtrace.run(list(overrides), run_dir=tmp_path / name, verbose=False)


# --- 1. when loss/val is logged, and what it is ----------------------------------------------


@pytest.mark.parametrize(
    "steps,every,expected_steps",
    [(25, 10, [0, 10, 20, 25]), (20, 10, [0, 10, 20]), (3, 100, [0, 3])],
)
def test_val_loss_is_logged_at_multiples_of_val_every_steps_and_after_the_last_step(
    tmp_path: Path, steps: int, every: int, expected_steps: list[int]
):
    result = run(tmp_path, "run", *REGRESSOR, *SPLIT, f"trainer.steps={steps}",
                 f"trainer.val_every_steps={every}")
    val = result.history["loss/val"]
    assert val.steps.tolist() == expected_steps  # once each: step `steps` only after the update
    assert result.history["loss/train"].steps.tolist() == list(range(steps))


def test_each_val_loss_is_the_mae_on_the_held_out_samples_with_that_steps_parameters(
    tmp_path: Path,
):
    steps, every = 25, 10
    result = run(tmp_path, "run", *REGRESSOR, *SPLIT, f"trainer.steps={steps}",
                 f"trainer.val_every_steps={every}")
    x, y = uniform_data()
    held = held_out_index()
    assert len(held) == 200
    x_val, y_val = x[held], y[held]
    x_train, y_train = x[train_index(held)], y[train_index(held)]
    history = result.history
    val = history["loss/val"]
    assert val.steps.tolist() == [0, 10, 20, 25]
    assert history["param/params[0]"].steps.tolist() == list(range(steps))  # one row per step

    for step, value in zip(val.steps[:-1], val.values[:-1]):
        params = logged(history, "param", int(step))  # before that step's update
        assert value == pytest.approx(mae(x_val, y_val, params), rel=2e-6)
        # the held-out samples, not the training ones nor all of them
        assert value != pytest.approx(mae(x_train, y_train, params), rel=1e-3)
        assert value != pytest.approx(mae(x, y, params), rel=1e-3)

    # Step `steps`: the parameters after the last update, p - lr * g for plain SGD.
    last_params = logged(history, "param", steps - 1)
    last_grads = logged(history, "grad", steps - 1)
    trained = last_params - LR * last_grads
    np.testing.assert_allclose(
        result.model.params.detach().double().numpy(), trained, rtol=1e-6, atol=1e-7
    )
    expected_final = mae(x_val, y_val, trained)
    assert val.values[-1] == pytest.approx(expected_final, rel=2e-6)
    assert result.val_loss == pytest.approx(expected_final, rel=2e-6)
    assert val.values[-1] != pytest.approx(mae(x_val, y_val, last_params), rel=1e-4)  # not before


# --- 2. validation leaves training alone --------------------------------------------------


def test_validation_does_not_change_what_training_logs(tmp_path: Path):
    steps = 30
    often = run(tmp_path, "often", *REGRESSOR, *SPLIT, f"trainer.steps={steps}",
                "trainer.val_every_steps=1")
    rarely = run(tmp_path, "rarely", *REGRESSOR, *SPLIT, f"trainer.steps={steps}",
                 "trainer.val_every_steps=1000")
    assert often.history["loss/val"].steps.tolist() == list(range(steps + 1))
    assert rarely.history["loss/val"].steps.tolist() == [0, steps]
    assert often.val_loss == rarely.val_loss  # the same trained parameters, bitwise
    training_tags = sorted(t for t in often.history if t != "loss/val")
    assert sorted(t for t in rarely.history if t != "loss/val") == training_tags
    assert "loss/train" in training_tags
    assert sum(t.startswith(("param/", "grad/")) for t in training_tags) == 2 * FEATURES
    for tag in training_tags:
        a, b = often.history[tag], rarely.history[tag]
        assert np.array_equal(a.steps, b.steps), tag
        assert np.array_equal(a.values, b.values), tag  # bitwise
    assert torch.equal(often.model.params, rarely.model.params)


class DropoutRegressor(nn.Module):
    """A user's model with dropout, that records (grad enabled, training mode) at each forward."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.params = nn.Parameter(torch.rand(in_features))
        self.dropout = nn.Dropout(0.5)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        self.calls.append((torch.is_grad_enabled(), self.training))
        return (self.dropout(inputs) * self.params).sum(1)


def test_validation_runs_in_eval_mode_without_gradients_and_restores_train_mode(tmp_path: Path):
    user_model = [*REGRESSOR, *SPLIT, f"model._target_={__name__}.DropoutRegressor",
                  "trainer.steps=5"]
    result = run(tmp_path, "every2", *user_model, "trainer.val_every_steps=2")
    train_call, val_call = (True, True), (False, False)
    contract_check = (False, False)  # the model contract's forward pass before step 0
    assert result.model.calls == [
        contract_check,
        train_call, val_call,  # step 0
        train_call,
        train_call, val_call,  # step 2
        train_call,
        train_call, val_call,  # step 4
        val_call,  # after the last update
    ]
    assert result.model.training  # left in train mode
    # Dropout draws from the global RNG in train mode only: validating at every step must not
    # change a single training number.
    every = run(tmp_path, "every1", *user_model, "trainer.val_every_steps=1")
    rarely = run(tmp_path, "rarely", *user_model, "trainer.val_every_steps=1000")
    assert len(every.history["loss/val"].steps) == 6 and len(rarely.history["loss/val"].steps) == 2
    for tag in ("loss/train", *(f"grad/params[{i}]" for i in range(FEATURES))):
        assert np.array_equal(every.history[tag].values, rarely.history[tag].values), tag
    assert every.val_loss == rarely.val_loss


# --- 3. training sees only the samples not held out ---------------------------------------


def test_training_uses_only_the_samples_not_held_out(tmp_path: Path):
    x, y = uniform_data()
    held = held_out_index()
    kept = train_index(held)
    assert len(kept) == 800

    built = build_run(make_plan(compose_config(*REGRESSOR, *SPLIT)), BUILD_DIR.name)
    np.testing.assert_array_equal(built.train_data.inputs.double().numpy(), x[kept])
    np.testing.assert_array_equal(built.train_data.targets.double().numpy(), y[kept])
    np.testing.assert_array_equal(built.val_data.inputs.double().numpy(), x[held])
    np.testing.assert_array_equal(built.val_data.targets.double().numpy(), y[held])

    result = run(tmp_path, "run", *REGRESSOR, *SPLIT, "trainer.steps=1")
    torch.manual_seed(SEED)
    initial = torch.rand(FEATURES).double().numpy()  # the regressor's initial params, as specified
    np.testing.assert_array_equal(logged(result.history, "param", 0), initial.astype(np.float32))
    loss0 = result.history["loss/train"].values[0]
    assert loss0 == pytest.approx(mae(x[kept], y[kept], initial), rel=2e-6)
    assert loss0 != pytest.approx(mae(x, y, initial), rel=1e-4)  # not all 1000 samples
    # Its gradient is the mean over the 800 training samples of sign(pred - y) x.
    expected_grad = (np.sign(x[kept] @ initial - y[kept])[:, None] * x[kept]).mean(axis=0)
    np.testing.assert_allclose(logged(result.history, "grad", 0), expected_grad, rtol=1e-5,
                               atol=1e-7)


def test_val_path_reads_the_validation_samples_from_a_second_file(tmp_path: Path):
    rng = np.random.default_rng(0)
    x_train, y_train, x_val, y_val = (  # float32 in the files: what the run reads, exactly
        rng.random(shape).astype(np.float32) for shape in ((50, 3), 50, (20, 3), 20)
    )
    np.savez(tmp_path / "train.npz", inputs=x_train, targets=y_train)
    np.savez(tmp_path / "val.npz", inputs=x_val, targets=y_val)
    result = run(tmp_path, "run", "model=regressor", "data=file",
                 f"data.path={tmp_path / 'train.npz'}", f"data.val_path={tmp_path / 'val.npz'}",
                 "trainer.steps=2", "landscape.enabled=false")
    history = result.history
    params0 = logged(history, "param", 0, features=3)
    x_train, y_train, x_val, y_val = (a.astype(float) for a in (x_train, y_train, x_val, y_val))
    assert history["loss/train"].values[0] == pytest.approx(mae(x_train, y_train, params0),
                                                            rel=2e-6)
    assert history["loss/val"].values[0] == pytest.approx(mae(x_val, y_val, params0), rel=2e-6)
    assert history["loss/val"].values[0] != pytest.approx(mae(x_train, y_train, params0), rel=1e-3)
    trained = result.model.params.detach().double().numpy()
    assert result.val_loss == pytest.approx(mae(x_val, y_val, trained), rel=2e-6)


# --- 4. result.json and the HParams metrics ------------------------------------------------


def hparams_metrics(run_dir: Path) -> list[str]:
    accumulator = event_accumulator(run_dir)
    content = accumulator.SummaryMetadata(hparams_metadata.EXPERIMENT_TAG)
    experiment = hparams_metadata.parse_experiment_plugin_data(content.plugin_data.content)
    return [m.name.tag for m in experiment.metric_infos]


def session_hparams(run_dir: Path) -> dict:
    accumulator = event_accumulator(run_dir)
    content = accumulator.SummaryMetadata(hparams_metadata.SESSION_START_INFO_TAG)
    info = hparams_metadata.parse_session_start_info_plugin_data(content.plugin_data.content)
    return {k: v.string_value or v.number_value for k, v in info.hparams.items()}


def test_result_json_and_hparams_with_validation(tmp_path: Path):
    result = run(tmp_path, "run", *REGRESSOR, *SPLIT, "trainer.steps=12",
                 "trainer.val_every_steps=5", "objective.metric=loss/val_final")
    saved = json.loads((result.run_dir / "result.json").read_text())
    val = result.history["loss/val"]
    assert val.steps[-1] == 12
    assert saved["status"] == "completed" and saved["objective"] == "loss/val_final"
    assert saved["val_loss"] == pytest.approx(val.values[-1], rel=1e-7)  # float32 in the event
    assert saved["val_loss"] == result.val_loss == result.objective
    assert saved["val_loss"] != pytest.approx(saved["final_loss"], rel=1e-4)
    assert hparams_metrics(result.run_dir) == ["loss/final", "loss/best", "loss/val_final"]
    final = result.history["loss/val_final"]  # the HParams metric's value, once
    assert final.steps.tolist() == [11] and final.values[0] == pytest.approx(result.val_loss)
    hparams = session_hparams(result.run_dir)
    assert hparams["data.val_fraction"] == pytest.approx(FRACTION)
    assert hparams["objective.metric"] == "loss/val_final" and hparams["objective.mode"] == "min"


def test_result_json_and_hparams_without_validation(tmp_path: Path):
    result = run(tmp_path, "run", *REGRESSOR, "trainer.steps=12", "trainer.val_every_steps=5")
    saved = json.loads((result.run_dir / "result.json").read_text())
    assert saved["status"] == "completed" and saved["objective"] == "loss/final"
    assert saved["val_loss"] is None and result.val_loss is None
    assert result.objective == saved["final_loss"] == result.final_loss
    assert "loss/val" not in result.history and "loss/val_final" not in result.history
    assert hparams_metrics(result.run_dir) == ["loss/final", "loss/best"]
    x, y = uniform_data()  # no split: training on all 1000 samples
    params0 = logged(result.history, "param", 0)
    assert result.history["loss/train"].values[0] == pytest.approx(mae(x, y, params0), rel=2e-6)


# --- 5. objective.metric=loss/val_final needs validation samples -----------------------------------


@pytest.mark.slow
def test_val_final_objective_without_validation_samples_exits_2_before_step_0(cli, tmp_path: Path):
    result = cli("model=regressor", "objective.metric=loss/val_final", "trainer.steps=3")
    assert result.returncode == 2
    output = result.stdout + result.stderr
    (error,) = [line for line in output.splitlines() if "[ERROR]" in line]
    assert "objective.metric=loss/val_final needs validation samples" in error
    assert "data.val_fraction" in error
    assert "Traceback" not in output
    assert not list(tmp_path.rglob("events.out.tfevents.*"))
    (run_dir,) = run_dirs(tmp_path)
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["status"] == "failed" and "loss/val_final" in saved["error"]


def test_val_final_objective_without_validation_is_a_config_error_in_process(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"objective.metric=loss/val_final needs validation samples"):
        run(tmp_path, "run", *REGRESSOR, "objective.metric=loss/val_final")
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("fraction", ["abc", "-0.5", "1.5", "[0.2]"])
def test_a_bad_val_fraction_with_val_final_objective_names_the_fraction(fraction: str):
    # Not a TypeError from comparing 'abc' with 0, nor "needs validation samples" for -0.5.
    with pytest.raises(ConfigError, match=r"^data\.val_fraction must be a number in \[0, 1\)"):
        make_plan(compose_config("model=regressor", f"data.val_fraction={fraction}",
                                 "objective.metric=loss/val_final"))


# --- 6. an Optuna sweep minimises the validation loss ---------------------------------------


@pytest.mark.slow
def test_optuna_sweep_minimises_val_final_and_the_summary_ranks_by_it(cli, tmp_path: Path):
    result = cli("-m", "hydra/sweeper=optuna_lr", "hydra.sweeper.n_trials=4", "logger=none",
                 "model=regressor", f"data.val_fraction={FRACTION}", "trainer.steps=20",
                 "landscape.enabled=false", "objective.metric=loss/val_final")
    assert result.returncode == 0, result.stderr
    (sweep_dir,) = sorted((tmp_path / "outputs" / "multirun").iterdir())
    results = {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/result.json")}
    assert len(results) == 4
    assert all(r["status"] == "completed" and r["objective"] == "loss/val_final"
               for r in results.values())
    val_losses = [r["val_loss"] for r in results.values()]
    assert all(v is not None for v in val_losses)
    assert len(set(val_losses)) == 4  # different learning rates: different losses

    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert best.best_value == pytest.approx(min(val_losses), rel=1e-9)
    # what train.py returned was the validation loss, not the final training loss
    assert best.best_value != pytest.approx(min(r["final_loss"] for r in results.values()),
                                            rel=1e-6)

    rows = summary_rows(sweep_dir)
    assert [row["folder"] for row in rows] == sorted(results, key=lambda n: results[n]["val_loss"])
    assert [float(row["val_loss"]) for row in rows] == pytest.approx(sorted(val_losses), rel=1e-5)
    assert float(rows[0]["optim.lr"]) == pytest.approx(best.best_params["optim.lr"])
    markdown = (sweep_dir / "summary.md").read_text()
    (header,) = [line for line in markdown.splitlines() if line.startswith("| rank")]
    assert "| val loss |" in header
    assert f"loss/val_final {min(val_losses):.6g}" in markdown


# --- 7. val_path needs a file, and only one way to get validation samples -------------------


def test_val_path_with_a_data_option_that_reads_no_file_is_refused():
    with pytest.raises(ConfigError, match=r"data\.val_path") as error:
        make_plan(compose_config("model=regressor", "data.val_path=val.csv"))
    assert "gradtrace.components.data.uniform" in str(error.value)


def test_val_fraction_and_val_path_together_are_refused():
    with pytest.raises(ConfigError, match=r"data\.val_fraction and data\.val_path") as error:
        make_plan(compose_config("model=regressor", "data=file", "data.path=train.csv",
                                 "data.val_path=val.csv", "data.val_fraction=0.2"))
    assert "set one" in str(error.value)


def test_a_file_data_option_with_val_path_alone_is_accepted():
    plan = make_plan(compose_config("model=regressor", "data=file", "data.path=train.csv",
                                    "data.val_path=val.csv"))
    assert plan.has_validation and plan.val_fraction == 0.0
    assert plan.val_data is not None and plan.val_data.kwargs["path"] == "val.csv"
    assert plan.data.kwargs["path"] == "train.csv"


def test_the_summary_ranks_by_the_recorded_objective(tmp_path: Path):
    # Three jobs whose final losses and validation losses rank them in opposite orders.
    losses = {0: (0.1, 0.9), 1: (0.5, 0.2), 2: (0.3, 0.4)}  # job: (final_loss, val_loss)
    for objective, name in (("loss/val_final", "by_val"), ("loss/final", "by_final")):
        for num, (final_loss, val_loss) in losses.items():
            folder = tmp_path / name / f"{num}_optim.lr={num}"
            (folder / ".hydra").mkdir(parents=True)
            (folder / ".hydra" / "overrides.yaml").write_text(f"- optim.lr={num}\n")
            (folder / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  job:\n    num: {num}\n")
            (folder / "result.json").write_text(json.dumps({
                "status": "completed", "final_loss": final_loss, "best_loss": final_loss,
                "val_loss": val_loss, "objective": objective, "steps": 10, "seconds": 0.1,
            }))
        summarize(tmp_path / name, plot=False)
    by_val = [row["job"] for row in summary_rows(tmp_path / "by_val")]
    by_final = [row["job"] for row in summary_rows(tmp_path / "by_final")]
    assert by_val == ["1", "2", "0"]  # val loss 0.2 < 0.4 < 0.9
    assert by_final == ["0", "2", "1"]  # final loss 0.1 < 0.3 < 0.5
    assert [row["val_loss"] for row in summary_rows(tmp_path / "by_val")] == ["0.2", "0.4", "0.9"]
    markdown = (tmp_path / "by_val" / "summary.md").read_text()
    assert "**Best: job 1 (optim.lr=1), loss/val_final 0.2," in markdown
