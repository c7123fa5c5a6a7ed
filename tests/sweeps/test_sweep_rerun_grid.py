"""Which failed jobs one `-m` command can rerun: exactly those whose overrides form a grid."""

from __future__ import annotations

from gradtrace.sweeps.rerun import _as_grid


def test_jobs_that_differ_in_one_key_are_one_grid():
    sets = [["model=linear", "optim.lr=1"], ["model=linear", "optim.lr=2"]]
    assert _as_grid(sets) == ["model=linear", "optim.lr=1,2"]


def test_a_full_two_key_grid_is_one_grid():
    sets = [[f"optim={o}", f"optim.lr={lr}"] for o in ("sgd", "adam") for lr in ("1", "2")]
    assert _as_grid(sets) == ["optim=sgd,adam", "optim.lr=1,2"]


def test_a_partial_grid_is_not_a_grid():
    # (sgd, 1) and (adam, 2) alone: optim=sgd,adam optim.lr=1,2 would also run (sgd, 2), (adam, 1)
    assert _as_grid([["optim=sgd", "optim.lr=1"], ["optim=adam", "optim.lr=2"]]) is None


def test_list_values_and_different_keys_are_not_merged():
    assert _as_grid([["model.bias=[1,2]"], ["model.bias=[3,4]"]]) is None
    assert _as_grid([["optim.lr=1"], ["seed=2"]]) is None
