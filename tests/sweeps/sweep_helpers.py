"""Helpers for the sweep tests: run the real CLI and scripts, find what a sweep wrote."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

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


def kill_9_when(argv: list[str], cwd: Path, ready: Callable[[], bool]) -> None:
    """Run argv in its own process group; once `ready()`, kill -9 the group (the process and any
    workers it started), and check nothing of it is left running."""
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert process.poll() is None, "it ended before it could be killed"
            assert time.monotonic() < deadline, "not ready in 120 s"
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the group's last members may take a moment to go
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes of group {process.pid} still run after kill -9")
