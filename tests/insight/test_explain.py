"""The step explanation of the linear worked example, against a derivation by hand.

Linear model, x = [1, 2, 3], y = 5, weight [[0.5, 0.5, 0.5]], bias [-0.5], mse, SGD lr 0.01:
    pred     = 0.5 + 1 + 1.5 - 0.5 = 2.5            loss before = (2.5 - 5)**2 = 6.25
    dL/dw    = 2 (pred - y) x = -5 x = [-5, -10, -15],  dL/db = 2 (pred - y) = -5
    update   = -lr * grad = [0.05, 0.1, 0.15], 0.05  (negative gradient: raising lowers the loss)
    new      = [0.55, 0.6, 0.65], -0.45
    pred'    = 0.55 + 1.2 + 1.95 - 0.45 = 3.25      loss after  = (3.25 - 5)**2 = 3.0625, fell
"""

from __future__ import annotations

from typing import Mapping

import pytest
import torch

from gradtrace.training.loop import train

from conftest import build

LINEAR = ("model=linear", "model.weight=[[0.5,0.5,0.5]]", "model.bias=[-0.5]")

HAND = [  # element, value, gradient, -lr*grad, new value
    ("weight[0,0]", 0.5, -5.0, 0.05, 0.55),
    ("weight[0,1]", 0.5, -10.0, 0.1, 0.6),
    ("weight[0,2]", 0.5, -15.0, 0.15, 0.65),
    ("bias[0]", -0.5, -5.0, 0.05, -0.45),
]


def explain_first_step(*overrides: str):
    run = build(*LINEAR, "trainer.explain_steps=1", *overrides)
    inputs, targets = next(run.batches)
    run.optimizer.zero_grad()
    loss = run.loss_fn(run.model(inputs), targets)
    loss.backward()
    explainer = run.instruments["explain"].explainer
    before = explainer.before_step(loss.item())
    run.optimizer.step()
    return explainer.after_step(0, before, inputs, targets)


def test_sgd_first_step_matches_the_hand_derivation():
    explanation = explain_first_step("optim=sgd", "optim.lr=0.01")
    assert [r.element for r in explanation.rows] == [h[0] for h in HAND]
    for row, (_, value, grad, update, new) in zip(explanation.rows, HAND):
        assert row.value == value and row.grad == grad  # exact in float32
        assert row.sgd_update == pytest.approx(update, rel=1e-12)
        assert row.applied == pytest.approx(update, rel=1e-6)  # float32 new - old
        assert row.new_value == pytest.approx(new, rel=1e-6)
        assert row.meaning == "lower the loss"
    assert explanation.loss_before == 6.25
    assert explanation.loss_after == pytest.approx(3.0625, rel=1e-6)
    assert explanation.loss_fell and explanation.plain_gradient_step
    table = explanation.table().splitlines()
    assert table[0].startswith("step 0: loss 6.25 -> 3.0625 on this batch, fell by 3.1875")
    header = "parameter value gradient raising it would -lr*grad applied new value"
    assert table[1].split() == header.split()
    first = ["weight[0,0]", "0.5", "-5", "lower", "the", "loss", "0.05", "0.05", "0.55"]
    assert table[2].split() == first
    markdown = explanation.markdown()
    assert "| weight[0,2] | 0.5 | -15 | lower the loss | 0.15 | 0.15 | 0.65 |" in markdown


def test_adam_applies_its_own_update_and_the_table_shows_both():
    # Adam's first step: m = (1 - b1) g, v = (1 - b2) g**2, bias-corrected to g and g**2, so the
    # update is -lr g / (|g| + eps) = -lr sign(g) = +0.001 for every element here.
    explanation = explain_first_step("optim=adam", "optim.lr=0.001")
    for row, (_, _, grad, _, _) in zip(explanation.rows, HAND):
        assert row.grad == grad
        assert row.sgd_update == pytest.approx(-0.001 * grad)  # what SGD would have applied
        assert row.applied == pytest.approx(0.001, rel=1e-4)  # what Adam applied
        assert abs(row.applied - row.sgd_update) > 0.003
    assert not explanation.plain_gradient_step
    assert "Adam applied its own update, not -lr*grad" in explanation.verdict()


def test_momentum_first_step_is_plain_then_not():
    run = build(*LINEAR, "optim.momentum=0.9", "trainer.explain_steps=2")
    logger = RecordingLogger()
    train(model=run.model, loss_fn=run.loss_fn, optimizer=run.optimizer, batches=run.batches,
          instruments=run.instruments, logger=logger, steps=3)
    assert [step for step, _, _ in logger.texts] == [0, 1]  # the first K = 2 steps only
    assert all(tag == "explain" for _, tag, _ in logger.texts)
    # Markdown, so the * is escaped. The momentum buffer starts as the gradient itself.
    assert "each update is -lr\\*grad" in logger.texts[0][2]
    assert "SGD applied its own update, not -lr\\*grad" in logger.texts[1][2]


class RecordingLogger:
    """A Logger that keeps the text entries it gets."""

    def __init__(self) -> None:
        self.texts: list[tuple[int, str, str]] = []

    def log_histograms(self, step: int, tensors: Mapping[str, torch.Tensor]) -> None:
        pass

    def log_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        pass

    def log_text(self, step: int, tag: str, markdown: str) -> None:
        self.texts.append((step, tag, markdown))

    def log_image(self, step: int, tag: str, png: bytes) -> None:
        pass


# With sharpness on, the explanation says how lr stands against the curvature. The linear
# example's Hessian in (w, b) is 2 x~ x~^T with x~ = [1, 2, 3, 1]: lambda = 2 |x~|^2 = 30 at any
# parameters, so 1/lambda = 0.0333 and 2/lambda = 0.0667; along the top eigenvector gradient
# descent multiplies the error by 1 - 30 lr: 0.7 at lr 0.01, -0.5 at 0.05, -1.1 at 0.07.
@pytest.mark.parametrize("lr,says", [
    (0.01, "lr 0.01 <= 2/lambda = 0.06667: the top direction shrinks"),
    (0.05, "1/lambda = 0.03333 < lr 0.05 <= 2/lambda = 0.06667: the top direction overshoots, "
           "but shrinks"),
    (0.07, "lr 0.07 > 2/lambda = 0.06667: the top direction overshoots and grows"),
])
def test_with_sharpness_on_the_explanation_weighs_lr_against_2_over_lambda(lr, says):
    run = build(*LINEAR, "trainer.explain_steps=1", "instruments=[elements,sharpness,explain]",
                f"optim.lr={lr}")
    logger = RecordingLogger()
    train(model=run.model, loss_fn=run.loss_fn, optimizer=run.optimizer, batches=run.batches,
          instruments=run.instruments, logger=logger, steps=1)
    ((_, _, markdown),) = logger.texts
    assert f"lambda = 30, the Hessian's top eigenvalue on this batch: {says}" in markdown


def test_with_momentum_the_limit_is_2_plus_2_mu_over_lambda():
    # Heavy ball with mu = 0.9 is stable along a direction of curvature lambda up to
    # lr = (2 + 2 mu)/lambda = 3.8/30 = 0.1267: lr 0.1 is below it, and 0.13 above it.
    for lr, says in [(0.1, "lr 0.1 <= (2 + 2*0.9)/lambda = 0.1267: the top direction shrinks"),
                     (0.13, "lr 0.13 > (2 + 2*0.9)/lambda = 0.1267: the top direction overshoots")]:
        run = build(*LINEAR, "trainer.explain_steps=1", "instruments=[elements,sharpness,explain]",
                    "optim=momentum", f"optim.lr={lr}")
        logger = RecordingLogger()
        train(model=run.model, loss_fn=run.loss_fn, optimizer=run.optimizer,
              batches=run.batches, instruments=run.instruments, logger=logger, steps=1)
        assert says.replace("*", "\\*") in logger.texts[0][2]  # Markdown: * escaped


def test_without_sharpness_the_explanation_says_nothing_of_curvature():
    explanation = explain_first_step("optim.lr=0.07")
    assert explanation.curvature is None and "lambda" not in explanation.verdict()
