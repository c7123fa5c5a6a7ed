"""summary.png: every job's loss curve on one plot, and, when one numeric parameter was swept,
final loss against it (the classic learning-rate plot).

Curves are read back from each job's TensorBoard event file (`loss/train`), so a failed job's
curve shows up to the step it stopped at. Matplotlib is drawn without pyplot (no global state,
no display needed), imported only when a summary is drawn.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import numpy as np

from gradtrace.atomic import write_atomically
from gradtrace.loggers.reading import read_scalar
from gradtrace.sweeps.groups import SEED, Group
from gradtrace.sweeps.jobs import Job, numeric, swept_keys

LEGEND_MAX = 12  # label the best jobs (and every failed one) in the legend, up to this many
CURVE_BUCKETS = 1000  # a curve is drawn as the lowest and highest point of at most this many runs


def loss_curve(run_dir: Path, tag: str = "loss/train") -> tuple[np.ndarray, np.ndarray]:
    """Steps [N] and values [N] of `tag` in the run's event files; empty when it has none."""
    series = read_scalar(run_dir, tag)
    return series.steps, series.values


def envelope(
    steps: np.ndarray, values: np.ndarray, buckets: int = CURVE_BUCKETS
) -> tuple[np.ndarray, np.ndarray]:
    """The points of a curve that a plot can show: the lowest and the highest of each of
    `buckets` consecutive runs of points, in order (all of them when there are few). A plot a
    thousand pixels wide looks the same, spikes included, and a 100,000-step curve draws 50 times
    faster."""
    n = len(values)
    if n <= 2 * buckets:
        return steps, values
    size = -(-n // buckets)  # points per run, rounded up; the last run may be shorter
    padded = np.full(buckets * size, np.nan)
    padded[:n] = values
    rows = padded.reshape(buckets, size)
    missing = np.isnan(rows)
    start = np.arange(buckets) * size
    lowest = start + np.where(missing, np.inf, rows).argmin(1)
    highest = start + np.where(missing, -np.inf, rows).argmax(1)
    keep = np.unique(np.concatenate([lowest, highest]))
    keep = keep[keep < n]
    return steps[keep], values[keep]


def _set_scale(ax, axis: str, values: np.ndarray) -> bool:
    """A log axis where the values span more than a factor of 20; symlog if some are exactly 0
    (a loss that reached 0 in float32). Returns whether it chose a log scale."""
    values = values[np.isfinite(values)]
    positive = values[values > 0]
    if len(positive) < 2 or values.min() < 0 or positive.max() / positive.min() <= 20:
        return False
    set_scale = ax.set_yscale if axis == "y" else ax.set_xscale
    if (values == 0).any():
        set_scale("symlog", linthresh=max(positive.min(), positive.max() * 1e-12))
        (ax.set_ylim if axis == "y" else ax.set_xlim)(0, None)  # no empty negative half
    else:
        set_scale("log")
    return True


def plot_summary(ranked_jobs: list[Job], path: Path, title: str,
                 groups: Optional[list[Group]] = None) -> Path:
    """Draw summary.png for jobs given best first; with seed groups (best first), each group's
    mean curve and band instead of each job's curve."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = [k for k in swept_keys(ranked_jobs) if groups is None or k != SEED]
    if groups is None:
        values = [job.override_values().get(keys[0], "") for job in ranked_jobs] if keys else []
    else:
        values = [g.jobs[0].override_values().get(keys[0], "") for g in groups] if keys else []
    x = numeric(values) if len(keys) == 1 else None
    # Fixed margins: the constrained layout engine found about the same for these few elements,
    # at 1.3 s a summary of ten long curves.
    figure = Figure(figsize=(13 if x is not None else 8, 5))
    figure.subplots_adjust(left=0.08 if x is not None else 0.11, right=0.98, bottom=0.11,
                           top=0.86, wspace=0.22)
    FigureCanvasAgg(figure)
    figure.suptitle(title)
    axes = figure.subplots(1, 2 if x is not None else 1, squeeze=False)[0]
    if groups is None:
        _plot_curves(axes[0], ranked_jobs, keys)
        if x is not None:
            _plot_final_loss(axes[1], ranked_jobs, keys[0], np.array(x))
    else:
        _plot_bands(axes[0], groups)
        if x is not None:
            _plot_group_means(axes[1], groups, keys[0], np.array(x))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return write_atomically(path, buffer.getvalue())


def _label(job: Job, keys: list[str]) -> str:
    values = job.override_values()
    text = " ".join(f"{k}={values.get(k, '-')}" for k in keys) or job.label
    return f"#{job.num} {text}" + ("" if job.completed else f" ({job.status})")


def _plot_curves(ax, jobs: list[Job], keys: list[str]) -> None:
    from matplotlib import colormaps

    colors = colormaps["viridis"](np.linspace(0, 0.9, max(1, len(jobs))))
    all_values, completed_values = [], []
    labelled = 0
    for rank, job in enumerate(jobs):
        steps, values = envelope(*loss_curve(job.folder))
        if len(steps) == 0:
            continue
        all_values.append(values)
        if job.completed:
            completed_values.append(values)
        # Many jobs: name the best few and the failed ones, up to LEGEND_MAX lines.
        notable = len(jobs) <= LEGEND_MAX or rank < LEGEND_MAX // 2 or not job.completed
        show = notable and labelled < LEGEND_MAX
        labelled += show
        ax.plot(
            steps,
            values,
            color="tab:red" if not job.completed else colors[rank],
            linestyle="-" if job.completed else "--",
            linewidth=2.2 if rank == 0 else 1.2,
            label=_label(job, keys) if show else None,
        )
    ax.set_xlabel("step")
    ax.set_ylabel("loss/train")
    ax.set_title("loss curves (best first; dashed red: failed)", y=1.0)  # y: no auto-placement
    # The range of the completed jobs' curves: a diverging job (say up to 1e38) would otherwise
    # flatten every good curve into the bottom of the plot; its dashed line leaves the top.
    shown = completed_values or all_values
    if shown:
        values = np.concatenate(shown)
        log_scale = _set_scale(ax, "y", values)
        finite = values[np.isfinite(values)]
        if len(finite) and len(completed_values) < len(all_values):
            low, high = float(finite.min()), float(finite.max())
            if log_scale and low > 0:
                ax.set_ylim(low / 1.5, high * 1.5)
            else:
                pad = 0.05 * (high - low) or abs(high) * 0.05 or 1.0
                ax.set_ylim(low - pad, high + pad)
    if labelled:
        ax.legend(fontsize="small", loc="best")
    ax.grid(True, alpha=0.3)


def _plot_final_loss(ax, jobs: list[Job], key: str, x: np.ndarray) -> None:
    final = np.array([job.score for job in jobs])
    done = np.isfinite(final)
    order = np.argsort(x[done])
    ax.plot(x[done][order], final[done][order], "o-", color="tab:blue", label="completed")
    if done.any():
        sign = -1.0 if jobs[0].mode == "max" else 1.0  # the best is the highest for mode max
        best = int(np.argmin(np.where(done, sign * final, np.inf)))
        ax.plot(x[best], final[best], "*", markersize=16, color="tab:orange", label="best")
    log_x = _set_scale(ax, "x", x[done])
    _set_scale(ax, "y", final[done])
    failed_x = [xi for xi in x[~done] if xi > 0 or not log_x]
    for xi in failed_x:  # failed jobs have no final loss: a line where each one was
        ax.axvline(xi, color="tab:red", linestyle=":", alpha=0.8)
    if failed_x:
        ax.plot([], [], ":", color="tab:red", label="failed")
    ax.set_xlabel(key)
    objective = jobs[0].objective if jobs else "loss/final"
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} against {key}", y=1.0)
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)


def _plot_bands(ax, groups: list[Group]) -> None:
    """Each group's mean loss/train over its completed jobs, and a band of +- one sample std."""
    from matplotlib import colormaps

    colors = colormaps["viridis"](np.linspace(0, 0.9, max(1, len(groups))))
    shown = 0
    for rank, group in enumerate(groups):
        done = group.completed
        if not done:
            continue
        curve = group.band("loss/train")
        steps, mean = curve.steps, curve.mean
        spread = np.nan_to_num(curve.std, nan=0.0)
        label = f"group {group.number}: {group.label} (n={len(done)})" if shown < LEGEND_MAX \
            else None
        shown += 1
        ax.plot(steps, mean, color=colors[rank], linewidth=2.2 if rank == 0 else 1.4, label=label)
        ax.fill_between(steps, mean - spread, mean + spread, color=colors[rank], alpha=0.25,
                        linewidth=0, gid=f"band {group.number}")
        _set_scale(ax, "y", np.concatenate([mean - spread, mean + spread]))
    ax.set_xlabel("step")
    ax.set_ylabel("loss/train")
    ax.set_title("mean loss over seeds, band: +- 1 sample std (best group first)", y=1.0)
    if shown:
        ax.legend(fontsize="small", loc="best")
    ax.grid(True, alpha=0.3)


def _plot_group_means(ax, groups: list[Group], key: str, x: np.ndarray) -> None:
    """The groups' mean objective against the swept number, with their 95% intervals."""
    stats = [g.stats["objective"] for g in groups]
    mean = np.array([st.mean for st in stats])
    low = np.array([st.low for st in stats])
    high = np.array([st.high for st in stats])
    done = np.isfinite(mean)
    order = np.argsort(x[done])
    xs, ms = x[done][order], mean[done][order]
    errors = np.nan_to_num(np.vstack([ms - low[done][order], high[done][order] - ms]), nan=0.0)
    ax.errorbar(xs, ms, yerr=errors, fmt="o-", capsize=4, color="tab:blue",
                label="mean over seeds, 95% interval")
    _set_scale(ax, "x", xs)
    objective = groups[0].jobs[0].objective if groups else "loss/final"
    ax.set_xlabel(key)
    ax.set_ylabel(objective)
    ax.set_title(f"{objective} against {key}", y=1.0)
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
