"""The README's commands for data files and validation run as written (in a fresh folder), and
do what the text around them says."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, TRAIN_SCRIPT, run_dirs, scalars

pytestmark = pytest.mark.slow  # every test here starts processes


def section_commands(title: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    start = text.index(f"## {title}\n")
    section = text[start : text.index("\n## ", start + 1)]
    blocks = re.findall(r"```\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("python ")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("readme")


def run(folder: Path, command: str) -> subprocess.CompletedProcess:
    argv = shlex.split(command)
    assert argv[0] == "python"
    argv[0] = sys.executable
    if argv[1] == "scripts/train.py":
        argv[1] = str(TRAIN_SCRIPT)
    return subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=300)


def test_data_from_files_as_written(folder: Path):
    commands = section_commands("Data from files")
    assert len(commands) == 3
    for command in commands:
        done = run(folder, command)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
    x = np.loadtxt(folder / "my.csv", delimiter=",", skiprows=1)
    assert x.shape == (200, 4)
    np.testing.assert_allclose(x[:, 3], x[:, :3] @ [1.5, -2.0, 0.5] + 0.3)
    first, second = run_dirs(folder)
    # 500 steps of gradient descent recover the numbers the file was made with.
    learnt = json.loads((first / "result.json").read_text())
    assert learnt["final_loss"] < 1e-6
    text = (first / "train.log").read_text()
    printed = {name: [float(v) for v in re.search(rf"- {name} = (.*)$", text, re.M).group(1)
                      .split(", ")] for name in ("weight", "bias")}
    # Float32 gradient descent, 500 steps: within 1e-3 of the numbers the file was made with.
    np.testing.assert_allclose(printed["weight"], [1.5, -2.0, 0.5], atol=1e-3)
    np.testing.assert_allclose(printed["bias"], [0.3], atol=1e-3)
    assert "param/weight[0,1]" in scalars(second) and "param/weight[0,2]" not in scalars(second)


def test_validation_as_written(folder: Path):
    # Uses my_val.csv, which the first command of "Data from files" wrote into the same folder.
    if not (folder / "my_val.csv").exists():
        run(folder, section_commands("Data from files")[0])
    commands = [c for c in section_commands("Validation") if " -m " not in c]  # no sweep here
    assert len(commands) == 2
    for command in commands:
        before = set(run_dirs(folder))
        done = run(folder, command)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        (new,) = set(run_dirs(folder)) - before
        series = scalars(new)
        assert [s for s, _ in series["loss/val"]] == [0, 100]  # every 100 steps and at the end
        assert json.loads((new / "result.json").read_text())["val_loss"] == pytest.approx(
            series["loss/val"][-1][1]
        )


def test_the_first_sweep_completes_as_the_readme_says(folder: Path):
    text = (REPO / "README.md").read_text()
    start = text.index("## Running experiments\n")
    block = text[start : text.index("\n## ", start + 1)]
    (command,) = [line.split("  #")[0].strip() for line in block.splitlines()
                  if line.startswith("python scripts/train.py -m ")]
    done = run(folder, command)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "6 jobs: 6 completed, 0 failed" in done.stdout + done.stderr
