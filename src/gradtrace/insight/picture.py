"""Draws a LandscapeData as a PNG: the curve or the contours, the path in order, start and end,
and a known optimum.

Matplotlib's object API on the Agg canvas only: no pyplot, so no global figure state and no
display needed. The path's Line2D carries gid="trajectory": its data are the plotted points.
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import numpy as np
from matplotlib import patheffects, ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from gradtrace.insight.landscape import LandscapeData

log = logging.getLogger(__name__)
OUTLINE = [patheffects.withStroke(linewidth=2.6, foreground="black")]  # white path, any colour


def draw(data: LandscapeData) -> tuple[Figure, bytes]:
    """The figure and its PNG bytes."""
    # Fixed margins, room below for the legend: a layout engine would find the same for these
    # few elements, at 60 ms a picture (the cost of a short run's whole training).
    figure = Figure(figsize=(7.5, 6.2), dpi=100)
    figure.subplots_adjust(left=0.1, right=0.99, bottom=0.2, top=0.9)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    (_draw_curve if data.kind == "curve" else _draw_slice)(figure, axes, data)
    # Below the plot: inside, it could hide the end of the path.
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return figure, buffer.getvalue()


def _loss_label(data: LandscapeData) -> str:
    if data.samples < data.total_samples:
        samples = f"{data.samples:,} random of {data.total_samples:,} samples"
    else:
        samples = "the 1 sample" if data.samples == 1 else f"all {data.samples:,} samples"
    return f"loss ({data.loss_name}, {samples})"


def _path_label(data: LandscapeData) -> str:
    steps = data.steps
    gap = steps[1] - steps[0] if len(steps) > 1 else 1
    every = f", every {gap} steps" if gap > 1 else ""
    return f"path: {len(steps)} logged steps in order{every}"


def _draw_curve(figure: Figure, axes, data: LandscapeData) -> None:
    x = data.points[:, 0]
    axes.plot(data.grid[0], data.losses, color="0.35", linewidth=1.6, label=_loss_label(data))
    axes.plot(x, data.point_losses, color="0.6", linewidth=0.8, zorder=2, gid="trajectory",
              label=_path_label(data))
    dots = axes.scatter(x, data.point_losses, c=data.steps, cmap="viridis", s=18, zorder=3)
    figure.colorbar(dots, ax=axes, label="step")
    _start_and_end(axes, data, (x[0], data.point_losses[0]), (data.final[0], data.final_loss))
    axes.set_xlabel(data.axes[0])
    axes.set_ylabel(_loss_label(data))
    axes.set_title(f"Loss along {data.axes[0]}, and the points the optimiser visited")


def _draw_slice(figure: Figure, axes, data: LandscapeData) -> None:
    losses = data.losses
    low, high = float(losses.min()), float(losses.max())
    ticks: ticker.Locator = ticker.MaxNLocator(8)  # round numbers, not the contour levels
    if low > 0 and high / low > 100:  # a bowl spanning decades: log-spaced contours
        levels, norm = np.geomspace(low, high, 30), LogNorm(low, high)
        ticks = ticker.LogLocator()
    else:
        levels, norm = np.linspace(low, high if high > low else low + 1.0, 30), None
    filled = axes.contourf(data.grid[0], data.grid[1], losses, levels=levels, norm=norm,
                           cmap="viridis")
    axes.contour(data.grid[0], data.grid[1], losses, levels=levels[::3], norm=norm,
                 colors="white", linewidths=0.4, alpha=0.5)
    figure.colorbar(filled, ax=axes, label=_loss_label(data), ticks=ticks)
    x, y = data.points[:, 0], data.points[:, 1]
    # A marker on at most about 250 of the points: thousands would only blur into the line, and
    # cost a long run's picture 0.1 s (the line itself goes through every point).
    axes.plot(x, y, color="white", linewidth=1.3, marker="o", markersize=2.5, gid="trajectory",
              markevery=max(1, len(x) // 250), path_effects=OUTLINE, label=_path_label(data))
    _start_and_end(axes, data, (x[0], y[0]), tuple(data.final))
    if data.directions == "random":
        axes.set_xlabel("direction 1: random, normalised per parameter tensor (a)")
        axes.set_ylabel("direction 2: random, normalised per parameter tensor (b)")
        where = "theta_final + a d1 + b d2"
    else:
        axes.set_xlabel(data.axes[0])
        axes.set_ylabel(data.axes[1])
        where = "the other elements at their final values" if data.off_slice else "every element"
    title = f"Loss on a 2-D slice through the final parameters ({where})"
    if data.off_slice > 1e-9:
        title += (f"\npath projected onto the slice: it lies up to {data.off_slice:.0%} of "
                  f"|start - end| off it")
    axes.set_title(title, fontsize=10)


def _start_and_end(axes, data: LandscapeData, start: tuple, end: tuple) -> None:
    # The losses at the real points: off a slice, the contours under them may differ.
    axes.plot(*start, "o", markersize=11, markerfacecolor="none", markeredgecolor="limegreen",
              markeredgewidth=2.5, zorder=4,
              label=f"start (step {data.steps[0]}): loss {data.point_losses[0]:.4g}")
    axes.plot(*end, "*", markersize=16, color="red", markeredgecolor="black", zorder=5,
              label=f"end (after the last step): loss {data.final_loss:.4g}")
    if data.optimum is not None:
        where = data.optimum.tolist() if data.kind == "slice" else [data.optimum[0],
                                                                   data.optimum_loss]
        at = ", ".join(f"{v:.4g}" for v in data.optimum)
        axes.plot(*where, "X", markersize=12, color="white", markeredgecolor="black", zorder=4,
                  gid="optimum", label=f"optimum x* = ({at}): loss {data.optimum_loss:.4g}")


def save_landscape(data: LandscapeData, run_dir: str | Path) -> tuple[Figure, bytes]:
    """Draw `data`, write it to <run_dir>/landscape.png; the figure and the PNG bytes."""
    start = time.perf_counter()
    figure, png = draw(data)
    path = Path(run_dir) / "landscape.png"
    path.write_bytes(png)
    grid = "x".join(str(len(g)) for g in data.grid)
    log.info(
        "landscape: %s losses in %.2f s, drawn in %.2f s: %s",
        grid, data.seconds, time.perf_counter() - start, path,
    )
    return figure, png
