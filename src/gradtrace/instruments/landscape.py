"""landscape: the optimiser's path (every parameter element at each due step, kept in memory,
bounded) and, at the end, the loss around it, with an analytic objective's optimum marked:
landscape.png (and its numbers, landscape.npz) in the run folder and the image `landscape` in
TensorBoard (gradtrace.insight.landscape, .picture). Drawn when every parameter tensor has at
most `max_elements` elements, as for the worked examples; other runs skip it with a line saying
why. The keys: the `landscape` config group (gradtrace.setup.schema)."""

from __future__ import annotations

import logging
from typing import Any, Optional

import torch
from torch._utils import _flatten_dense_tensors

from gradtrace.insight.landscape import Landscape, save_arrays
from gradtrace.insight.trajectory import Trajectory
from gradtrace.instruments.optimum import known_optimum
from gradtrace.training.instruments import RunContext, StepView
from gradtrace.training.probe import element_names

log = logging.getLogger(__name__)


class LandscapePath:
    tag_prefix = ""
    tags_under = ()  # an image only

    def __init__(self, enabled: bool, max_elements: int, resolution: int,
                 axes: Optional[list[str]], margin: float, max_samples: int) -> None:
        self.enabled = enabled
        self.max_elements = max_elements
        self.resolution, self.axes, self.margin = resolution, axes, margin
        self.max_samples = max_samples

    def setup(self, context: RunContext) -> bool:
        if not self.enabled or not context.is_main:
            return False
        named = [(n, p) for n, p in context.model.named_parameters() if p.requires_grad]
        large = [n for n, p in named if p.numel() > self.max_elements]
        if large:
            log.info("landscape: skipped, as %s has more than trainer.log_elements_max=%d "
                     "elements (the picture draws every parameter element's path)",
                     ", ".join(large), self.max_elements)
            return False
        data = context.train_data
        self.landscape = Landscape(
            context.model, context.loss_fn, data.inputs.to(context.device),
            data.targets.to(context.device), resolution=self.resolution, axes=self.axes,
            margin=self.margin, seed=context.seed, max_samples=self.max_samples,
            optimum=_known_optimum(context.model),
        )
        self.params = [p.detach() for _, p in named]  # share memory: always current
        columns = [f"param/{e}" for n, p in named for e in element_names(n, p.shape)]
        self.trajectory = Trajectory(columns)
        self.run_dir = context.run_dir
        return True

    def measure(self, view: StepView) -> None:
        # Long runs keep every second, fourth, ... row (a bounded path): read only those.
        row = _flatten_dense_tensors(self.params).tolist() if self.trajectory.keeps_next() else None
        self.trajectory.record(view.step, row)

    def finish(self, view: StepView) -> Optional[dict[str, bytes]]:
        if view.interrupted:
            return None
        # Imported here: matplotlib takes about 0.5 s to import, paid only by runs that draw.
        from gradtrace.insight.picture import save_landscape

        self.data = self.landscape.compute(self.trajectory)  # kept, with the figure, to look at
        self.figure, png = save_landscape(self.data, self.run_dir)
        save_arrays(self.data, self.run_dir)
        return {"landscape": png}

    def state_dict(self) -> dict[str, Any]:
        return self.trajectory.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trajectory.load_state_dict(state)



def _known_optimum(model: torch.nn.Module) -> Optional[torch.Tensor]:
    """An analytic objective's minimiser x*, when x is its one parameter; None otherwise."""
    known = known_optimum(model)
    return known[1] if known is not None and len(list(model.parameters())) == 1 else None
