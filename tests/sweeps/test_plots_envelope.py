"""summary.png draws long curves as the envelope of their points: nothing a plot could show is
lost, spikes included."""

from __future__ import annotations

import numpy as np

from gradtrace.sweeps.plots import envelope


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
