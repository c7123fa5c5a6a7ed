"""The loss around the optimiser's path, on the run's training samples, in float64.

One parameter element in the model: the curve L(w) over a range that covers the trajectory.
More: L on a 2-D slice through the final parameters theta_T, along two directions d1, d2:

    named   two parameter elements (landscape.axes, or the only two there are): the axes are those
            elements' values, every other element stays at its final value, and a trajectory
            point's position is its two elements' logged values;
    random  two random directions, each normalised per parameter tensor to that tensor's norm (Li
            et al. 2018, "Visualizing the loss landscape of neural nets"): the point
            theta_T + a d1 + b d2 sits at (a, b), and the trajectory is projected onto the slice by
            least squares (how far it lies off the slice is reported).

The range covers the trajectory and the final point, plus `margin` of its extent on each side.
Cost: `resolution` (1-D) or `resolution`**2 (2-D) loss evaluations on the samples, vectorised
with torch.func.vmap in chunks of about 2**23 input elements, so memory is bounded too. With more
than `max_samples` training samples, the losses are those of a seeded random subset of that many
(the picture says so): the cost stays bounded whatever the data's size.
"""

from __future__ import annotations

import copy
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from gradtrace.atomic import write_atomically
from gradtrace.errors import ConfigError
from gradtrace.insight.gradcheck import double
from gradtrace.insight.trajectory import Trajectory
from gradtrace.training.probe import element_names

# Input elements (points x samples x features) per vectorised batch of loss evaluations: a model's
# first layer makes a float64 intermediate about that size, 64 MB here.
CHUNK_ELEMENTS = 2**23


@dataclass
class LandscapeData:
    """What the picture shows; every array is float64 numpy."""

    kind: str  # "curve" (one parameter element) or "slice" (2-D)
    axes: list[str]  # axis labels: element names, or "direction 1", "direction 2"
    directions: str  # "element" or "random"
    grid: list[np.ndarray]  # one coordinate vector [R] per axis
    losses: np.ndarray  # curve [R]; slice [R, R], indexed [i along axis 2, i along axis 1]
    steps: np.ndarray  # [K] the logged steps of the trajectory points
    params: np.ndarray  # [K, P] the trajectory: parameter elements as logged
    points: np.ndarray  # [K, 1 or 2] where the trajectory is drawn, in axis coordinates
    point_losses: np.ndarray  # [K] the loss on all samples at each trajectory point
    final: np.ndarray  # [1 or 2] where the final parameters (after the last step) are drawn
    final_loss: float
    off_slice: float  # largest distance of a trajectory point from the slice / |theta_0 - theta_T|
    samples: int  # the samples the losses are computed on
    total_samples: int  # the training samples there are (more when a subset is used)
    loss_name: str
    seconds: float  # to compute all of this
    # [1 or 2] where a known minimiser is drawn (an analytic objective's x*), and its loss
    optimum: Optional[np.ndarray] = None
    optimum_loss: float = float("nan")


ARRAYS = "landscape.npz"  # in the run folder, beside landscape.png: what a sweep's summary reads


def save_arrays(data: LandscapeData, run_dir: str | Path) -> Path:
    """The picture's numbers as <run_dir>/landscape.npz, for a sweep's summary to draw every
    job's path on one contour (gradtrace.sweeps.paths): numpy only, no torch to read it."""
    buffer = io.BytesIO()
    np.savez(buffer, kind=data.kind, directions=data.directions, axes=np.array(data.axes),
             grid_x=data.grid[0], grid_y=data.grid[-1], losses=data.losses, points=data.points,
             steps=data.steps, final=data.final, elements=data.params.shape[1],
             off_slice=data.off_slice,
             optimum=np.zeros(0) if data.optimum is None else data.optimum)
    return write_atomically(Path(run_dir) / ARRAYS, buffer.getvalue())


class Landscape:
    """Computes the loss landscape of a run; built when landscape.enabled and every parameter
    element is logged (tensors of at most trainer.log_elements_max elements)."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        inputs: torch.Tensor,
        targets: torch.Tensor,
        *,
        resolution: int,
        axes: Optional[list[str]],
        margin: float,
        seed: int,
        max_samples: int,
        optimum: Optional[torch.Tensor] = None,
    ) -> None:
        """optimum: a known minimiser, every parameter element flat (an analytic objective's
        x*): marked on the picture, which then covers it too, when the axes are elements."""
        self.model = model
        self.optimum = None if optimum is None else optimum.detach().double().reshape(-1).cpu()
        self.loss_fn = loss_fn
        self.total_samples = len(targets)
        if len(targets) > max_samples:  # a seeded random subset: bounded time and memory
            index = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed))
            index = index[:max_samples].sort().values.to(targets.device)
            inputs, targets = inputs[index], targets[index]
        self.inputs, self.targets = inputs, targets  # [N, D], [N]
        self.resolution = resolution
        self.margin = margin
        self.seed = seed
        self.names = [
            n for name, p in _trainable(model) for n in element_names(name, p.shape)
        ]  # the order of the Probe's param/ columns
        if axes is not None:
            unknown = [a for a in axes if a not in self.names]
            if len(axes) != 2 or axes[0] == axes[1] or unknown:
                raise ConfigError(
                    f"landscape.axes must be null or two different parameter elements of the "
                    f"model ({', '.join(self.names[:8])}{', ...' if len(self.names) > 8 else ''}), "
                    f"got {list(axes)}"
                )
        self.axes = axes

    def compute(self, trajectory: Trajectory) -> LandscapeData:
        start = time.perf_counter()
        losses_at = _loss_function(self.model, self.loss_fn, self.inputs, self.targets)
        final = _flat_params(self.model)  # [P] theta_T, after the last step
        params = torch.from_numpy(trajectory.params())  # [K, P] as logged
        if len(self.names) == 1:
            directions, axes, kind = None, list(self.names), "element"
        elif self.axes is not None or len(self.names) == 2:
            axes = self.axes or list(self.names)
            directions, kind = None, "element"
        else:
            directions = self._random_directions()  # [2, P]
            axes, kind = ["direction 1", "direction 2"], "random"

        # Positions of the trajectory and the final point, in axis coordinates.
        if directions is None:
            index = [self.names.index(a) for a in axes]
            points, final_point = params[:, index], final[index]
            residual = params - final  # [K, P]; off the slice: the other elements' differences
            residual[:, index] = 0.0
        else:
            basis = directions.T  # [P, 2]
            points = torch.linalg.lstsq(basis, (params - final).T).solution.T  # [K, 2]
            final_point = torch.zeros(2, dtype=torch.float64)
            residual = (params - final) - points @ directions  # [K, P] off the slice
        span = (params[0] - final).norm().item() if len(params) else 0.0
        off_slice = residual.norm(dim=1).max().item() / span if span > 0 else 0.0
        # x* on the picture: on element axes only (on random directions it lies off the slice).
        optimum, at_optimum = None, math.nan
        if directions is None and self.optimum is not None and len(self.optimum) == len(final):
            optimum = self.optimum[index]
            at_optimum = float(losses_at(self.optimum[None])[0])
        covered = points if optimum is None else torch.cat([points, optimum[None]])

        grid = [self._range(covered[:, i], final_point[i]) for i in range(len(axes))]
        if len(axes) == 1:
            lattice = final.repeat(len(grid[0]), 1)  # [R, 1]
            lattice[:, 0] = grid[0]
            losses = losses_at(lattice)
        else:
            b, a = torch.meshgrid(grid[1], grid[0], indexing="ij")  # [R, R]: rows follow axis 2
            if directions is None:
                lattice = final.repeat(a.numel(), 1)  # [R*R, P]
                lattice[:, index[0]] = a.reshape(-1)
                lattice[:, index[1]] = b.reshape(-1)
            else:
                a, b = a.reshape(-1, 1), b.reshape(-1, 1)
                lattice = final + a * directions[0] + b * directions[1]  # [R*R, P]
            losses = losses_at(lattice).reshape(len(grid[1]), len(grid[0]))
        point_losses = losses_at(params) if len(params) else torch.zeros(0, dtype=torch.float64)
        return LandscapeData(
            kind="curve" if len(axes) == 1 else "slice",
            axes=axes,
            directions=kind,
            grid=[g.numpy() for g in grid],
            losses=losses.numpy(),
            steps=trajectory.steps(),
            params=params.numpy(),
            points=points.numpy(),
            point_losses=point_losses.numpy(),
            final=final_point.numpy(),
            final_loss=float(losses_at(final[None])[0]),
            off_slice=off_slice,
            samples=len(self.targets),
            total_samples=self.total_samples,
            loss_name=type(self.loss_fn).__name__,
            seconds=time.perf_counter() - start,
            optimum=None if optimum is None else optimum.numpy(),
            optimum_loss=at_optimum,
        )

    def _random_directions(self) -> torch.Tensor:
        """[2, P]: Gaussian directions, each scaled per parameter tensor to that tensor's norm."""
        generator = torch.Generator().manual_seed(self.seed)
        rows = []
        for _ in range(2):
            parts = []
            for _, p in _trainable(self.model):
                d = torch.randn(p.numel(), generator=generator, dtype=torch.float64)
                norm = p.detach().double().norm().item()
                parts.append(d * (norm if norm > 0 else 1.0) / d.norm())  # a zero tensor: unit
            rows.append(torch.cat(parts))
        return torch.stack(rows)

    def _range(self, coords: torch.Tensor, final: torch.Tensor) -> torch.Tensor:
        """`resolution` points covering the trajectory and the final point, with a margin."""
        values = torch.cat([coords.reshape(-1), final.reshape(1)])
        low, high = values.min().item(), values.max().item()
        extent = high - low
        if extent == 0:  # nothing moved along this axis: show a unit (or 50 %) around it
            extent = max(abs(low), 1.0)
        pad = self.margin * extent
        return torch.linspace(low - pad, high + pad, self.resolution, dtype=torch.float64)


def _loss_function(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """points [G, P] (float64, flat parameter vectors) -> the loss on all samples at each [G]."""
    model64, loss64 = copy.deepcopy(model).double(), double(loss_fn)
    x, y = inputs.double(), double(targets)
    shapes = [(name, p.shape, p.numel()) for name, p in _trainable(model64)]
    device = x.device

    def one(flat: torch.Tensor) -> torch.Tensor:
        params, offset = {}, 0
        for name, shape, numel in shapes:
            params[name] = flat[offset : offset + numel].reshape(shape)
            offset += numel
        return loss64(functional_call(model64, params, (x,)), y)

    def many(points: torch.Tensor) -> torch.Tensor:
        points = points.to(device)
        chunk = max(1, CHUNK_ELEMENTS // max(1, x.numel()))
        with torch.no_grad():
            try:
                out = [torch.vmap(one)(part) for part in points.split(chunk)]
            except (RuntimeError, NotImplementedError):  # a loss or model vmap cannot batch
                out = [torch.stack([one(p) for p in part]) for part in points.split(chunk)]
        return torch.cat(out).cpu()

    return many


def _flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().double().reshape(-1).cpu() for _, p in _trainable(model)])


def _trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]
