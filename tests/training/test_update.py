"""What changes the update, checked from TensorBoard alone: schedules (the lr logged at step k is
the lr step k's update uses), clipping (param[k+1] = param[k] - lr * clip(grad[k])) and gradient
accumulation (K micro-batches = one batch K times as large, up to float rounding)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import gradtrace
from gradtrace.errors import ConfigError
from gradtrace.training.loop import accumulate

# The linear worked example: x = [1, 2, 3], y = 5, w = [0.5, 0.5, 0.5], b = -0.5: prediction 2.5,
# gradients 2 (pred - y) x = [-5, -10, -15] and -5 for the bias.
LINEAR = ["model=linear", "model.weight=[[0.5,0.5,0.5]]", "model.bias=[-0.5]",
          "landscape.enabled=false"]
WEIGHTS = [f"weight[0,{j}]" for j in range(3)] + ["bias[0]"]


def run(tmp_path: Path, *overrides: str) -> gradtrace.RunResult:
    return gradtrace.run(list(overrides), run_dir=tmp_path, verbose=False)


def values(result: gradtrace.RunResult, tag: str) -> np.ndarray:
    return result.history[tag].values


def check_sgd_rule(result: gradtrace.RunResult, applied: np.ndarray) -> None:
    """param[k+1] = param[k] - lr[k] * applied[k] * grad[k] for every element, from the log."""
    lr = values(result, "optim/lr")
    for name in WEIGHTS:
        param, grad = values(result, f"param/{name}"), values(result, f"grad/{name}")
        expected = param[:-1] - lr[:-1] * applied[:-1] * grad[:-1]
        np.testing.assert_allclose(param[1:], expected, rtol=1e-5, atol=1e-6)


# --- schedules ---------------------------------------------------------------------------------


def test_step_schedule_logs_the_lr_each_update_uses(tmp_path: Path):
    result = run(tmp_path, *LINEAR, "optim.lr=0.01", "trainer.steps=8", "scheduler=step",
                 "scheduler.step_size=3", "scheduler.gamma=0.5")
    # StepLR: lr_k = lr * gamma^(k // step_size)
    np.testing.assert_allclose(values(result, "optim/lr"), [0.01 * 0.5 ** (k // 3) for k in range(8)],
                               rtol=1e-6)  # float32 in the event file
    check_sgd_rule(result, np.ones(8))


def test_cosine_schedule_follows_its_formula_over_the_run(tmp_path: Path):
    steps, lr = 20, 0.02
    result = run(tmp_path, *LINEAR, f"optim.lr={lr}", f"trainer.steps={steps}", "scheduler=cosine")
    # T_max = trainer.steps, eta_min 0: lr_k = lr (1 + cos(pi k / T_max)) / 2
    expected = [lr * (1 + math.cos(math.pi * k / steps)) / 2 for k in range(steps)]
    np.testing.assert_allclose(values(result, "optim/lr"), expected, rtol=1e-6, atol=1e-12)
    check_sgd_rule(result, np.ones(steps))


def test_warmup_cosine_rises_linearly_then_anneals(tmp_path: Path):
    steps, warmup, lr = 12, 4, 0.01
    result = run(tmp_path, *LINEAR, f"optim.lr={lr}", f"trainer.steps={steps}",
                 "scheduler=warmup_cosine", f"scheduler.warmup_steps={warmup}")
    expected = [lr * k / warmup if k < warmup else
                lr * (1 + math.cos(math.pi * (k - warmup) / (steps - warmup))) / 2
                for k in range(steps)]
    np.testing.assert_allclose(values(result, "optim/lr"), expected, rtol=1e-6, atol=1e-12)


def test_plateau_cuts_the_lr_after_patience_validations_without_improvement(tmp_path: Path):
    # lr 1e-6: the validation loss (the objective loss/val_final's series) cannot improve by
    # ReduceLROnPlateau's relative threshold (1e-4), so every validation after the first is a bad
    # one; with patience 2 the third bad one (step 3) cuts the lr by factor 0.1 for step 4 on; the
    # counter restarts, and step 6 cuts it again for step 7 on.
    result = run(tmp_path, "model=regressor", "data.val_fraction=0.5", "trainer.val_every_steps=1",
                 "objective.metric=loss/val_final", "optim.lr=1e-6", "trainer.steps=9",
                 "scheduler=plateau", "scheduler.patience=2", "landscape.enabled=false")
    lr = values(result, "optim/lr")
    np.testing.assert_allclose(lr, [1e-6] * 4 + [1e-7] * 3 + [1e-8] * 2, rtol=1e-6)


def test_any_torch_scheduler_class_by_its_target(tmp_path: Path):
    result = run(tmp_path, *LINEAR, "optim.lr=0.1", "trainer.steps=4",
                 "+scheduler._target_=torch.optim.lr_scheduler.ExponentialLR", "+scheduler.gamma=0.5")
    np.testing.assert_allclose(values(result, "optim/lr"), [0.1, 0.05, 0.025, 0.0125], rtol=1e-6)


def two_groups(params, lr: float) -> torch.optim.SGD:
    """An optimiser of a user's with a parameter group per tensor, the second at lr / 10."""
    params = list(params)
    return torch.optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": lr / 10}], lr=lr)


def test_each_parameter_group_has_its_own_lr_tag(tmp_path: Path):
    result = run(tmp_path, *LINEAR, f"optim._target_={__name__}.two_groups", "~optim.momentum",
                 "~optim.weight_decay", "~optim.nesterov", "optim.lr=0.1", "trainer.steps=4",
                 "scheduler=step", "scheduler.step_size=2", "scheduler.gamma=0.5")
    assert "optim/lr" not in result.history
    np.testing.assert_allclose(values(result, "optim/lr/group0"), [0.1, 0.1, 0.05, 0.05])
    np.testing.assert_allclose(values(result, "optim/lr/group1"), [0.01, 0.01, 0.005, 0.005])


def test_a_resumed_run_with_a_schedule_is_bitwise_the_uninterrupted_one(tmp_path: Path):
    common = [*LINEAR, "optim.lr=0.01", "scheduler=step", "scheduler.step_size=2",
              "scheduler.gamma=0.7", "optim.momentum=0.9", "trainer.checkpoint.every_steps=3"]
    whole = run(tmp_path / "whole", *common, "trainer.steps=8")
    run(tmp_path / "parts", *common, "trainer.steps=5")
    resumed = run(tmp_path / "parts", *common, "trainer.steps=8", "trainer.resume=true")
    for name, param in whole.model.named_parameters():
        assert torch.equal(param, dict(resumed.model.named_parameters())[name])
    assert values(resumed, "optim/lr").tolist() == values(whole, "optim/lr").tolist()


@pytest.mark.parametrize("overrides,message", [
    (["scheduler=step", "+scheduler.step_sizes=3"],
     r"^scheduler: torch\.optim\.lr_scheduler\.StepLR takes no argument step_sizes \(did you mean "
     r"step_size\?\)"),
    (["scheduler=warmup_cosine", "scheduler.warmup_steps=20"],
     r"^scheduler\.warmup_steps must be an integer in \[0, scheduler\.total_steps=10\)"),
    (["+scheduler._target_=torch.optim.lr_scheduler.Nope"],
     r"^scheduler\._target_=torch\.optim\.lr_scheduler\.Nope cannot be imported"),
])
def test_bad_schedules_fail_before_step_0(overrides: list[str], message: str, tmp_path: Path):
    with pytest.raises(ConfigError, match=message):
        run(tmp_path, *LINEAR, "trainer.steps=10", *overrides)
    assert not list(tmp_path.glob("events.out.tfevents.*"))


# --- clipping ------------------------------------------------------------------------------------


def test_clip_by_norm_applies_the_scaled_gradient_and_logs_both_norms(tmp_path: Path):
    result = run(tmp_path, *LINEAR, "optim.lr=0.01", "trainer.steps=5", "trainer.clip_grad_norm=1.0")
    total, clipped = values(result, "grad_norm/total"), values(result, "grad_norm/clipped")
    # Step 0: the raw gradients are logged, |g| = sqrt(25 + 100 + 225 + 25) = sqrt(375); the
    # update uses g / |g| (torch: times 1 / (|g| + 1e-6)), of norm 1.
    assert total[0] == pytest.approx(math.sqrt(375), rel=1e-6)
    assert values(result, "grad/weight[0,2]")[0] == pytest.approx(-15, rel=1e-6)
    np.testing.assert_allclose(clipped, np.minimum(total, 1.0), rtol=1e-5)
    check_sgd_rule(result, clipped / total)
    assert values(result, "param/weight[0,0]")[1] == pytest.approx(0.5 + 0.01 * 5 / math.sqrt(375),
                                                                   rel=1e-6)


def test_clip_by_value_clamps_each_element(tmp_path: Path):
    result = run(tmp_path, *LINEAR, "optim.lr=0.1", "trainer.steps=2", "trainer.clip_grad_value=2")
    # Each of the gradients [-5, -10, -15] and -5 is clamped to -2: norm sqrt(4 * 4) = 4, and
    # every parameter moves by 0.1 * 2.
    assert values(result, "grad_norm/clipped")[0] == pytest.approx(4.0, rel=1e-6)
    for name, start in zip(WEIGHTS, [0.5, 0.5, 0.5, -0.5]):
        assert values(result, f"param/{name}")[1] == pytest.approx(start + 0.2, rel=1e-6)


def test_a_clip_that_does_not_bite_changes_nothing(tmp_path: Path):
    plain = run(tmp_path / "plain", *LINEAR, "optim.lr=0.01", "trainer.steps=5")
    loose = run(tmp_path / "loose", *LINEAR, "optim.lr=0.01", "trainer.steps=5",
                "trainer.clip_grad_value=100")
    for (_, a), (_, b) in zip(plain.model.named_parameters(), loose.model.named_parameters()):
        assert torch.equal(a, b)


# --- accumulation ----------------------------------------------------------------------------


def test_accumulation_equals_one_batch_k_times_as_large(tmp_path: Path):
    # 1000 samples: 4 micro-batches of 125 are, step for step, the same samples as one batch of
    # 500 (both streams draw the same seeded permutation per epoch). The sum of 4 mean losses
    # weighted 1/4 is the mean over 500, up to float32 rounding: 1e-6 relative, stated here.
    common = ["model=regressor", "trainer.steps=6", "optim.lr=0.05", "landscape.enabled=false"]
    small = run(tmp_path / "k4", *common, "data.batch_size=125", "trainer.accumulate_steps=4")
    large = run(tmp_path / "k1", *common, "data.batch_size=500")
    assert small.steps == large.steps == 6  # trainer.steps counts optimiser steps
    np.testing.assert_allclose(values(small, "loss/train"), values(large, "loss/train"), rtol=1e-6)
    for i in range(10):
        np.testing.assert_allclose(values(small, f"grad/params[{i}]"),
                                   values(large, f"grad/params[{i}]"), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(small.model.params.detach(), large.model.params.detach(), rtol=1e-6)


def test_a_short_micro_batch_counts_by_its_samples():
    # Batches of 3 and 1 samples: the accumulated gradient is that of the mean loss over all 4
    # (weights 3/4 and 1/4), not the mean of the two batches' mean losses.
    torch.manual_seed(0)
    x, y = torch.rand(4, 2), torch.rand(4)
    model = nn.Linear(2, 1)
    forward = lambda inputs: model(inputs).squeeze(-1)  # noqa: E731
    _, _, _, loss = accumulate(forward, nn.MSELoss(), iter([(x[:3], y[:3]), (x[3:], y[3:])]), 2)
    accumulated = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    whole = nn.MSELoss()(forward(x), y)
    whole.backward()
    assert loss.item() == pytest.approx(whole.item(), rel=1e-6)
    for a, b in zip(accumulated, [p.grad for p in model.parameters()]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
