"""Long runs in the sweep summary: the loss curve it reads is what TensorBoard reads, and
summary.png draws long curves as the envelope of their points: nothing a plot could show is lost,
spikes included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradtrace.loggers.tensorboard import TensorBoardLogger
from gradtrace.sweeps.plots import envelope, loss_curve

from conftest import event_accumulator


@pytest.mark.slow  # a long run: 20,000 steps
def test_the_summary_reads_a_long_runs_loss_curve_as_tensorboard_does(tmp_path: Path) -> None:
    """20,000 steps written by the real logger (steps whose varints take 1, 2 and 3 bytes),
    a validation loss every 1000 steps in between, read back by the summary's reader and by
    TensorBoard's."""
    steps = 20_000
    logger = TensorBoardLogger(str(tmp_path), flush_every_secs=5.0)
    losses = (1.0 + np.cos(np.arange(steps) / 300.0)) * np.exp(-np.arange(steps) / 5000.0)
    for step in range(steps):
        logger.log_scalars(step, {"loss/train": float(losses[step]), "optim/lr": 0.1,
                                  "param/w": float(step), "grad/w": -float(step)})
        if step % 1000 == 0:
            logger.log_scalars(step, {"loss/val": float(losses[step]) / 2})
    logger.close()
    accumulator = event_accumulator(tmp_path)
    for tag in ("loss/train", "loss/val"):
        expected = [(e.step, e.value) for e in accumulator.Scalars(tag)]
        got_steps, got_values = loss_curve(tmp_path, tag)
        assert list(zip(got_steps.tolist(), got_values.tolist())) == expected, tag
    assert len(expected) == 20 and len(got_steps) == 20
    assert loss_curve(tmp_path)[0].tolist() == list(range(steps))


def test_a_long_curve_keeps_each_runs_lowest_and_highest_point_in_order() -> None:
    steps = np.arange(100_000)
    values = np.exp(-steps / 20_000.0)
    values[31_337] = 1e30  # one spike, as a diverging step
    values[77_000] = np.nan  # and a NaN, which a plot leaves out
    kept_steps, kept_values = envelope(steps, values, buckets=1000)
    assert len(kept_steps) <= 2000
    assert (np.diff(kept_steps) > 0).all()
    assert 31_337 in kept_steps.tolist()
    assert np.nanmax(kept_values) == 1e30
    assert kept_values[0] == values[0] and kept_steps[-1] == 99_999  # both ends
    # Each of the 1000 runs of 100 steps is represented by its extremes.
    for run in range(0, 100_000, 100):
        inside = (kept_steps >= run) & (kept_steps < run + 100)
        part = values[run : run + 100]
        assert kept_values[inside].max() == np.nanmax(part)
        assert kept_values[inside].min() == np.nanmin(part)


def test_a_short_curve_is_drawn_whole() -> None:
    steps, values = np.arange(1500), np.random.default_rng(0).random(1500)
    kept_steps, kept_values = envelope(steps, values, buckets=1000)
    assert kept_steps is steps and kept_values is values
