"""loss/val and each metric's <name>/val: on every validation sample (data.val_fraction or
data.val_path), at steps 0, every_steps, 2 * every_steps, ... with the same parameters as that
step's loss, and once more after the last update. Computed without gradients and in eval mode,
the model's mode restored after: training goes on exactly as without it. Only where there are
validation samples, and only on rank 0 of a distributed run."""

from __future__ import annotations

import logging
from typing import Optional

from gradtrace.components.models import evaluating
from gradtrace.training.instruments import RunContext, StepView

log = logging.getLogger(__name__)


class Validation:
    tag_prefix = ""
    tags_under = ()  # loss/val and <metric>/val, which the run knows

    def setup(self, context: RunContext) -> bool:
        if context.val_data is None or not context.is_main:
            return False
        self.model, self.loss_fn, self.metrics = context.model, context.loss_fn, context.metrics
        self.inputs = context.val_data.inputs.to(context.device)
        self.targets = context.val_data.targets.to(context.device)
        return True

    def evaluate(self) -> dict[str, float]:
        with evaluating(self.model):
            preds = self.model(self.inputs)
            out = {"loss/val": float(self.loss_fn(preds, self.targets).item())}
            for name, metric in self.metrics.items():
                out[f"{name}/val"] = float(metric(preds, self.targets))
        return out

    def measure(self, view: StepView) -> dict[str, float]:
        return self.evaluate()

    def finish(self, view: StepView) -> Optional[dict[str, float]]:
        if view.interrupted:
            return None
        out = self.evaluate()  # the trained model: after the last update
        log.info("step %d  validation %s", view.step,
                 "  ".join(f"{tag.split('/')[0]} {value:.6g}" for tag, value in out.items()))
        return out
