"""Hydra composes gradtrace's config about 0.3 s a time: a run composes it once, a grid sweep
once a job (plus once for the sweep), and what Hydra's two extra compositions were for still
holds: a config that sets hydra.mode, and a bad job caught before the first job runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_dirs, scalars

pytestmark = pytest.mark.slow  # every test here starts processes

# `gradtrace ARGS` in a fresh process that prints how often Hydra composed a config, at exit.
COUNTING = """
import atexit, sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl
calls = []
compose = ConfigLoaderImpl.load_configuration
def counted(self, *args, **kwargs):
    calls.append(1)
    return compose(self, *args, **kwargs)
ConfigLoaderImpl.load_configuration = counted
atexit.register(lambda: print(f"compositions: {len(calls)}"))
from gradtrace.commands import main
sys.argv = ["gradtrace", *sys.argv[1:]]
main()
"""


def counted(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess, int]:
    result = subprocess.run([sys.executable, "-c", COUNTING, *args], cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    line = next(line for line in result.stdout.splitlines() if line.startswith("compositions:"))
    return result, int(line.split()[1])


def test_a_run_composes_its_config_once(tmp_path: Path):
    result, compositions = counted(tmp_path, "train", "trainer.steps=2")
    assert result.returncode == 0, result.stderr
    assert compositions == 1  # Hydra's own: 2 (one only to read hydra.mode)
    assert len(run_dirs(tmp_path)) == 1


def test_a_grid_sweep_composes_each_job_once(tmp_path: Path):
    result, compositions = counted(tmp_path, "train", "-m", "optim.lr=0.001,0.01,0.1",
                                   "trainer.steps=3")
    assert result.returncode == 0, result.stderr
    assert compositions == 1 + 3  # the sweep's, then one a job (Hydra's: 2 + 2 a job)
    runs = run_dirs(tmp_path)
    assert len(runs) == 3
    for run, lr in zip(runs, (0.001, 0.01, 0.1)):  # each job got its own config
        assert scalars(run)["param/w"][1][1] == pytest.approx(3 - lr * 6)  # w - lr 2w, w = 3


def test_a_bad_job_stops_the_sweep_before_the_first_job(tmp_path: Path):
    result, _ = counted(tmp_path, "train", "-m", "model=scalar,nosuch", "trainer.steps=3")
    assert result.returncode != 0
    assert "model/nosuch" in result.stderr
    assert run_dirs(tmp_path) == []  # not even job 0, which alone was fine


def test_a_config_of_ones_own_may_still_make_a_sweep_of_a_run(tmp_path: Path):
    # A user's experiment that sets hydra.mode=MULTIRUN sweeps without -m, as Hydra's probe of
    # the mode finds: it runs when configs of the user's own come in.
    experiment = tmp_path / "mine" / "experiment"
    experiment.mkdir(parents=True)
    (experiment / "lrs.yaml").write_text(
        "# @package _global_\nhydra:\n  mode: MULTIRUN\n  sweeper:\n    params:\n"
        "      optim.lr: 0.01,0.1\ntrainer:\n  steps: 2\n")
    result, _ = counted(tmp_path, "train", "--config-dir", str(tmp_path / "mine"),
                        "experiment=lrs")
    assert result.returncode == 0, result.stderr
    assert [run.name.split("_")[0] for run in run_dirs(tmp_path)] == ["0", "1"]
    # and so does hydra.mode on the command line
    result, _ = counted(tmp_path / "mine", "train", "hydra.mode=MULTIRUN", "optim.lr=0.01,0.1",
                        "trainer.steps=2")
    assert result.returncode == 0, result.stderr
    assert len(run_dirs(tmp_path / "mine")) == 2
