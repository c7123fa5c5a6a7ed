"""When a sweep's paths share one contour (summary_paths.png), on landscape.npz files written
here: the same two axes and the same function, or no picture."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from gradtrace.sweeps.jobs import Job
from gradtrace.sweeps.paths import draw_paths, shared_paths
from gradtrace.sweeps.result import COMPLETED, JobResult


def job(tmp_path: Path, num: int, overrides: list[str], *, optimum: Optional[list[float]],
        axes: tuple[str, str] = ("x[0]", "x[1]"), elements: int = 2) -> Job:
    folder = tmp_path / str(num)
    folder.mkdir()
    grid = np.linspace(-2.0, 2.0, 5)
    points = np.array([[1.0, 1.0], [0.5, 0.25 * num]])  # [K=2, 2]
    np.savez(folder / "landscape.npz", kind="slice", directions="element", axes=np.array(axes),
             grid_x=grid, grid_y=grid, losses=np.add.outer(grid**2, grid**2), points=points,
             steps=np.arange(2), final=points[-1], elements=elements, off_slice=0.0,
             optimum=np.zeros(0) if optimum is None else np.array(optimum))
    return Job(folder, num, overrides, JobResult(COMPLETED, final_loss=1.0))


def test_jobs_of_different_optimisers_share_the_true_contour(tmp_path):
    jobs = [job(tmp_path, 0, ["optim=sgd"], optimum=[0.0, 0.0]),
            job(tmp_path, 1, ["optim=adam"], optimum=[0.0, 0.0])]
    paths = shared_paths(jobs)
    assert [p.job.num for p in paths] == [0, 1]
    figure = draw_paths(paths, ["optim"], "sweep")
    lines = {line.get_gid(): line for line in figure.axes[0].lines if line.get_gid()}
    assert lines["path 1"].get_label() == "#1 optim=adam"
    np.testing.assert_array_equal(np.array(lines["path 1"].get_data()).T, [[1.0, 1.0], [0.5, 0.25]])
    assert list(lines["optimum"].get_data()) == [[0.0], [0.0]]


def test_other_functions_or_axes_share_no_contour(tmp_path):
    different_model = [job(tmp_path, 0, ["model=rosenbrock"], optimum=[1.0, 1.0]),
                       job(tmp_path, 1, ["model=beale"], optimum=[3.0, 0.5])]
    assert shared_paths(different_model) is None
    (tmp_path / "b").mkdir()
    different_axes = [job(tmp_path / "b", 0, ["optim=sgd"], optimum=None),
                      job(tmp_path / "b", 1, ["optim=adam"], optimum=None, axes=("w", "b"))]
    assert shared_paths(different_axes) is None


def test_seeds_share_a_contour_only_without_data(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    analytic = [job(tmp_path / "a", n, [f"seed={n}"], optimum=[0.0, 0.0]) for n in range(2)]
    assert shared_paths(analytic) is not None
    on_data = [job(tmp_path / "b", n, [f"seed={n}"], optimum=None) for n in range(2)]
    assert shared_paths(on_data) is None  # each seed drew other data: another function


def test_a_model_of_more_elements_has_no_shared_picture(tmp_path):
    jobs = [job(tmp_path, n, [f"optim.lr={n}"], optimum=None, elements=4) for n in range(2)]
    assert shared_paths(jobs) is None
