
"""gradtrace's Optuna sweeper: the study is stored in the sweep folder, a failed trial is recorded
as failed, and a search killed with kill -9 resumes with its finished trials."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from conftest import TRAIN_SCRIPT
from sweep_helpers import job_results, kill_9_when

pytestmark = pytest.mark.slow  # every test here starts processes

# The linear example diverges for lr > 2/30 (its error is multiplied by 1 - 30 lr each step), so
# a search over [1e-3, 1] has failing trials (the NaN stop after at most a few hundred steps).
SEARCH = ["-m", "hydra/sweeper=optuna_lr", "model=linear", "trainer.steps=300", "logger=none",
          "landscape.enabled=false", "hydra.sweeper.n_jobs=1", "hydra.sweeper.n_trials=8",
          "hydra.sweeper.params={optim.lr: 'tag(log, interval(0.001, 1.0))'}"]


def trials(sweep_dir: Path) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
    return optuna.load_study(study_name="lr", storage=storage).get_trials()


def test_a_killed_search_resumes_with_its_trials_and_failed_ones_are_failed(tmp_path: Path):
    sweep_dir = tmp_path / "search"
    argv = [sys.executable, str(TRAIN_SCRIPT), *SEARCH, f"hydra.sweep.dir={sweep_dir}"]
    kill_9_when(argv, tmp_path, lambda: sweep_dir.exists() and len(job_results(sweep_dir)) >= 3)
    before = {t.number: (t.state, t.params, t.value) for t in trials(sweep_dir)
              if t.state.is_finished()}
    assert len(before) >= 2

    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert f"continuing the search stored in {sweep_dir / 'optuna.db'}" in output
    assert "resuming the search" in output
    after = trials(sweep_dir)
    # n_trials in all, the killed start's included; the trial the kill cut short is FAIL.
    assert len(after) == 8 and all(t.state.is_finished() for t in after)
    # The finished trials of the killed start are kept as they were.
    for number, (state, params, value) in before.items():
        assert (after[number].state, after[number].params, after[number].value) == (
            state, params, value)
    # Failed trials (NaN stop: result.json says failed) are FAIL in the study, never a value.
    for trial in after:
        folder = next(sweep_dir.glob(f"{trial.number}_*"), None)
        if folder is None or not (folder / "result.json").exists():
            continue
        status = OmegaConf.load(folder / "result.json").status
        expected = "COMPLETE" if status == "completed" else "FAIL"
        assert trial.state.name == expected, (trial.number, status)
    assert any(t.state == optuna.trial.TrialState.FAIL for t in after)  # lr > 2/30 was tried
    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    complete = [t for t in after if t.state == optuna.trial.TrialState.COMPLETE]
    assert best.best_value == min(t.value for t in complete)
