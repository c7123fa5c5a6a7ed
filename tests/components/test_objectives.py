"""The analytic objectives and the curvature instruments, against the textbook: gradient descent
on a quadratic, heavy-ball momentum per eigendirection, the Hessian's top eigenvalue and trace,
the linear example's sharpness, and an exact small Hessian of a network."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.func import functional_call

import gradtrace
from gradtrace.errors import ConfigError

from conftest import build

QUADRATIC = ["model=quadratic", "model.eigenvalues=[1.0,10.0]", "model.start=[1.0,1.0]",
             "landscape.enabled=false"]


def run(tmp_path: Path, *overrides: str) -> gradtrace.RunResult:
    return gradtrace.run(list(overrides), run_dir=tmp_path, verbose=False)


def test_gradient_descent_on_a_quadratic_shrinks_each_coordinate_by_1_minus_lr_lambda(tmp_path):
    # f = 1/2 (x1^2 + 10 x2^2): grad = (x1, 10 x2), so x_i[k+1] = (1 - lr lambda_i) x_i[k] and
    # x_i[k] = (1 - lr lambda_i)^k x_i[0]; lr 0.05: factors 0.95 and 0.5.
    result = run(tmp_path, *QUADRATIC, "optim.lr=0.05", "trainer.steps=30")
    k = np.arange(30)
    np.testing.assert_allclose(result.history["param/x[0]"].values, 0.95 ** k, rtol=1e-5)
    np.testing.assert_allclose(result.history["param/x[1]"].values, 0.5 ** k, rtol=1e-5, atol=1e-30)
    # The loss at step k is 1/2 sum_i lambda_i x_i[k]^2.
    np.testing.assert_allclose(result.history["loss/train"].values,
                               0.5 * (0.95 ** (2 * k) + 10 * 0.5 ** (2 * k)), rtol=1e-5)


def test_heavy_ball_momentum_follows_its_recurrence_in_each_eigendirection(tmp_path):
    # torch's momentum: v[k+1] = mu v[k] + g[k], x[k+1] = x[k] - lr v[k+1], with g = lambda x
    # along each eigenvector: a two-term recurrence per coordinate, computed here in float64.
    lr, mu, steps = 0.05, 0.9, 40
    result = run(tmp_path, *QUADRATIC, f"optim.lr={lr}", f"optim.momentum={mu}",
                 f"trainer.steps={steps}")
    for i, lam in enumerate([1.0, 10.0]):
        x, v, expected = 1.0, 0.0, []
        for _ in range(steps):
            expected.append(x)
            v = mu * v + lam * x
            x = x - lr * v
        np.testing.assert_allclose(result.history[f"param/x[{i}]"].values, expected, rtol=1e-4,
                                   atol=1e-6)


@pytest.mark.parametrize("rotation", [None, 3])
def test_sharpness_and_trace_of_a_quadratic_are_its_eigenvalues(tmp_path, rotation):
    # The Hessian is Q diag(1, 4, 10) Q^T: top eigenvalue 10, trace 15, whatever the rotation Q.
    overrides = ["model=quadratic", "model.eigenvalues=[1.0,4.0,10.0]", "model.start=[1.0,-2.0,0.5]",
                 "instruments=[elements,sharpness,hessian_trace]", "trainer.steps=3",
                 "instruments.hessian_trace.probes=400", "landscape.enabled=false"]
    if rotation is not None:
        overrides.append(f"model.rotation_seed={rotation}")
    result = run(tmp_path, *overrides)
    np.testing.assert_allclose(result.history["sharpness/top"].values, 10.0, rtol=1e-5)
    # threshold: 2 / lr for plain gradient descent
    np.testing.assert_allclose(result.history["sharpness/threshold"].values, 2 / 0.01, rtol=1e-6)
    estimate = result.history["hessian_trace/estimate"].values
    stderr = result.history["hessian_trace/stderr"].values
    if rotation is None:  # diagonal: v.Hv = sum_i lambda_i v_i^2 = 15 for every +-1 vector
        np.testing.assert_allclose(estimate, 15.0, rtol=1e-6)
        np.testing.assert_allclose(stderr, 0.0, atol=1e-5)
    else:  # an unbiased estimate: within 4 standard errors of 15
        assert np.all(np.abs(estimate - 15.0) < 4 * stderr) and np.all(stderr > 0)


def test_the_linear_examples_sharpness_is_30(tmp_path):
    # Squared error of w.x + b on x = [1, 2, 3]: the Hessian in (w, b) is 2 x~ x~^T with
    # x~ = [1, 2, 3, 1], of rank one, eigenvalue 2 |x~|^2 = 2 * 15 = 30: so lr > 2/30 diverges.
    result = run(tmp_path, "model=linear", "instruments=[elements,sharpness]", "trainer.steps=2",
                 "landscape.enabled=false")
    np.testing.assert_allclose(result.history["sharpness/top"].values, 30.0, rtol=1e-5)


def test_the_linear_example_diverges_above_2_over_30_and_converges_below(tmp_path):
    below = run(tmp_path / "below", "model=linear", "optim.lr=0.06", "trainer.steps=300",
                "landscape.enabled=false")
    assert below.final_loss < 1e-6
    with pytest.raises(gradtrace.NonFiniteError):
        run(tmp_path / "above", "model=linear", "optim.lr=0.07", "trainer.steps=3000",
            "landscape.enabled=false")


def test_a_divergence_with_sharpness_on_names_the_threshold(tmp_path):
    # lambda = 30 (above); at lr 0.07 the threshold 2/lr is 28.57 < 30, and lr > 2/30 = 0.06667.
    with pytest.raises(gradtrace.NonFiniteError) as caught:
        run(tmp_path, "model=linear", "optim.lr=0.07", "trainer.steps=3000",
            "instruments=[elements,sharpness]", "landscape.enabled=false")
    (line,) = str(caught.value).splitlines()
    assert "non-finite value before the optimiser step" in line
    assert "sharpness/top was lambda = 30 at step " in line
    assert "(above sharpness/threshold 28.57): lr 0.07 > 2/lambda = 0.06667: the top direction " \
           "overshoots and grows." in line


def test_heavy_ball_threshold(tmp_path):
    result = run(tmp_path, *QUADRATIC, "optim.lr=0.1", "optim.momentum=0.5", "trainer.steps=1",
                 "instruments=[elements,sharpness]")
    assert result.history["sharpness/threshold"].values[0] == pytest.approx((2 + 2 * 0.5) / 0.1)


def test_sharpness_of_a_network_agrees_with_its_exact_hessian(tmp_path):
    # A 2-4-2 tanh MLP on 40 spiral points: 22 parameters, a Hessian small enough to build whole
    # with torch.autograd.functional.hessian and diagonalise.
    result = run(tmp_path, "model=mlp", "model.hidden=[4]", "model.activation=tanh",
                 "data.samples=40", "instruments=[elements,sharpness]", "trainer.steps=1",
                 "instruments.sharpness.iterations=22", "instruments.sharpness.tolerance=0",
                 "instruments.sharpness.top_k=3", "landscape.enabled=false")
    run_ = build("model=mlp", "model.hidden=[4]", "model.activation=tanh", "data.samples=40")
    model, loss_fn = run_.model, run_.loss_fn
    inputs, targets = next(run_.batches)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()
    model64 = model.double()

    def loss_of(vector: torch.Tensor) -> torch.Tensor:
        params, offset = {}, 0
        for name, shape in zip(names, shapes):
            params[name] = vector[offset: offset + math.prod(shape)].reshape(shape)
            offset += math.prod(shape)
        return loss_fn(functional_call(model64, params, (inputs.double(),)), targets)

    exact = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, flat))
    # The same seed, the same initial values: step 0's parameters are these.
    got = [result.history[tag].values[0] for tag in ("sharpness/top", "sharpness/eig2",
                                                      "sharpness/eig3")]
    np.testing.assert_allclose(got, exact.flip(0)[:3].numpy(), rtol=1e-3, atol=1e-5)


def test_the_curvature_instruments_leave_training_as_it_was(tmp_path):
    plain = run(tmp_path / "plain", "model=mlp", "data.samples=100", "trainer.steps=5",
                "landscape.enabled=false")
    watched = run(tmp_path / "watched", "model=mlp", "data.samples=100", "trainer.steps=5",
                  "instruments=[elements,sharpness,hessian_trace]", "landscape.enabled=false")
    for (_, a), (_, b) in zip(plain.model.named_parameters(), watched.model.named_parameters()):
        assert torch.equal(a, b)


def test_the_distance_to_a_known_optimum(tmp_path):
    # Rosenbrock from (-1.5, 2): distance to (1, 1) is sqrt(2.5^2 + 1) and f = 2.5^2 + 100 *
    # (2 - 2.25)^2 = 12.5, the gap to the minimum 0.
    result = run(tmp_path, "model=rosenbrock", "trainer.steps=2", "optim.lr=0.0001",
                 "landscape.enabled=false")
    assert result.history["optimum/distance"].values[0] == pytest.approx(math.sqrt(7.25), rel=1e-6)
    assert result.history["optimum/gap"].values[0] == pytest.approx(12.5, rel=1e-6)
    assert result.final_loss < 12.5


@pytest.mark.parametrize("model,start,value", [
    ("rastrigin", [0.0, 0.0], 0.0), ("beale", [3.0, 0.5], 0.0), ("rosenbrock", [1.0, 1.0], 0.0),
    ("beale", [0.0, 0.0], 1.5 ** 2 + 2.25 ** 2 + 2.625 ** 2),
    ("rastrigin", [0.5, 0.5], 2 * 10 + 2 * (0.25 + 10)),  # A n + sum (x^2 - A cos(pi))
])
def test_the_2d_classics_at_known_points(model, start, value):
    run_ = build(f"model={model}", f"model.start={start}")
    assert float(run_.model.value().detach()) == pytest.approx(value, abs=1e-5)


def test_bad_objective_settings_are_one_line():
    with pytest.raises(ConfigError, match=r"^model\.start must hold 2 numbers"):
        build("model=quadratic", "model.start=[1.0]")
    with pytest.raises(ConfigError, match=r"^instruments\.sharpness\.top_k must be an integer in"):
        build("model=quadratic", "instruments=[sharpness]", "instruments.sharpness.top_k=50")


def test_gradient_noise_of_the_regressor_is_its_per_sample_closed_form(tmp_path):
    # Mean absolute error of one sample: g_i = sign(pred_i - y_i) x_i. G = mean g_i;
    # trace_cov = sum_i |g_i - G|^2 / (N - 1), mean_sq = |G|^2.
    result = run(tmp_path, "model=regressor", "data.samples=200", "trainer.steps=1",
                 "instruments=[elements,grad_noise]", "landscape.enabled=false")
    run_ = build("model=regressor", "data.samples=200")
    x = run_.train_data.inputs.double().numpy()
    y = run_.train_data.targets.double().numpy()
    params = np.array([result.history[f"param/params[{i}]"].values[0] for i in range(10)])
    g = np.sign(x @ params - y)[:, None] * x  # [N, 10]
    mean = g.mean(0)
    trace_cov = ((g - mean) ** 2).sum() / (len(g) - 1)
    history = result.history
    assert history["grad_noise/trace_cov"].values[0] == pytest.approx(trace_cov, rel=1e-5)
    assert history["grad_noise/mean_sq"].values[0] == pytest.approx(mean @ mean, rel=1e-5)
    assert history["grad_noise/simple_scale"].values[0] == pytest.approx(trace_cov / (mean @ mean),
                                                                         rel=1e-5)
    assert history["grad_noise/snr/params"].values[0] == pytest.approx((mean @ mean) / trace_cov,
                                                                       rel=1e-5)
    # G is the batch's gradient: its squared norm is grad_norm/total squared.
    assert history["grad_norm/total"].values[0] ** 2 == pytest.approx(mean @ mean, rel=1e-5)
