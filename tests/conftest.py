"""Shared helpers: compose the real configs, run the real CLI, read event files back."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gradtrace.setup.build import Run, build_run
from gradtrace.setup.plan import make_plan
from gradtrace.setup.resolvers import register

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
TRAIN_SCRIPT = REPO / "scripts" / "train.py"

register()
# Where the runs that tests build but do not train may write (a landscape picture, if trained).
BUILD_DIR = tempfile.TemporaryDirectory(prefix="gradtrace-tests-")


@pytest.fixture(autouse=True)
def _quick_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """The quick tier (pytest -m "not slow") is in-process: a test that starts a process (the
    CLI, torchrun, tensorboard) must carry @pytest.mark.slow, and this makes it say so."""
    if request.node.get_closest_marker("slow") is not None:
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"{request.node.nodeid} starts a process: mark it @pytest.mark.slow")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


def compose_config(*overrides: str) -> DictConfig:
    """The config `python scripts/train.py OVERRIDES` would run with."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def compose_config_from(config_dir: Path, *overrides: str) -> DictConfig:
    """The config `python scripts/train.py --config-dir CONFIG_DIR OVERRIDES` would run with."""
    return compose_config(f"hydra.searchpath=[file://{config_dir}]", *overrides)


def build(*overrides: str) -> Run:
    """What `python scripts/train.py OVERRIDES` builds before its first step."""
    return build_run(make_plan(compose_config(*overrides)), BUILD_DIR.name)


def run_cli(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run scripts/train.py in a subprocess from `cwd`, so its outputs/ lands there."""
    return subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_gradtrace(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The `gradtrace` command (python -m gradtrace ARGS) in a subprocess from `cwd`."""
    return subprocess.run([sys.executable, "-m", "gradtrace", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def run_dirs(cwd: Path) -> list[Path]:
    """Every run folder under cwd/outputs (single runs and sweep jobs)."""
    return sorted(p.parent for p in (cwd / "outputs").rglob(".hydra"))


def event_accumulator(run_dir: Path) -> EventAccumulator:
    """TensorBoard's own reader, keeping every point."""
    accumulator = EventAccumulator(
        str(run_dir), size_guidance={"scalars": 0, "tensors": 0, "histograms": 0, "images": 0}
    )
    accumulator.Reload()
    return accumulator


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series of a run: tag -> [(step, value), ...]."""
    accumulator = event_accumulator(run_dir)
    return {
        tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
        for tag in accumulator.Tags()["scalars"]
    }


@pytest.fixture
def cli(tmp_path: Path):
    """`cli(*args)` runs the real CLI inside tmp_path."""
    return lambda *args, **kw: run_cli(tmp_path, *args, **kw)
