"""Every parameter and gradient element as a scalar, every logged step: param/<name>[i,j] and
grad/<name>[i,j]; tensors of more than `max_elements` elements as L2 norms (param_norm/<name>,
grad_norm/<name>); and grad_norm/total, the L2 norm of all gradients together.

It also stops a run whose parameters or gradients are no longer finite (NonFiniteError, exit 3),
before the optimiser applies them.
"""

from __future__ import annotations

import math
from typing import NoReturn

from gradtrace.errors import NonFiniteError
from gradtrace.training.instruments import Row, RunContext, StepView
from gradtrace.training.probe import Probe


class Elements:
    tag_prefix = ""  # its tags are gradtrace's own: param/..., grad/..., grad_norm/total
    tags_under = ("param/", "grad/", "param_norm/", "grad_norm/")

    def __init__(self, max_elements: int) -> None:
        self.max_elements = max_elements

    def setup(self, context: RunContext) -> None:
        self.probe = Probe(context.model.named_parameters(), self.max_elements)
        self.columns = [*self.probe.columns, "grad_norm/total"]
        small = sum(p.numel() for _, p in self.probe.small)
        large = len(self.probe.large)
        # Where the gradients are in the probe's row: the small tensors' elements, then the large
        # tensors' norms. Their L2 norm together is the norm of every gradient element.
        self._grads = slice(small, 2 * small)
        self._grad_norms = slice(2 * small + large, 2 * small + 2 * large)

    def measure(self, view: StepView) -> Row:
        values = self.probe.read()  # a fresh list, laid out as probe.columns
        if not self.probe.all_finite(view.loss_value, values):
            self._fail(view, values)
        values.append(math.hypot(*values[self._grads], *values[self._grad_norms]))
        return Row(self.columns, values)

    def _fail(self, view: StepView, values: list[float]) -> NoReturn:
        bad = {"loss": view.loss_value} if not math.isfinite(view.loss_value) else {}
        bad.update(self.probe.nonfinite(values))
        shown = ", ".join(f"{name} = {value}" for name, value in list(bad.items())[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise NonFiniteError(
            f"step {view.step}: non-finite value before the optimiser step: {shown}{more}. "
            f"The steps before it are logged; a smaller optim.lr may help."
        )
