"""A sweep in which some jobs fail: the others finish, every failure is recorded, the sweep exits
non-zero, and one command completes the sweep in place.

The linear example (one sample x = [1, 2, 3], target 5, MSE) has a hand-derivable error: with
e = w.x + b - y and |(x, 1)|^2 = 15, one SGD step gives e' = (1 - 30 lr) e. So lr=0.005 and 0.01
converge (factors 0.85, 0.7), lr=2 diverges (factor -59) and stops on Inf within 20 steps, and
lr=-1 is refused before step 0.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gradtrace.sweeps.callback import SweepSummary
from gradtrace.sweeps.jobs import find_jobs
from gradtrace.sweeps.rerun import rerun_command

from conftest import REPO, run_cli
from sweep_helpers import (
    job_results,
    only_sweep_dir,
    run_script,
    summary_rows,
)

STEPS = 20
SWEEP = ("-m", "model=linear", f"trainer.steps={STEPS}", "optim.lr=0.005,0.01,-1,2")


@pytest.fixture(scope="module")
def failed_sweep(tmp_path_factory: pytest.TempPathFactory):
    """(cwd, completed process, sweep folder) of the sweep above, run once for this module."""
    cwd = tmp_path_factory.mktemp("failed_sweep")
    result = run_cli(cwd, *SWEEP)
    return cwd, result, only_sweep_dir(cwd)


@pytest.mark.slow
def test_the_sweep_runs_every_job_and_exits_1(failed_sweep):
    _, result, sweep_dir = failed_sweep
    assert result.returncode == 1, result.stderr
    assert len(list(sweep_dir.glob("*/.hydra"))) == 4
    output = result.stdout + result.stderr
    assert "4 jobs: 2 completed, 2 failed" in output
    assert f"gradtrace rerun-failed {sweep_dir.relative_to(failed_sweep[0])}" in output
    recorded = json.loads((sweep_dir / "jobs.json").read_text())  # the job list, from the start
    assert recorded["jobs"] == [["model=linear", f"trainer.steps={STEPS}", f"optim.lr={lr}"]
                                for lr in ("0.005", "0.01", "-1", "2")]


@pytest.mark.slow
def test_each_job_records_its_status_in_its_folder(failed_sweep):
    _, _, sweep_dir = failed_sweep
    results = job_results(sweep_dir)
    assert {lr: r["status"] for lr, r in results.items()} == {
        "0.005": "completed", "0.01": "completed", "-1": "failed", "2": "failed",
    }
    assert results["-1"]["error"] == "optim.lr must be a number > 0 and <= 3.4e38 (float32), got -1"
    assert "non-finite value before the optimiser step" in results["2"]["error"]
    for lr in ("0.005", "0.01"):
        assert results[lr]["steps"] == STEPS and results[lr]["seconds"] > 0
    # Hand derivation: loss_k = e0^2 (1 - 30 lr)^(2k), the same e0 (same seed) in both jobs.
    ratio = results["0.005"]["final_loss"] / results["0.01"]["final_loss"]
    assert ratio == pytest.approx((0.85 / 0.7) ** (2 * (STEPS - 1)), rel=1e-2)


@pytest.mark.slow
def test_summary_is_sorted_names_the_best_and_lists_the_failures(failed_sweep):
    _, _, sweep_dir = failed_sweep
    rows = summary_rows(sweep_dir)
    assert [row["optim.lr"] for row in rows] == ["0.01", "0.005", "-1", "2"]
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4"]
    assert rows[0]["status"] == "completed" and rows[0]["steps"] == str(STEPS)
    assert float(rows[0]["final_loss"]) < float(rows[1]["final_loss"])
    assert rows[2]["status"] == "failed: optim.lr must be a number > 0 and <= 3.4e38 (float32), got -1"
    assert rows[3]["status"].startswith("failed: step ")
    markdown = (sweep_dir / "summary.md").read_text()
    assert markdown.splitlines()[2].startswith("**Best: job 1 (model=linear trainer.steps=20 optim.lr=0.01)")
    assert "gradtrace rerun-failed" in markdown
    # Each job to run again, into its own folder.
    assert "model=linear trainer.steps=20 optim.lr=-1 'hydra.run.dir=" in markdown
    assert (sweep_dir / "summary.png").stat().st_size > 10_000


@pytest.mark.slow
def test_rerun_failed_completes_the_sweep_in_place(failed_sweep, tmp_path: Path):
    source_cwd, _, source_sweep = failed_sweep
    sweep_dir = tmp_path / source_sweep.relative_to(source_cwd)
    shutil.copytree(source_sweep, sweep_dir)
    # A job killed before it finished leaves no result.json: it is unfinished.
    killed = next(sweep_dir.glob("0_*"))
    (killed / "result.json").unlink()
    before = {p.name for p in sweep_dir.iterdir()}

    dry = run_script(tmp_path, "rerun_failed.py", str(sweep_dir), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "3 job(s) to run again: 0 (unfinished), 2 (failed), 3 (failed)" in dry.stdout
    assert f"model=linear trainer.steps=20 optim.lr=0.005 'hydra.run.dir='\"'\"'{killed}" in dry.stdout
    assert not (killed / "result.json").exists()  # nothing ran

    rerun = run_script(tmp_path, "rerun_failed.py", str(sweep_dir))
    assert rerun.returncode == 1, rerun.stderr  # -1 and 2 fail again, as they must
    assert {p.name for p in sweep_dir.iterdir()} == before  # the same folders, no new sweep
    statuses = {lr: r["status"] for lr, r in job_results(sweep_dir).items()}
    assert statuses == {"0.005": "completed", "0.01": "completed", "-1": "failed",
                        "2": "failed"}
    assert "4 jobs: 2 completed, 2 failed" in rerun.stdout


@pytest.mark.slow
def test_summarize_on_demand_rewrites_the_summary(failed_sweep, tmp_path: Path):
    _, _, source_sweep = failed_sweep
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(source_sweep, sweep_dir)
    for name in ("summary.csv", "summary.md", "summary.png"):
        (sweep_dir / name).unlink()
    result = run_script(tmp_path, "summarize.py", str(sweep_dir))
    assert result.returncode == 1  # a job failed
    assert result.stdout.startswith("# Sweep sweep")
    assert [row["optim.lr"] for row in summary_rows(sweep_dir)] == ["0.01", "0.005", "-1", "2"]
    assert (sweep_dir / "summary.png").is_file()


@pytest.mark.slow
def test_summarize_refuses_a_folder_without_jobs(tmp_path: Path):
    result = run_script(tmp_path, "summarize.py", str(tmp_path))
    assert result.returncode == 2
    assert "holds no sweep jobs (folders with .hydra/overrides.yaml)" in result.stderr


@pytest.mark.slow
def test_a_single_run_still_exits_with_its_code_and_writes_result_json(tmp_path: Path):
    result = run_cli(tmp_path, "model=linear", "optim.lr=2", f"trainer.steps={STEPS}")
    assert result.returncode == 3
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    recorded = json.loads((run_dir / "result.json").read_text())
    assert recorded["status"] == "failed" and "non-finite" in recorded["error"]


@pytest.mark.slow
def test_a_sweep_into_another_sweeps_folder_is_refused(failed_sweep, tmp_path: Path):
    _, _, sweep_dir = failed_sweep
    before = sorted(p.name for p in sweep_dir.iterdir())
    result = run_cli(tmp_path, "-m", f"hydra.sweep.dir={sweep_dir}", "optim.lr=0.1,0.2")
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if "already holds" in line]  # one line
    assert line.endswith(f"hydra.sweep.dir={sweep_dir} already holds another sweep's jobs: pick "
                         f"another folder (each start gets its own by default); to complete that "
                         f"sweep, run gradtrace rerun-failed {sweep_dir}")
    assert sorted(p.name for p in sweep_dir.iterdir()) == before  # nothing of it touched


def test_a_summary_that_fails_fails_the_sweep(tmp_path: Path, caplog):
    job = tmp_path / "0_optim.lr=1"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- optim.lr=1\n")
    (tmp_path / "summary.csv").mkdir()  # where the summary must go: a folder, so writing fails
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    with pytest.raises(SystemExit) as stopped:
        SweepSummary(plot=False).on_multirun_end(config)
    assert stopped.value.code == 1
    assert f"could not write the sweep summary of {tmp_path}: IsADirectoryError" in caplog.text


@pytest.mark.slow
def test_reruns_use_the_installed_gradtrace_not_a_script_named_in_the_sweep(failed_sweep,
                                                                            tmp_path: Path):
    _, _, source_sweep = failed_sweep
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(source_sweep, sweep_dir)
    for hydra_file in sweep_dir.glob("*/.hydra/hydra.yaml"):  # as if run from another checkout
        hydra_file.write_text(hydra_file.read_text().replace(str(REPO), "/elsewhere/gradtrace"))
    commands = [rerun_command(job) for job in find_jobs(sweep_dir) if not job.completed]
    assert commands and all(argv[1:4] == ["-m", "gradtrace", "train"] for argv in commands)
    assert not any("/elsewhere" in arg for argv in commands for arg in argv)


@pytest.mark.slow
def test_a_diverging_job_does_not_flatten_the_good_curves(failed_sweep):
    from matplotlib.figure import Figure

    from gradtrace.sweeps.jobs import ranked
    from gradtrace.sweeps.plots import _plot_curves, loss_curve

    _, _, sweep_dir = failed_sweep
    jobs = ranked(find_jobs(sweep_dir))
    diverged = next(job for job in jobs if job.override_values()["optim.lr"] == "2")
    assert loss_curve(diverged.folder)[1].max() > 1e30  # lr=2 blows up before its NaN stop
    axes = Figure().add_subplot()
    _plot_curves(axes, jobs, ["optim.lr"])
    good = [loss_curve(job.folder)[1] for job in jobs if job.completed]
    low, high = axes.get_ylim()
    assert high < 10 * max(v.max() for v in good) and low <= min(v.min() for v in good)
