"""Check the gradients training uses against finite differences and closed forms.

At a checked step, after backward() and before the optimiser's step, each parameter's .grad
(float32: what the optimiser is about to apply) is compared with
  (a) central finite differences of the same batch's loss, in float64 on a copy of the model:
      (L(theta + h e_k) - L(theta - h e_k)) / 2h for every element k. Only the copy is perturbed;
  (b) the closed form (closed_form.py), where the model and the loss have one.

Tolerance. An element passes when |autograd - reference| <= abs_tolerance + tolerance * |reference|
(torch.allclose's rule). float32 rounding leaves about 1e-7 relative error in autograd, and float64
central differences with h = 1e-6 are good to about 1e-9 here, so tolerance 1e-3 leaves a wide
margin, while a wrong backward (a factor, a sign, a missing term) is off by order 1.
abs_tolerance covers gradients near 0, where float32 noise makes any relative error large.

Kinks. mae's |r| has no derivative at r = 0. A sample whose residual touches or crosses 0 over the
perturbations the differences make gives a difference quotient that is no derivative at all; so
does a sample whose residual has another sign in float32 (what autograd saw) than in float64.
Such samples are left out of all three sides: finite differences and closed form sum over the
other samples (still divided by all N), and autograd is recomputed on those samples alone (float32,
the model's and loss's own backward, on a copy). The report counts them; when every sample is at a
kink nothing is compared, and the report says so rather than pass or fail. Kinks are known for
L1Loss (mae); any other loss is taken to be differentiable at the checked point.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from gradtrace.errors import GradCheckError
from gradtrace.insight.closed_form import closed_form_grads
from gradtrace.training.probe import element_names

log = logging.getLogger(__name__)

REFERENCES = {"fd": "finite differences", "closed_form": "the closed form"}


@dataclass
class Comparison:
    """One parameter's autograd gradient against one reference, both float64, same shape."""

    parameter: str
    reference: str  # a key of REFERENCES
    autograd: torch.Tensor
    expected: torch.Tensor

    @property
    def abs_error(self) -> float:
        return (self.autograd - self.expected).abs().max().item()

    @property
    def rel_error(self) -> float:
        """Largest |autograd - reference| / |reference| over elements whose reference is not 0
        (those are judged by the absolute error); inf when every reference is 0 and autograd
        is not."""
        nonzero = self.expected != 0
        if not nonzero.any():
            return 0.0 if self.abs_error == 0 else math.inf
        diff = (self.autograd - self.expected).abs()[nonzero]
        return (diff / self.expected.abs()[nonzero]).max().item()

    def worst_failure(self, tolerance: float, abs_tolerance: float) -> Optional[str]:
        """A sentence naming the element furthest past the tolerance; None when all pass."""
        diff = (self.autograd - self.expected).abs().reshape(-1)
        excess = diff - (abs_tolerance + tolerance * self.expected.abs().reshape(-1))
        k = int(excess.argmax())
        if excess[k] <= 0:
            return None
        element = element_names(self.parameter, self.autograd.shape)[k]
        return (
            f"{element}: autograd gives {self.autograd.reshape(-1)[k].item():.8g} but "
            f"{REFERENCES[self.reference]} give {self.expected.reshape(-1)[k].item():.8g} "
            f"(|difference| {diff[k].item():.3g} > abs_tolerance {abs_tolerance:g} "
            f"+ tolerance {tolerance:g} x |reference|)"
        )


@dataclass
class GradCheckReport:
    step: int
    samples: int  # in the checked batch
    excluded: int  # samples at a kink, left out of every side
    has_closed_form: bool
    comparisons: list[Comparison] = field(default_factory=list)  # empty: nothing comparable
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True only when something was compared and all of it agreed."""
        return bool(self.comparisons) and not self.failures

    def scalars(self) -> dict[str, float]:
        """grad_check/<fd|closed_form>/<abs_error|rel_error>/<param>, grad_check/kink_samples."""
        out = {"grad_check/kink_samples": float(self.excluded)}
        for c in self.comparisons:
            out[f"grad_check/{c.reference}/abs_error/{c.parameter}"] = c.abs_error
            out[f"grad_check/{c.reference}/rel_error/{c.parameter}"] = c.rel_error
        return out

    def summary(self) -> str:
        kinks = f"{self.excluded} of {self.samples} samples at a kink left out"
        if not self.comparisons:
            return f"grad check step {self.step}: nothing to compare, {kinks}"
        worst = []
        for reference, words in REFERENCES.items():
            compared = [c for c in self.comparisons if c.reference == reference]
            if compared:
                worst.append(
                    f"vs {words} {max(c.abs_error for c in compared):.2g} absolute, "
                    f"{max(c.rel_error for c in compared):.2g} relative"
                )
        if not self.has_closed_form:
            worst.append("no closed form for this model and loss")
        verdict = (
            "pass"
            if self.passed
            else f"FAIL ({len(self.failures)} of {len(self.comparisons)} parameter-reference pairs)"
        )
        return (
            f"grad check step {self.step}: {verdict}; largest error {'; '.join(worst)}; "
            f"{kinks} ({self.seconds * 1e3:.1f} ms)"
        )


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class GradCheck:
    """Compares autograd with finite differences and closed forms every `every_steps` steps."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        *,
        every_steps: int,
        tolerance: float,
        abs_tolerance: float,
        step_size: float,
        strict: bool,
    ) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.every_steps = every_steps
        self.tolerance = tolerance
        self.abs_tolerance = abs_tolerance
        self.step_size = step_size  # h, in parameter units, applied in float64
        self.strict = strict

    def due(self, step: int) -> bool:
        return step % self.every_steps == 0

    def check(self, step: int, inputs: torch.Tensor, targets: torch.Tensor) -> GradCheckReport:
        """Compare the gradients now in .grad (this batch's, before the optimiser's step)."""
        start = time.perf_counter()
        named = _trainable(self.model)
        trained = {name: _grad(p).detach().double() for name, p in named}
        model64 = copy.deepcopy(self.model).double()  # perturbed below; the real model is not
        x, y = inputs.double(), double(targets)  # exact copies of the float32 data
        loss64 = double(self.loss_fn)
        samples = len(targets)

        keep: Optional[torch.Tensor] = None  # bool [N]: samples away from any kink
        if isinstance(self.loss_fn, nn.L1Loss):
            keep = ~self._at_kink(model64, x, y, inputs, targets)
        excluded = 0 if keep is None else int((~keep).sum())
        report = GradCheckReport(step, samples, excluded, has_closed_form=False)
        if keep is not None and not keep.any():
            report.seconds = time.perf_counter() - start
            log.warning("%s", report.summary())
            return report
        if keep is None or excluded == 0:
            keep = None  # compare the very gradient the optimiser will use
            autograd = trained
        else:
            autograd = self._autograd_on(inputs, targets, keep)

        references = {
            "fd": finite_differences(
                model64, lambda preds: partial_loss(loss64, preds, y, keep), x, self.step_size
            ),
            "closed_form": closed_form_grads(self.model, self.loss_fn, inputs, targets, keep),
        }
        report.has_closed_form = references["closed_form"] is not None
        for reference, grads in references.items():
            if grads is None:
                continue
            for name, _ in named:
                comparison = Comparison(name, reference, autograd[name], grads[name].double())
                report.comparisons.append(comparison)
                failure = comparison.worst_failure(self.tolerance, self.abs_tolerance)
                if failure is not None:
                    report.failures.append(failure)
        report.seconds = time.perf_counter() - start
        log.info("%s", report.summary())
        return report

    def enforce(self, report: GradCheckReport) -> None:
        """strict: raise GradCheckError on a mismatch; otherwise warn and go on."""
        if not report.failures:
            return
        message = (
            f"step {report.step}: gradient check failed for {report.failures[0]}"
            + (f"; and {len(report.failures) - 1} more" if len(report.failures) > 1 else "")
            + f". {report.excluded} of {report.samples} samples at a kink were left out. "
            "The backward of the loss or the model disagrees with its forward; every error is "
            "logged under grad_check/ in TensorBoard."
        )
        if self.strict:
            raise GradCheckError(message)
        log.warning("%s", message)

    def _at_kink(
        self,
        model64: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        inputs: torch.Tensor,
        targets: torch.Tensor,
    ) -> torch.Tensor:
        """bool [N]: samples whose residual pred - target is at mae's kink for this check."""
        with torch.no_grad():
            residuals32 = copy.deepcopy(self.model)(inputs) - targets  # what autograd saw
            residuals = model64(x) - y
            low, high = residuals.clone(), residuals.clone()  # the sweep of each residual [N]
            for _, _, preds_up, preds_down, _ in _perturbations(model64, x, self.step_size):
                for preds in (preds_up, preds_down):
                    torch.minimum(low, preds - y, out=low)
                    torch.maximum(high, preds - y, out=high)
        crosses_zero = (low <= 0) & (high >= 0)  # includes a residual of exactly 0
        sign_differs = torch.sign(residuals32).double() != torch.sign(residuals)
        return crosses_zero | sign_differs

    def _autograd_on(
        self, inputs: torch.Tensor, targets: torch.Tensor, keep: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Autograd's gradient of the kept samples' terms, float32 on a copy (no .grad touched)."""
        model = copy.deepcopy(self.model)
        named = _trainable(model)
        loss = partial_loss(self.loss_fn, model(inputs), targets, keep)
        grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
        return {
            name: (torch.zeros_like(p) if g is None else g).detach().double()
            for (name, p), g in zip(named, grads)
        }


def double(value: Any) -> Any:
    """In float64 for the references: floating targets (class indices stay int64) and a loss
    module's own tensors (class weights) on a copy of it; anything else as it is."""
    if isinstance(value, torch.Tensor):
        return value.double() if value.is_floating_point() else value
    if isinstance(value, nn.Module):
        return copy.deepcopy(value).double()
    return value


def partial_loss(
    loss_fn: LossFn, preds: torch.Tensor, targets: torch.Tensor, keep: Optional[torch.Tensor]
) -> torch.Tensor:
    """The loss's terms of the kept samples, scaled as in the loss over all N samples.

    Only used with keep for L1Loss, whose `reduction` says how its terms are combined."""
    if keep is None:
        return loss_fn(preds, targets)
    part = loss_fn(preds[keep], targets[keep])
    if getattr(loss_fn, "reduction", "mean") == "mean":
        part = part * (int(keep.sum()) / len(keep))
    return part


def finite_differences(
    model64: nn.Module, loss_of_preds: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
    step_size: float,
) -> dict[str, torch.Tensor]:
    """Central differences of loss_of_preds(model64(x)) for every parameter element, float64.

    Costs two forward passes per element; each element is restored exactly afterwards.
    """
    grads = {name: torch.zeros_like(p, dtype=torch.float64) for name, p in _trainable(model64)}
    for name, k, preds_up, preds_down, width in _perturbations(model64, x, step_size):
        rise = (loss_of_preds(preds_up) - loss_of_preds(preds_down)).item()
        grads[name].view(-1)[k] = rise / width
    return grads


def _perturbations(
    model64: nn.Module, x: torch.Tensor, step_size: float
) -> Iterator[tuple[str, int, torch.Tensor, torch.Tensor, float]]:
    """(name, k, preds with element k raised by h, preds with it lowered by h, the actual 2h)."""
    for name, p in _trainable(model64):
        flat = p.detach().view(-1)  # shares memory with the parameter
        for k in range(flat.numel()):
            original = flat[k].item()
            up, down = original + step_size, original - step_size
            with torch.no_grad():
                # clone: a model's predictions may be a view of the parameter (scalar: w.expand)
                flat[k] = up
                preds_up = model64(x).clone()
                flat[k] = down
                preds_down = model64(x).clone()
                flat[k] = original
            yield name, k, preds_up, preds_down, up - down  # up - down: 2h after rounding


def _trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def _grad(p: nn.Parameter) -> torch.Tensor:
    return p.grad if p.grad is not None else torch.zeros_like(p)  # a parameter the loss skips
