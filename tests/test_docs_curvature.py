"""The curvature page's commands (analytic objectives, the theory as tests, lessons as presets, the
edge of stability) run as written, through the real `gradtrace` command in a fresh folder, and do
what the text around them says. Apart from the other task pages' tests: a file's tests run on one
worker (pytest --dist loadfile), and these are long."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from gradtrace.sweeps.jobs import find_jobs
from gradtrace.sweeps.jobs import ranked as ranked_jobs
from gradtrace.sweeps.paths import draw_paths, shared_paths

from conftest import run_dirs, scalars
from test_docs import code_lines
from test_docs_tasks import GUIDE, gradtrace, run_one

pytestmark = pytest.mark.slow  # every test here starts processes

CURVATURE = GUIDE / "curvature.md"


def test_the_curvature_commands_as_written(tmp_path: Path):
    (quadratic,) = code_lines(CURVATURE, "## Analytic objectives", "gradtrace ")
    folder, _ = run_one(tmp_path, quadratic)
    series = scalars(folder)
    np.testing.assert_allclose([v for _, v in series["sharpness/top"]], 10.0, rtol=1e-5)
    np.testing.assert_allclose([v for _, v in series["hessian_trace/estimate"]], 11.0, rtol=1e-6)
    np.testing.assert_allclose([v for _, v in series["sharpness/threshold"]], 2 / 0.15, rtol=1e-6)
    x0 = [v for _, v in series["param/x[0]"]]
    x1 = [v for _, v in series["param/x[1]"]]
    np.testing.assert_allclose(x0, [0.85 ** k for k in range(40)], rtol=1e-5)
    np.testing.assert_allclose(x1, [(-0.5) ** k for k in range(40)], rtol=1e-5, atol=1e-30)
    assert (folder / "landscape.png").exists()  # two coordinates: the true contour

    (diverging,) = code_lines(CURVATURE, "## The theory as tests", "gradtrace ")
    done = gradtrace(tmp_path, diverging)
    assert done.returncode == 3 and "non-finite value before the optimiser step" in done.stderr
    assert "Traceback" not in done.stderr
    # the page: "the one line naming the step and the threshold"
    assert "above sharpness/threshold 28.57): lr 0.07 > 2/lambda = 0.06667" in done.stderr
    (run,) = [d for d in run_dirs(tmp_path) if d != folder]
    series = scalars(run)
    assert series["sharpness/top"][0][1] == pytest.approx(30, rel=1e-5)
    assert series["sharpness/threshold"][0][1] == pytest.approx(2 / 0.07, rel=1e-6)


def test_the_lessons_as_written(tmp_path: Path):
    heavy, plain, sweep = code_lines(CURVATURE, "## Lessons as presets", "gradtrace ")
    folder, _ = run_one(tmp_path, heavy)
    x = [v for _, v in scalars(folder)["param/x[0]"]]
    assert abs(x[-1]) < 1e-3  # |x| ~ 0.949^k
    folder, _ = run_one(tmp_path, plain)
    x = [v for _, v in scalars(folder)["param/x[0]"]]
    assert x[-1] == pytest.approx(0.99 ** 199, rel=1e-5)  # logged at step 199: before update 200
    done = gradtrace(tmp_path, sweep)
    assert done.returncode == 0, done.stderr[-2000:]
    (folder,) = (tmp_path / "outputs" / "multirun").iterdir()
    with (folder / "summary.csv").open() as file:
        ranked = [row["overrides"].split()[0] for row in csv.DictReader(file)]
    assert ranked == ["optim=momentum", "optim=sgd", "optim=adam"]
    # "whose paths the summary draws on one picture": each line is that job's logged path
    assert (folder / "summary_paths.png").exists()
    assert "![every job's path](summary_paths.png)" in (folder / "summary.md").read_text()
    jobs = ranked_jobs(find_jobs(folder))
    figure = draw_paths(shared_paths(jobs), ["optim"], folder.name)
    lines = {line.get_gid(): line for line in figure.axes[0].lines}
    for job in jobs:
        line = lines[f"path {job.num}"]
        assert line.get_label() == f"#{job.num} {job.overrides[0]}"
        series = scalars(job.folder)
        logged = [[x for _, x in series["param/x[0]"]], [y for _, y in series["param/x[1]"]]]
        np.testing.assert_allclose(np.array(line.get_data()), logged, rtol=1e-6)
    assert list(lines["optimum"].get_data()) == [[1.0], [1.0]]  # Rosenbrock's (a, a^2), a = 1


def test_the_edge_of_stability_as_written(tmp_path: Path):
    (command,) = code_lines(CURVATURE, "## The edge of stability", "gradtrace ")
    folder, result = run_one(tmp_path, command)
    assert result["train_seconds"] < 180  # the bound; about 15 s on this machine
    series = scalars(folder)
    threshold = series["sharpness/threshold"][0][1]
    assert threshold == pytest.approx(2 / 0.1)  # 2/lr, plain gradient descent
    steps = [step for step, _ in series["sharpness/top"]]
    ratio = np.array([value for _, value in series["sharpness/top"]]) / threshold
    assert steps[:3] == [0, 100, 200] and len(ratio) == 60
    # Cohen et al.'s picture: it starts well below 2/lr ...
    assert ratio[0] < 0.7
    # ... rises (progressive sharpening: each logged value at least the one before, to 1%) until
    # it reaches 2/lr ...
    reached = int(np.argmax(ratio >= 1.0))
    assert ratio[reached] >= 1.0 and reached > 5
    assert np.all(ratio[1:reached + 1] >= 0.99 * ratio[:reached])
    # ... then hovers at it: the median over the last third of the logged values near 1, and no
    # value after it far from 2/lr (a run above it diverges on a quadratic).
    last_third = ratio[2 * len(ratio) // 3:]
    assert 0.85 <= np.median(last_third) <= 1.25
    assert np.all((ratio[reached:] > 0.75) & (ratio[reached:] < 1.4))
    # The loss keeps falling at the edge, though not monotonically.
    loss = np.array([value for _, value in series["loss/train"]])
    at_edge = loss[steps[reached]:]
    assert at_edge[-1] < 0.9 * at_edge[0]
    assert np.any(np.diff(at_edge) > 0)
    assert result["final_loss"] == pytest.approx(loss[-1])
