"""The hand-written gradients of every built-in model and loss, against autograd and by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradtrace.components.models import Linear
from gradtrace.insight.closed_form import closed_form_grads, has_closed_form

from conftest import build

MODELS = ["scalar", "linear", "regressor"]
LOSSES = ["mse", "mae"]
# Each model's own data, and the 1000 x 10 uniform data for all (scalar ignores the inputs).
CASES = [(m, loss, d) for m in MODELS for loss in LOSSES for d in (None, "uniform")]


def autograd_grads(run, inputs, targets) -> dict[str, torch.Tensor]:
    run.model.zero_grad()
    run.loss_fn(run.model(inputs), targets).backward()
    return {name: p.grad.detach().clone() for name, p in run.model.named_parameters()}


@pytest.mark.parametrize(
    "model,loss,data", CASES, ids=[f"{m}-{loss}-{d or 'own'}" for m, loss, d in CASES]
)
def test_closed_form_equals_autograd(model: str, loss: str, data: str | None):
    overrides = [f"model={model}", f"loss={loss}"] + ([f"data={data}"] if data else [])
    run = build(*overrides)
    inputs, targets = next(run.batches)
    expected = autograd_grads(run, inputs, targets)
    closed = closed_form_grads(run.model, run.loss_fn, inputs, targets)
    assert closed is not None and closed.keys() == expected.keys()
    for name, grad in expected.items():
        assert closed[name].shape == grad.shape
        torch.testing.assert_close(closed[name], grad.double(), rtol=1e-5, atol=1e-6)


def linear_example(weight, bias) -> tuple[Linear, torch.Tensor, torch.Tensor]:
    return Linear(3, weight=weight, bias=bias), torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([5.0])


def test_linear_example_by_hand():
    # pred = 0.5 * (1 + 2 + 3) - 0.5 = 2.5, residual -2.5, N = 1.
    model, x, y = linear_example([[0.5, 0.5, 0.5]], [-0.5])
    mse = closed_form_grads(model, nn.MSELoss(), x, y)
    assert mse["weight"].tolist() == [[-5.0, -10.0, -15.0]]  # 2 (pred - y) x
    assert mse["bias"].tolist() == [-5.0]  # 2 (pred - y)
    mae = closed_form_grads(model, nn.L1Loss(), x, y)
    assert mae["weight"].tolist() == [[-1.0, -2.0, -3.0]]  # sign(pred - y) x
    assert mae["bias"].tolist() == [-1.0]
    summed = closed_form_grads(model, nn.MSELoss(reduction="sum"), x.repeat(2, 1), y.repeat(2))
    assert summed["bias"].tolist() == [-10.0]  # no 1/N: two samples, each -5


def test_mae_at_a_zero_residual_is_zero_like_torch():
    # pred = 1 + 2 + 3 - 1 = 5 = y exactly: |r| has no derivative; torch's L1 backward uses 0.
    model, x, y = linear_example([[1.0, 1.0, 1.0]], [-1.0])
    closed = closed_form_grads(model, nn.L1Loss(), x, y)
    nn.L1Loss()(model(x), y).backward()
    assert model.weight.grad.tolist() == [[0.0, 0.0, 0.0]] and model.bias.grad.tolist() == [0.0]
    assert closed["weight"].tolist() == [[0.0, 0.0, 0.0]] and closed["bias"].tolist() == [0.0]


def test_keep_drops_samples_but_not_from_the_mean():
    model, _, _ = linear_example([[0.5, 0.5, 0.5]], [-0.5])
    x = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    y = torch.tensor([5.0, 5.0])
    closed = closed_form_grads(model, nn.MSELoss(), x, y, keep=torch.tensor([True, False]))
    assert closed["bias"].tolist() == [-2.5]  # 2 (2.5 - 5) / 2: one term of two


def test_no_closed_form_for_other_models_and_losses():
    model, x, y = linear_example(None, None)
    assert closed_form_grads(model, nn.SmoothL1Loss(), x, y) is None
    other_model = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0))
    assert closed_form_grads(other_model, nn.MSELoss(), x, y) is None
    assert not has_closed_form(model, nn.HuberLoss()) and has_closed_form(model, nn.L1Loss())
