"""<name>/train for each of the run's metrics (config key `metrics`; accuracy by default for a
classification loss): on the step's training batch, from the predictions the loss was computed
from, on the logged steps. Off when the run has no metric. (The same metrics on the validation
samples, <name>/val, come from the validation instrument.)"""

from __future__ import annotations

from gradtrace.training.instruments import RunContext, StepView


class Metrics:
    tag_prefix = ""  # accuracy/train, not metrics/accuracy/train
    tags_under = ()  # the run's <metric>/train, which the run knows

    def setup(self, context: RunContext) -> bool:
        self.metrics = {f"{name}/train": metric for name, metric in context.metrics.items()}
        return bool(self.metrics) and context.is_main  # rank 0 logs, on its shard of the batch

    def measure(self, view: StepView) -> dict[str, float]:
        preds = view.preds.detach()
        return {tag: float(metric(preds, view.targets)) for tag, metric in self.metrics.items()}
