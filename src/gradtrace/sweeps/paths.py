"""summary_paths.png: every job's optimiser path on one contour picture, labelled by what differs
between the jobs (e.g. optim=sgd, optim=momentum, optim=adam on Rosenbrock).

Drawn when the jobs' landscapes (each job's landscape.npz, gradtrace.insight.landscape) are all
2-D pictures of every parameter element over the same two axes, and the jobs do not differ in
their model, data, loss or experiment (nor in their seed, unless the model is an analytic
objective without data): then each picture's contour is the same function, the true loss, and
the one with the widest grid is drawn under every path. Any other sweep gets no such picture.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from gradtrace.atomic import write_atomically
from gradtrace.sweeps.jobs import Job, swept_keys

if TYPE_CHECKING:  # matplotlib is imported when a picture is drawn
    from matplotlib.figure import Figure

ARRAYS = "landscape.npz"  # gradtrace.insight.landscape.ARRAYS, without importing torch
PICTURE = "summary_paths.png"
# Jobs that differ in these draw different functions (an experiment patches the model); so do
# jobs of different seeds unless the function has no data (an analytic objective, with an x*).
SAME_FUNCTION = ("model", "data", "loss", "experiment")
PATHS_MAX = 12  # more paths than this blur into each other: the best ones are drawn


@dataclass
class Path2D:
    job: Job
    axes: list[str]
    grid_x: np.ndarray  # [R]
    grid_y: np.ndarray  # [R]
    losses: np.ndarray  # [R, R], rows along y
    points: np.ndarray  # [K, 2] the path
    final: np.ndarray  # [2] after the last step
    optimum: Optional[np.ndarray]  # [2] a known minimiser, or None

    @property
    def area(self) -> float:
        return float(np.ptp(self.grid_x) * np.ptp(self.grid_y))


def _load(job: Job) -> Optional[Path2D]:
    try:
        with np.load(job.folder / ARRAYS) as f:
            if str(f["kind"]) != "slice" or str(f["directions"]) != "element" \
                    or int(f["elements"]) != 2 or float(f["off_slice"]) > 0:
                return None
            optimum = f["optimum"]
            return Path2D(job, [str(a) for a in f["axes"]], f["grid_x"], f["grid_y"],
                          f["losses"], f["points"], f["final"],
                          optimum if len(optimum) == 2 else None)
    except (OSError, KeyError, ValueError):  # no picture (a failed job, a large model)
        return None


def shared_paths(jobs: list[Job]) -> Optional[list[Path2D]]:
    """Every job's 2-D path when they can share one contour (see above); None otherwise."""
    keys = swept_keys(jobs)
    if len(jobs) < 2 or any(k.split(".")[0].split("@")[0] in SAME_FUNCTION for k in keys):
        return None
    paths = [_load(job) for job in jobs]
    found = [p for p in paths if p is not None]
    if len(found) < 2 or len({tuple(p.axes) for p in found}) != 1:
        return None
    if "seed" in keys and any(p.optimum is None for p in found):
        return None  # the seed drew each job's data: each contour is another function
    return found


def plot_paths(jobs: list[Job], path: Path, title: str) -> Optional[Path]:
    """Draw summary_paths.png for jobs given best first; None when they share no contour."""
    paths = shared_paths(jobs)
    if paths is None:
        return None
    figure = draw_paths(paths, swept_keys(jobs), title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return write_atomically(path, buffer.getvalue())


def draw_paths(paths: list[Path2D], keys: list[str], title: str) -> Figure:
    """The figure: the widest grid's contour, each path (Line2D gid "path <job>") labelled by
    the values of `keys`, where each ended, the start and a known optimum."""
    from matplotlib import colormaps, patheffects, ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    base = max(paths, key=lambda p: p.area)  # the widest grid: the same function everywhere
    figure = Figure(figsize=(8, 6.5))
    figure.subplots_adjust(left=0.1, right=0.97, bottom=0.09, top=0.94)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    losses = base.losses
    low, high = float(np.nanmin(losses)), float(np.nanmax(losses))
    ticks: ticker.Locator = ticker.MaxNLocator(8)
    if low > 0 and high / low > 100:  # a valley spanning decades: log-spaced contours
        levels, norm = np.geomspace(low, high, 30), LogNorm(low, high)
        ticks = ticker.LogLocator()
    else:
        levels, norm = np.linspace(low, high if high > low else low + 1.0, 30), None
    filled = ax.contourf(base.grid_x, base.grid_y, losses, levels=levels, norm=norm,
                         cmap="Greys_r", alpha=0.8)
    figure.colorbar(filled, ax=ax, label="loss", ticks=ticks)
    colors = colormaps["tab10"](np.arange(PATHS_MAX) % 10)
    outline = [patheffects.withStroke(linewidth=3, foreground="black")]
    for color, p in zip(colors, paths[:PATHS_MAX]):
        values = p.job.override_values()
        label = " ".join(f"{k}={values.get(k, '-')}" for k in keys) or p.job.label
        ax.plot(p.points[:, 0], p.points[:, 1], color=color, linewidth=1.8, path_effects=outline,
                gid=f"path {p.job.num}", label=f"#{p.job.num} {label}")
        ax.plot(*p.final, "*", markersize=13, color=color, markeredgecolor="black")
    ax.plot(*paths[0].points[0], "o", markersize=11, markerfacecolor="none",
            markeredgecolor="limegreen", markeredgewidth=2.5, label="start")
    if base.optimum is not None:
        ax.plot(*base.optimum, "X", markersize=12, color="white", markeredgecolor="black",
                gid="optimum", label=f"optimum ({base.optimum[0]:.4g}, {base.optimum[1]:.4g})")
    # The widest grid and every path: a path may leave the grid it was drawn on.
    xs = np.concatenate([base.grid_x, *(p.points[:, 0] for p in paths)])
    ys = np.concatenate([base.grid_y, *(p.points[:, 1] for p in paths)])
    ax.set_xlim(xs.min(), xs.max())
    ax.set_ylim(ys.min(), ys.max())
    ax.set_xlabel(base.axes[0])
    ax.set_ylabel(base.axes[1])
    ax.set_title(f"{title}: each job's path (stars: where each ended)", fontsize=10, y=1.0)
    ax.legend(fontsize="small", loc="best")
    return figure
