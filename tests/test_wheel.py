"""gradtrace as a user installs it: a wheel built from this checkout, installed into a fresh
virtual environment, run from an empty folder far from the repository. It trains, sweeps,
summarises, resumes and reruns, and takes the user's own config folder and package.

The fresh environment gets gradtrace from the wheel alone; its dependencies (torch, Hydra, ...)
come from the test's own environment through a path file, so that nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gradtrace.loggers.reading import read_scalars

from conftest import REPO

pytestmark = pytest.mark.slow  # builds a wheel and starts processes
LINEAR = ["model=linear", "model.weight=[[0.5,0.5,0.5]]", "model.bias=[-0.5]"]


class Installed:
    """A fresh environment with the wheel installed, and an empty folder to work in."""

    def __init__(self, root: Path) -> None:
        wheels = root / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                        "--no-build-isolation", "-w", str(wheels), str(REPO)], check=True,
                       capture_output=True, timeout=300)
        (wheel,) = wheels.glob("gradtrace-*.whl")
        self.venv = root / "venv"
        python = str(self.venv / "bin" / "python")
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True, timeout=300)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                        str(wheel)], check=True, capture_output=True, timeout=300)
        site = Path(subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True).stdout.strip())
        # Dependencies from here, after the new environment's own packages: a path line adds the
        # folder, and no .pth file in it (this checkout's editable install) is run.
        (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        self.work = root / "work"
        self.work.mkdir()

    def run(self, *argv: str, module: bool = False) -> subprocess.CompletedProcess:
        command = ([str(self.venv / "bin" / "python"), "-m", "gradtrace", *argv] if module
                   else [str(self.venv / "bin" / "gradtrace"), *argv])
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        return subprocess.run(command, cwd=self.work, capture_output=True, text=True,
                              timeout=300, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return Installed(tmp_path_factory.mktemp("installed"))


def runs(folder: Path) -> list[Path]:
    return sorted(p.parent for p in folder.rglob(".hydra"))


def test_the_package_comes_from_the_wheel_not_the_checkout(installed: Installed):
    done = subprocess.run([str(installed.venv / "bin" / "python"), "-c",
                           "import gradtrace, gradtrace.configs; print(gradtrace.__file__); "
                           "print(gradtrace.configs.__file__)"],
                          cwd=installed.work, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for line in done.stdout.split():
        assert Path(line).is_relative_to(installed.venv) and not Path(line).is_relative_to(REPO)
    done = installed.run("--help")
    assert done.returncode == 0
    assert all(command in done.stdout for command in ("train", "summarize", "resume",
                                                      "rerun-failed"))


def test_train_writes_outputs_in_the_folder_it_runs_from(installed: Installed):
    done = installed.run("train", *LINEAR, "trainer.steps=3", "hydra.run.dir=outputs/linear")
    assert done.returncode == 0, done.stderr
    run = installed.work / "outputs" / "linear"
    assert json.loads((run / "result.json").read_text())["status"] == "completed"
    # The linear example: x = [1, 2, 3], target 5; w = 0.5 each and b = -0.5 predict 2.5, so the
    # squared error is (2.5 - 5)**2 = 6.25 and the gradients 2 (2.5 - 5) x = [-5, -10, -15], -5.
    series = read_scalars(run)
    assert series["loss/train"].values[0] == 6.25
    assert [series[f"grad/weight[0,{i}]"].values[0] for i in range(3)] == [-5.0, -10.0, -15.0]
    assert series["grad/bias[0]"].values[0] == -5.0
    assert (run / "landscape.png").is_file() and (run / "train.log").is_file()


def test_python_dash_m_gradtrace_is_the_same_command(installed: Installed):
    done = installed.run("train", *LINEAR, "trainer.steps=3", "hydra.run.dir=outputs/m",
                         module=True)
    assert done.returncode == 0, done.stderr
    ours = read_scalars(installed.work / "outputs" / "m")["loss/train"].values
    assert ours.tolist() == read_scalars(installed.work / "outputs" / "linear")["loss/train"].values.tolist()


def test_a_sweep_and_its_summary(installed: Installed):
    done = installed.run("train", "-m", "model=linear", "trainer.steps=3", "optim.lr=0.01,0.05",
                         "hydra.sweep.dir=outputs/sweep")
    assert done.returncode == 0, done.stderr
    sweep = installed.work / "outputs" / "sweep"
    assert len(runs(sweep)) == 2
    assert {"summary.csv", "summary.md", "summary.png"} <= {p.name for p in sweep.iterdir()}
    (sweep / "summary.md").unlink()
    done = installed.run("summarize", str(sweep))
    assert done.returncode == 0, done.stderr
    assert (sweep / "summary.md").read_text() == done.stdout


def test_resume_trains_on_bitwise_as_one_longer_run(installed: Installed):
    common = ["model=regressor", "data.batch_size=100", "landscape.enabled=false"]
    assert installed.run("train", *common, "trainer.steps=30", "hydra.run.dir=outputs/long").returncode == 0
    assert installed.run("train", *common, "trainer.steps=20", "hydra.run.dir=outputs/short").returncode == 0
    done = installed.run("resume", "outputs/short", "trainer.steps=30")
    assert done.returncode == 0, done.stderr
    assert "-m gradtrace train" in done.stdout  # the installed gradtrace resumes it
    short, long = (read_scalars(installed.work / "outputs" / name) for name in ("short", "long"))
    assert short["loss/train"].steps.tolist() == list(range(30))
    assert np.array_equal(short["loss/train"].values, long["loss/train"].values)
    assert np.array_equal(short["grad_norm/total"].values, long["grad_norm/total"].values)


def test_rerun_failed_completes_a_sweep(installed: Installed):
    (installed.work / "a.csv").write_text("x,y\n1,2\n2,4\n3,6\n")
    done = installed.run("train", "-m", "model=linear", "data=file", "data.target=y",
                         "data.path=a.csv,b.csv", "trainer.steps=3", "landscape.enabled=false",
                         "hydra.sweep.dir=outputs/files")
    assert done.returncode == 1  # b.csv does not exist yet: that job failed
    (installed.work / "b.csv").write_text("x,y\n1,3\n2,6\n")
    done = installed.run("rerun-failed", "outputs/files")
    assert done.returncode == 0, done.stdout + done.stderr
    statuses = [json.loads((run / "result.json").read_text())["status"]
                for run in runs(installed.work / "outputs" / "files")]
    assert statuses == ["completed", "completed"]


def test_a_users_config_folder_and_instrument_from_their_own_package(installed: Installed):
    (installed.work / "conf" / "instruments").mkdir(parents=True)
    (installed.work / "conf" / "instruments" / "watch.yaml").write_text(textwrap.dedent("""
        watch:
          _target_: mylab.watch.Watch
          every_steps: 2
    """))
    (installed.work / "mylab").mkdir()
    (installed.work / "mylab" / "__init__.py").write_text("")
    (installed.work / "mylab" / "watch.py").write_text(textwrap.dedent("""
        class Watch:
            def measure(self, view):
                return {"w": view.model.w.item(), "grad": view.model.w.grad.item()}
    """))
    done = installed.run("train", "--config-dir", "conf", "instruments=[elements,watch]",
                         "trainer.steps=5", "optim.lr=0.1", "hydra.run.dir=outputs/watched")
    assert done.returncode == 0, done.stderr
    series = read_scalars(installed.work / "outputs" / "watched")
    assert series["watch/w"].steps.tolist() == [0, 2, 4]
    # The scalar example: w0 = 3 and w[k+1] = (1 - 2 lr) w[k]; dL/dw = 2 w.
    assert series["watch/w"].values == pytest.approx([3.0, 3 * 0.8**2, 3 * 0.8**4], rel=1e-6)
    assert series["watch/grad"].values == pytest.approx(2 * series["watch/w"].values, rel=1e-6)
    costs = json.loads((installed.work / "outputs" / "watched" / "result.json").read_text())
    assert costs["instruments"]["watch"]["calls"] == 3
