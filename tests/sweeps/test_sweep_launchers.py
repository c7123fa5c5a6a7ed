"""The same sweep through each plugin: joblib (parallel), optuna (search), submitit (cluster, its
local twin run here). Each ends with the same summary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import CONFIGS
from sweep_helpers import job_results, only_sweep_dir, run_script, summary_rows

pytestmark = pytest.mark.slow  # every test here starts processes


STEPS = 5


def test_joblib_runs_jobs_in_parallel_without_oversubscribing(cli, tmp_path: Path):
    result = cli("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model=linear",
                 f"trainer.steps={STEPS}", "optim.lr=0.005,0.01,-1")
    assert result.returncode == 1, result.stderr  # lr=-1 fails; the others finish
    sweep_dir = only_sweep_dir(tmp_path)
    results = job_results(sweep_dir)
    assert {lr: r["status"] for lr, r in results.items()} == {
        "0.005": "completed", "0.01": "completed", "-1": "failed",
    }
    cores = len(os.sched_getaffinity(0))
    for lr in ("0.005", "0.01"):
        assert results[lr]["threads"] == max(1, cores // 2)  # 2 jobs x threads <= cores
    assert [row["optim.lr"] for row in summary_rows(sweep_dir)] == ["0.01", "0.005", "-1"]
    assert (sweep_dir / "summary.png").is_file()
    dry = run_script(tmp_path, "rerun_failed.py", str(sweep_dir), "--dry-run")
    # The failed job runs again as one run in its own folder: no launcher, no new sweep.
    assert "model=linear trainer.steps=5 optim.lr=-1 'hydra.run.dir=" in dry.stdout
    assert "hydra/launcher" not in dry.stdout and "hydra.launcher" not in dry.stdout


def test_optuna_searches_the_learning_rate_and_the_summary_ranks_the_trials(cli, tmp_path: Path):
    result = cli("-m", "hydra/sweeper=optuna_lr", "hydra.sweeper.n_trials=3", "logger=none",
                 f"trainer.steps={STEPS}")
    assert result.returncode == 0, result.stderr
    sweep_dir = only_sweep_dir(tmp_path)
    rows = summary_rows(sweep_dir)
    assert len(rows) == 3 and all(row["status"] == "completed" for row in rows)
    assert all(1e-4 <= float(row["optim.lr"]) <= 1.0 for row in rows)  # the search interval
    # What the sweeper minimised is the final loss train.py returned: its best is our rank 1.
    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert best.best_value == pytest.approx(float(rows[0]["final_loss"]), rel=1e-5)
    assert best.best_params["optim.lr"] == pytest.approx(float(rows[0]["optim.lr"]))


def test_submitit_local_runs_the_cluster_path_on_this_machine(cli, tmp_path: Path):
    result = cli("-m", "hydra/launcher=slurm_local", f"trainer.steps={STEPS}", "optim.lr=0.1,0.2")
    assert result.returncode == 0, result.stderr
    sweep_dir = only_sweep_dir(tmp_path)
    assert (sweep_dir / ".submitit").is_dir()  # the jobs went through submitit
    assert [row["optim.lr"] for row in summary_rows(sweep_dir)] == ["0.2", "0.1"]
    assert all(r["threads"] == 1 for r in job_results(sweep_dir).values())  # cpus_per_task


def _hydra_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True).hydra


def test_slurm_launcher_config_composes():
    launcher = _hydra_config("hydra/launcher=slurm", "hydra.launcher.partition=cpu").launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.cpus_per_task, launcher.timeout_min) == ("cpu", 2, 60)


def test_optuna_optimiser_search_config_composes():
    sweeper = _hydra_config("hydra/sweeper=optuna_optim").sweeper
    assert sweeper.params == {"optim": "choice(sgd, adam, manual)",
                              "optim.lr": "tag(log, interval(0.0001, 1.0))"}
    # direction null: the sweeper takes it from objective.mode (min: minimize)
    assert sweeper.direction is None and sweeper._target_.endswith("GradtraceOptunaSweeper")
