"""Seed groups, in process: the statistics against values worked by hand, the grouping, the
ranking by mean (either mode) and the overlap of intervals."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gradtrace.sweeps.groups import Stat, overlapping, seed_groups, t_quantile
from gradtrace.sweeps.jobs import Job
from gradtrace.sweeps.result import COMPLETED, FAILED, JobResult


def test_student_t_quantiles_against_their_closed_forms():
    # df = 1 is the Cauchy distribution: F^-1(p) = tan(pi (p - 1/2)). df = 2: F(t) = 1/2 +
    # t / (2 sqrt(2 + t^2)), so F^-1(p) = (2p - 1) sqrt(2 / (4 p (1 - p))).
    assert t_quantile(0.975, 1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-12)
    assert t_quantile(0.975, 2) == pytest.approx(0.95 * math.sqrt(2 / (4 * 0.975 * 0.025)),
                                                 rel=1e-12)
    # Many degrees of freedom: the normal quantile, 1.959963984540054 for 0.975
    assert t_quantile(0.975, 10**7) == pytest.approx(1.959963984540054, rel=1e-6)


def test_a_stat_of_three_values_by_hand():
    # [1, 2, 3]: mean 2; squared deviations 1 + 0 + 1 = 2 over n - 1 = 2: std 1; the interval's
    # half width t(0.975, 2) * 1 / sqrt(3) with t(0.975, 2) = 0.95 sqrt(2 / 0.0975) = 4.302653.
    stat = Stat.of([3.0, 1.0, 2.0])
    half = 0.95 * math.sqrt(2 / 0.0975) / math.sqrt(3)
    assert (stat.n, stat.mean, stat.std, stat.min, stat.max) == (3, 2.0, 1.0, 1.0, 3.0)
    assert stat.low == pytest.approx(2 - half, rel=1e-12)
    assert stat.high == pytest.approx(2 + half, rel=1e-12)


def test_one_value_has_no_spread_and_none_has_no_mean():
    one = Stat.of([5.0, math.nan])  # a NaN (a job that never logged it) does not count
    assert (one.n, one.mean, one.min, one.max) == (1, 5.0, 5.0, 5.0)
    assert math.isnan(one.std) and math.isnan(one.low) and not one.overlaps(one)
    none = Stat.of([])
    assert none.n == 0 and math.isnan(none.mean)


def job(num: int, lr: str, seed: int, value: float, *, status: str = COMPLETED,
        mode: str = "min") -> Job:
    result = JobResult(status, final_loss=value if status == COMPLETED else None,
                       objective="loss/final", mode=mode,
                       value=value if status == COMPLETED else None,
                       metrics={"accuracy/val": 1 - value} if status == COMPLETED else None)
    return Job(Path(f"/nowhere/{num}"), num, [f"optim.lr={lr}", f"seed={seed}"], result)


def test_jobs_that_differ_only_in_seed_form_a_group_ranked_by_mean():
    jobs = [job(0, "0.1", 0, 0.50), job(1, "0.1", 1, 0.70), job(2, "0.1", 2, 0.60),
            job(3, "0.01", 0, 0.20), job(4, "0.01", 1, 0.30),
            job(5, "0.01", 2, math.nan, status=FAILED)]
    groups = seed_groups(jobs, ["accuracy/val"])
    assert [g.label for g in groups] == ["optim.lr=0.01", "optim.lr=0.1"]  # mean 0.25 < 0.6
    best, other = groups
    assert [j.num for j in best.jobs] == [3, 4, 5] and best.seeds == ["0", "1", "2"]
    assert best.stats["objective"].n == 2  # the failed job is in the group, not in its numbers
    assert best.stats["objective"].mean == pytest.approx(0.25)
    assert best.stats["accuracy/val"].mean == pytest.approx(0.75)
    assert other.stats["final_loss"].std == pytest.approx(0.1)
    # 0.01: 0.25 +- t(0.975, 1) 0.0707 / sqrt 2 = 0.25 +- 0.635, which reaches 0.6: overlap
    assert overlapping(best, groups) == [other]


def test_mode_max_ranks_the_highest_mean_first_and_far_apart_groups_do_not_overlap():
    jobs = [job(n, lr, seed, value, mode="max") for n, (lr, seed, value) in enumerate(
        [("a", 0, 0.90), ("a", 1, 0.91), ("a", 2, 0.92), ("b", 0, 0.50), ("b", 1, 0.51),
         ("b", 2, 0.52)])]
    groups = seed_groups(jobs, [])
    assert [g.label for g in groups] == ["optim.lr=a", "optim.lr=b"]
    assert groups[0].number == 1 and overlapping(groups[0], groups) == []


def test_a_sweep_that_does_not_vary_the_seed_has_no_groups():
    assert seed_groups([job(0, "0.1", 0, 1.0), job(1, "0.2", 0, 2.0)], []) is None
