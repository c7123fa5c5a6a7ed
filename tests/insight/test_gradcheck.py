"""The gradient check: it passes on correct gradients, fails on wrong ones (negative controls),
is honest at mae's kink, leaves training untouched, and refuses bad settings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradtrace.components.models import Linear, Regressor
from gradtrace.errors import ConfigError, GradCheckError
from gradtrace.insight.gradcheck import GradCheck, finite_differences, partial_loss

from broken_losses import (
    DoubledGradMSE,
    FlippedGradL1,
    HandL1,
    HandMSE,
    UnknownDoubledGradLoss,
)
from conftest import build

SETTINGS = dict(every_steps=1, tolerance=1e-3, abs_tolerance=1e-5, step_size=1e-6)


def checked(model: nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor, strict: bool = False):
    """Backward as the trainer does, then one check; returns (checker, report)."""
    model.zero_grad()
    loss_fn(model(x), y).backward()
    checker = GradCheck(model, loss_fn, strict=strict, **SETTINGS)
    return checker, checker.check(0, x, y)


def linear_example() -> tuple[Linear, torch.Tensor, torch.Tensor]:
    model = Linear(3, weight=[[0.5, 0.5, 0.5]], bias=[-0.5])
    return model, torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([5.0])


def uniform_regression(samples: int = 200) -> tuple[Regressor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.rand(samples, 4, generator=generator), torch.rand(samples, generator=generator)
    torch.manual_seed(0)
    return Regressor(4), x, y


@pytest.mark.parametrize("model", ["scalar", "linear", "regressor"])
@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_real_configs_pass_on_both_references(model: str, loss: str):
    run = build(f"model={model}", f"loss={loss}")
    _, report = checked(run.model, run.loss_fn, *next(run.batches))
    assert report.passed, report.failures
    assert {c.reference for c in report.comparisons} == {"fd", "closed_form"}
    assert all(c.rel_error < 1e-5 for c in report.comparisons)
    names = [name for name, _ in run.model.named_parameters()]
    assert set(report.scalars()) == {"grad_check/kink_samples"} | {
        f"grad_check/{ref}/{kind}/{name}"
        for ref in ("fd", "closed_form")
        for kind in ("abs_error", "rel_error")
        for name in names
    }


def test_hand_written_correct_backward_passes():
    _, report = checked(*linear_example()[:1], HandMSE(), *linear_example()[1:])
    assert report.passed and report.has_closed_form
    model, x, y = uniform_regression()
    _, report = checked(model, HandL1(), x, y)
    assert report.passed and report.has_closed_form


def test_doubled_backward_is_caught_by_both_references():
    model, x, y = linear_example()
    _, report = checked(model, DoubledGradMSE(), x, y)
    assert not report.passed
    # The true gradient is 2 (2.5 - 5) x = [-5, -10, -15], bias -5; autograd says twice that.
    for reference in ("fd", "closed_form"):
        by_name = {c.parameter: c for c in report.comparisons if c.reference == reference}
        assert by_name["weight"].expected[0].tolist() == pytest.approx([-5.0, -10.0, -15.0])
        assert by_name["weight"].autograd[0].tolist() == [-10.0, -20.0, -30.0]
        assert by_name["weight"].rel_error == pytest.approx(1.0)
        assert by_name["bias"].abs_error == pytest.approx(5.0)
    assert len(report.failures) == 4  # weight and bias, against each reference
    assert any("the closed form give" in f for f in report.failures)
    assert any("finite differences give" in f for f in report.failures)


def test_strict_failure_names_parameter_step_and_both_values():
    model, x, y = linear_example()
    checker, report = checked(model, DoubledGradMSE(), x, y, strict=True)
    with pytest.raises(
        GradCheckError,
        match=r"step 0: gradient check failed for weight\[0,2\]: autograd gives -30 but "
        r"finite differences give -15(\.0*\d*)? \(\|difference\| 15",
    ):
        checker.enforce(report)


def test_not_strict_warns_and_goes_on(caplog: pytest.LogCaptureFixture):
    model, x, y = linear_example()
    checker, report = checked(model, DoubledGradMSE(), x, y, strict=False)
    checker.enforce(report)  # no exception
    assert "gradient check failed for weight[0,2]" in caplog.text


def test_flipped_mae_backward_is_caught_by_both_references():
    model, x, y = uniform_regression()
    _, report = checked(model, FlippedGradL1(), x, y)
    assert {c.reference for c in report.comparisons if c.rel_error > 1.9} == {"fd", "closed_form"}
    assert not report.passed


def test_a_loss_without_closed_form_is_checked_by_finite_differences_alone():
    model, x, y = linear_example()
    _, report = checked(model, UnknownDoubledGradLoss(), x, y)
    assert not report.has_closed_form
    assert {c.reference for c in report.comparisons} == {"fd"}
    assert not report.passed
    assert "no closed form for this model and loss" in report.summary()


def kink_data():
    """Five samples for Linear(2) with weight [[1, 1]], bias [0] and mae. Sample 0's residual is
    exactly 0; sample 1's is -3.6e-7, inside the sweep of the finite differences (h = 1e-6 moves
    its prediction by 5e-7 via the weights and 1e-6 via the bias); the rest are far from 0."""
    model = Linear(2, weight=[[1.0, 1.0]], bias=[0.0])
    x = torch.tensor([[1.0, 2.0], [0.5, 0.5], [3.0, 1.0], [1.0, 1.0], [2.0, 0.5]])
    y = torch.tensor([3.0, 1.0000003, 1.0, 5.0, 2.0])  # preds 3, 1, 4, 2, 2.5
    return model, x, y


def test_kink_samples_are_excluded_and_counted_without_false_mismatch():
    model, x, y = kink_data()
    _, report = checked(model, nn.L1Loss(), x, y)
    assert report.excluded == 2 and report.samples == 5
    assert report.passed, report.failures
    assert report.scalars()["grad_check/kink_samples"] == 2.0
    assert "2 of 5 samples at a kink left out" in report.summary()
    # The exclusion matters: over all samples, finite differences disagree with autograd.
    naive = finite_differences(
        Linear(2, weight=[[1.0, 1.0]], bias=[0.0]).double(),
        lambda preds: nn.L1Loss()(preds, y.double()), x.double(), 1e-6,
    )
    assert abs(naive["bias"].item() - model.bias.grad.item()) > 0.1  # -0.072 vs -0.2
    # ... and what is compared is autograd over the kept samples: sign(r) (1, -1, 0.5->1) / 5
    kept = [c for c in report.comparisons if c.reference == "closed_form" and c.parameter == "bias"]
    assert kept[0].autograd.item() == pytest.approx(1 / 5)


def test_kinks_never_hide_a_wrong_backward():
    model, x, y = kink_data()
    _, report = checked(model, FlippedGradL1(), x, y)
    assert report.excluded == 2 and not report.passed


def test_float32_sign_of_a_residual_counts_as_a_kink():
    # pred_0 = 0.01 + 100 in float32 is 100.0100021 = y_0, residual 0 for autograd; in float64
    # it is -2.1e-6, further from 0 than the sweep (1e-6) reaches. The closed form would say
    # sign -1 where autograd used 0: not comparable, so left out.
    model = Linear(1, weight=[[1.0]], bias=[100.0])
    x = torch.tensor([[0.01], [1.0]])
    with torch.no_grad():
        y = torch.tensor([model(x)[0].item(), 50.0])
    _, report = checked(model, nn.L1Loss(), x, y)
    assert report.excluded == 1 and report.passed, report.failures


def test_every_sample_at_a_kink_gives_no_verdict():
    model = Linear(3, weight=[[1.0, 1.0, 1.0]], bias=[-1.0])  # pred 5 = y exactly
    x, y = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([5.0])
    checker, report = checked(model, nn.L1Loss(), x, y, strict=True)
    assert report.comparisons == [] and report.failures == [] and not report.passed
    assert report.scalars() == {"grad_check/kink_samples": 1.0}
    assert "nothing to compare" in report.summary()
    checker.enforce(report)  # strict, yet nothing failed: no exception


def test_check_leaves_training_untouched():
    model, x, y = uniform_regression()
    nn.L1Loss()(model(x), y).backward()
    params, grad = model.params.detach().clone(), model.params.grad.clone()
    GradCheck(model, nn.L1Loss(), strict=True, **SETTINGS).check(0, x, y)
    assert torch.equal(model.params.detach(), params) and torch.equal(model.params.grad, grad)


def test_partial_loss_keeps_the_mean_over_all_samples():
    preds, targets = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.zeros(4)
    keep = torch.tensor([True, False, True, False])
    assert partial_loss(nn.L1Loss(), preds, targets, keep).item() == pytest.approx((1 + 3) / 4)
    assert partial_loss(nn.L1Loss(reduction="sum"), preds, targets, keep).item() == 4.0


def test_due_steps():
    settings = {**SETTINGS, "every_steps": 3}
    checker = GradCheck(nn.Linear(1, 1), nn.MSELoss(), strict=False, **settings)
    assert [s for s in range(10) if checker.due(s)] == [0, 3, 6, 9]


@pytest.mark.parametrize(
    "override,message",
    [
        ("grad_check.every_steps=-1", r"grad_check.every_steps must be an integer >= 0 \(0: off\)"),
        ("grad_check.tolerance=0", r"grad_check.tolerance must be a finite number > 0, got 0.0"),
        ("grad_check.step_size=-1e-6", r"grad_check.step_size must be a finite number > 0, got -"),
        ("grad_check.abs_tolerance=-1", r"grad_check.abs_tolerance must be a finite number >= 0"),
        ("explain_steps=-2", r"explain_steps must be an integer >= 0, got -2"),
    ],
)
def test_bad_settings_fail_before_step_0(override: str, message: str):
    with pytest.raises(ConfigError, match=f"^trainer.{message}"):
        build(f"trainer.{override}")


def test_off_by_default():
    run = build()
    assert "grad_check" not in run.instruments and "explain" not in run.instruments
    run = build("trainer.grad_check.every_steps=10")
    assert run.instruments["grad_check"].check.strict is False
    # The instruments' own spelling does the same as trainer.grad_check's.
    run = build("instruments.grad_check.every_steps=10", "instruments.grad_check.strict=true")
    assert run.instruments["grad_check"].check.strict is True
