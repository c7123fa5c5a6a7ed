"""The worked examples, with every expected number derived by hand in the comments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import build


def forward_backward(run):
    inputs, targets = next(run.batches)
    run.optimizer.zero_grad()
    loss = run.loss_fn(run.model(inputs), targets)
    loss.backward()
    return loss


def test_tutorial_y_equals_3x_plus_2():
    # y_i = 3 x_i + 2, loss = y_1 + y_2, so dloss/dx_i = 3 whatever x is.
    x = torch.tensor([2.0, 3.0], requires_grad=True)
    y = 3 * x + 2
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_scalar_loss_9_gradient_6():
    # w = 3, prediction w, target 0: loss (w - 0)**2 = 9 and dL/dw = 2w = 6.
    run = build("model=scalar")
    loss = forward_backward(run)
    assert loss.item() == 9.0
    assert run.model.w.grad.item() == 6.0


def test_scalar_init_is_configurable():
    # w = -1.5: loss 2.25, gradient 2 * -1.5 = -3.
    run = build("model=scalar", "model.init=-1.5")
    assert forward_backward(run).item() == 2.25
    assert run.model.w.grad.item() == -3.0


def test_linear_gradients_and_one_sgd_step():
    # w = [0.5, 0.5, 0.5], b = -0.5, x = [1, 2, 3]: pred = 0.5 + 1 + 1.5 - 0.5 = 2.5, y = 5.
    run = build("model=linear", "model.weight=[[0.5,0.5,0.5]]", "model.bias=[-0.5]")
    loss = forward_backward(run)
    assert loss.item() == pytest.approx(6.25)  # (2.5 - 5)**2
    # dL/dw = 2 (pred - y) x = -5 * [1, 2, 3]; dL/db = 2 (pred - y) = -5.
    assert run.model.weight.grad.flatten().tolist() == pytest.approx([-5.0, -10.0, -15.0])
    assert run.model.bias.grad.tolist() == pytest.approx([-5.0])

    run.optimizer.step()  # sgd, lr 0.01: w += 0.01 * [5, 10, 15], b += 0.05
    assert run.model.weight.flatten().tolist() == pytest.approx([0.55, 0.6, 0.65])
    assert run.model.bias.tolist() == pytest.approx([-0.45])
    # pred = 0.55 + 1.2 + 1.95 - 0.45 = 3.25; loss = (3.25 - 5)**2 = 3.0625
    loss = forward_backward(run)
    assert run.model(torch.tensor([[1.0, 2.0, 3.0]])).item() == pytest.approx(3.25)
    assert loss.item() == pytest.approx(3.0625)


def test_regressor_mae_gradient_is_mean_sign_times_input():
    run = build("model=regressor")
    inputs, targets = run.train_data.inputs, run.train_data.targets
    assert inputs.shape == (1000, 10) and targets.shape == (1000,)
    assert 0 <= inputs.min() and inputs.max() < 1 and 0 <= targets.min() and targets.max() < 1
    params = run.model.params.detach()
    assert params.shape == (10,) and 0 <= params.min() and params.max() < 1

    forward_backward(run)
    # L = (1/N) sum_i |x_i . p - y_i|  =>  dL/dp = (1/N) sum_i sign(x_i . p - y_i) x_i
    x, y, p = inputs.double().numpy(), targets.double().numpy(), params.double().numpy()
    expected = (np.sign(x @ p - y)[:, None] * x).mean(axis=0)
    np.testing.assert_allclose(run.model.params.grad.numpy(), expected, rtol=1e-5, atol=1e-7)
