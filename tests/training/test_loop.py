"""The loop (gradtrace.training.loop) with the default instruments: what it logs, that it is
deterministic, and how it stops on NaN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gradtrace.errors import NonFiniteError
from gradtrace.setup.plan import make_plan
from gradtrace.training.experiment import train_plan

from conftest import compose_config, event_accumulator, scalars


def train_run(run_dir: Path, *overrides: str):
    """Build from the real configs and train into run_dir, in this process."""
    run_dir.mkdir(parents=True, exist_ok=True)
    outcome = train_plan(make_plan(compose_config("landscape.enabled=false", *overrides)),
                         str(run_dir))
    return outcome, outcome.train


@pytest.mark.parametrize("model", ["scalar", "linear", "regressor"])
def test_logged_step_k_holds_params_and_grads_of_loss_k(model: str, tmp_path: Path):
    # SGD without momentum: p[k+1] = p[k] - lr * g[k], where p[k] and g[k] are what step k logged.
    lr = 0.05
    train_run(tmp_path, f"model={model}", f"optim.lr={lr}", "trainer.steps=20")
    series = scalars(tmp_path)
    params = sorted(t for t in series if t.startswith("param/"))
    assert params and len(params) == len([t for t in series if t.startswith("grad/")])
    for tag in params:
        p = np.array([v for _, v in series[tag]])
        g = np.array([v for _, v in series["grad/" + tag[len("param/"):]]])
        assert len(p) == 20
        np.testing.assert_allclose(p[1:], p[:-1] - lr * g[:-1], rtol=1e-6, atol=1e-7)
    assert [s for s, _ in series["loss/train"]] == list(range(20))
    assert [v for _, v in series["optim/lr"]] == pytest.approx([lr] * 20)


def test_grad_norm_total_is_the_norm_of_all_gradients(tmp_path: Path):
    train_run(tmp_path, "model=linear", "model.weight=[[0.5,0.5,0.5]]", "model.bias=[-0.5]",
              "trainer.steps=1")
    # Step 0 gradients: [-5, -10, -15] and -5, so the norm is sqrt(25 + 100 + 225 + 25).
    assert scalars(tmp_path)["grad_norm/total"][0][1] == pytest.approx(np.sqrt(375.0))


def test_log_every_steps(tmp_path: Path):
    train_run(tmp_path, "trainer.steps=25", "trainer.log_every_steps=10")
    series = scalars(tmp_path)
    assert [s for s, _ in series["loss/train"]] == [0, 10, 20]
    assert [s for s, _ in series["param/w"]] == [0, 10, 20]


def test_large_tensors_are_logged_as_norms_and_histograms(tmp_path: Path):
    train_run(tmp_path, "model=regressor", "trainer.log_elements_max=4", "trainer.steps=3")
    series = scalars(tmp_path)
    assert not any(t.startswith("param/params[") for t in series)
    assert len(series["param_norm/params"]) == 3 and len(series["grad_norm/params"]) == 3
    # One tensor, so its gradient norm is the total gradient norm.
    assert series["grad_norm/params"][0][1] == pytest.approx(series["grad_norm/total"][0][1])


def test_large_tensors_get_histograms(tmp_path: Path):
    train_run(tmp_path, "model=regressor", "trainer.log_elements_max=4", "trainer.steps=5",
              "trainer.histogram_every_steps=2")
    histograms = event_accumulator(tmp_path).Tags()["histograms"]
    assert sorted(histograms) == ["grad/params", "param/params"]
    steps = [e.step for e in event_accumulator(tmp_path).Histograms("param/params")]
    assert steps == [0, 2, 4]


@pytest.mark.parametrize("model", ["linear", "regressor"])
def test_same_seed_same_bits(model: str, tmp_path: Path):
    overrides = [f"model={model}", "trainer.steps=30"]
    if model == "regressor":
        overrides += ["data.batch_size=64", "optim=adam"]  # shuffled mini-batches too
    first, _ = train_run(tmp_path / "first", *overrides, "seed=7")
    second, _ = train_run(tmp_path / "second", *overrides, "seed=7", "logger=none")
    other, _ = train_run(tmp_path / "other", *overrides, "seed=8")
    pairs = list(zip(first.model.parameters(), second.model.parameters()))
    assert all(torch.equal(a, b) for a, b in pairs)
    assert not all(torch.equal(a, b) for a, b in zip(first.model.parameters(),
                                                      other.model.parameters()))


@pytest.mark.parametrize("model", ["scalar", "linear", "regressor"])
def test_manual_and_builtin_sgd_equal_torch_sgd_bitwise(model: str, tmp_path: Path):
    overrides = [f"model={model}", "trainer.steps=40", "optim.lr=0.0137"]
    if model == "regressor":
        overrides += ["data.batch_size=100"]
    torch_sgd, _ = train_run(tmp_path / "torch", *overrides, "optim._target_=torch.optim.SGD")
    for option in ("optim=sgd", "optim=manual"):  # gradtrace.components.optim.SGD, ManualSGD
        run, _ = train_run(tmp_path / option, *overrides, option)
        for a, b in zip(torch_sgd.model.parameters(), run.model.parameters()):
            assert torch.equal(a, b), option


def test_nan_stops_before_the_step_and_keeps_the_log(tmp_path: Path):
    # Linear example, lr 1: the update overshoots and the loss grows until float32 overflows.
    with pytest.raises(NonFiniteError, match=r"^step (\d+): non-finite value before the "
                       r"optimiser step: loss = inf") as info:
        train_run(tmp_path, "model=linear", "optim.lr=1", "trainer.steps=500")
    failed = int(info.value.args[0].split(":")[0].split()[1])
    losses = scalars(tmp_path)["loss/train"]
    assert [s for s, _ in losses] == list(range(failed + 1))  # flushed, the failing step too
    assert all(np.isfinite(v) for _, v in losses[:-1]) and losses[-1][1] == float("inf")
