"""Helpers for the sweep tests: run the real CLI and scripts, find what a sweep wrote."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"


def run_script(cwd: Path, script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run scripts/<script> from `cwd`, so that outputs/ lands there."""
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sweep_dirs(cwd: Path) -> list[Path]:
    return sorted((cwd / "outputs" / "multirun").iterdir())


def only_sweep_dir(cwd: Path) -> Path:
    dirs = sweep_dirs(cwd)
    assert len(dirs) == 1, dirs
    return dirs[0]


def job_results(sweep_dir: Path) -> dict[str, dict]:
    """result.json of every job, by its optim.lr override (or folder name)."""
    out = {}
    for path in sweep_dir.glob("*/result.json"):
        name = path.parent.name
        lr = [part for part in name.split(",") if "optim.lr=" in part]
        out[lr[0].split("optim.lr=")[1] if lr else name] = json.loads(path.read_text())
    return out


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as file:
        return list(csv.DictReader(file))
