"""The landscape picture: a valid PNG, in the run folder and in TensorBoard, whose plotted path is
exactly the parameters the logger wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread

from gradtrace.errors import ConfigError
from gradtrace.insight.trajectory import Trajectory
from gradtrace.setup.plan import make_plan
from gradtrace.training.experiment import train_plan

from conftest import build, compose_config, event_accumulator, scalars

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def trained(tmp_path: Path, *overrides: str):
    """Train into tmp_path as `gradtrace train` does: its landscape instrument computes the
    landscape, draws the picture and logs it at the end. Returns the trained run, the landscape
    data and the figure the instrument drew."""
    outcome = train_plan(make_plan(compose_config(*overrides)), str(tmp_path))
    instrument = outcome.run.instruments["landscape"]
    return outcome.run, instrument.data, instrument.figure


def plotted_path(figure) -> np.ndarray:
    """[K, 2] the data of the line with gid "trajectory"."""
    (line,) = [ln for ln in figure.axes[0].lines if ln.get_gid() == "trajectory"]
    return np.asarray(line.get_xydata())


def logged(tmp_path: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Steps [K] and the logged param/<name> values [K, len(names)] from the event file."""
    series = scalars(tmp_path)
    steps = np.array([s for s, _ in series[f"param/{names[0]}"]])
    values = np.array([[v for _, v in series[f"param/{n}"]] for n in names]).T
    return steps, values


def assert_valid_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 300 and pixels.shape[1] > 400


def test_scalar_curve_points_are_the_logged_w(tmp_path: Path):
    run, data, figure = trained(tmp_path, "model=scalar", "trainer.steps=30")
    assert data.kind == "curve" and data.axes == ["w"]
    assert_valid_png(tmp_path / "landscape.png")
    steps, w = logged(tmp_path, ["w"])
    assert steps.tolist() == list(range(30)) == data.steps.tolist()
    path = plotted_path(figure)
    assert path[:, 0].tolist() == w[:, 0].tolist()  # exactly what TensorBoard holds
    np.testing.assert_allclose(path[:, 1], w[:, 0] ** 2, rtol=1e-12)  # L(w) = w**2 on the curve
    # The curve covers the whole path; the end is the final w, after the last step.
    assert data.grid[0].min() < w.min() and data.grid[0].max() > w.max()
    assert data.final[0] == run.model.w.item()
    # The same PNG is in TensorBoard.
    (image,) = event_accumulator(tmp_path).Images("landscape")
    assert image.encoded_image_string == (tmp_path / "landscape.png").read_bytes()
    assert (image.width, image.height) == imread(tmp_path / "landscape.png").shape[1::-1]


def test_linear_named_axes_path_is_the_logged_elements(tmp_path: Path):
    axes = ["weight[0,2]", "bias[0]"]
    _, data, figure = trained(
        tmp_path, "model=linear", 'landscape.axes=["weight[0,2]","bias[0]"]', "trainer.steps=20"
    )
    assert data.kind == "slice" and data.directions == "element" and data.axes == axes
    assert_valid_png(tmp_path / "landscape.png")
    _, values = logged(tmp_path, axes)
    assert plotted_path(figure).tolist() == values.tolist()
    assert data.losses.shape == (41, 41)


def test_linear_random_directions_path_is_the_projection_of_the_logged_parameters(tmp_path: Path):
    run, data, figure = trained(tmp_path, "model=linear", "trainer.steps=20")
    assert data.directions == "random" and data.kind == "slice"
    names = ["weight[0,0]", "weight[0,1]", "weight[0,2]", "bias[0]"]
    _, values = logged(tmp_path, names)
    assert data.params.tolist() == values.tolist()
    # Least squares onto the two directions through the final parameters, redone with numpy.
    final = np.concatenate([p.detach().double().numpy().ravel() for p in run.model.parameters()])
    landscape = run.instruments["landscape"].landscape
    directions = landscape._random_directions().numpy()  # [2, P]
    expected, *_ = np.linalg.lstsq(directions.T, (values - final).T, rcond=None)
    np.testing.assert_allclose(plotted_path(figure), expected.T, rtol=1e-9, atol=1e-12)
    # Normalised per tensor: each direction's weight part has the final weight's norm.
    weight_norm = np.linalg.norm(final[:3])
    np.testing.assert_allclose(np.linalg.norm(directions[:, :3], axis=1), weight_norm)


def test_regressor_picture(tmp_path: Path):
    _, data, figure = trained(tmp_path, "model=regressor", "trainer.steps=20")
    assert data.samples == 1000 and data.losses.shape == (41, 41)
    assert np.isfinite(data.losses).all()
    assert_valid_png(tmp_path / "landscape.png")
    assert len(plotted_path(figure)) == 20


def test_large_data_is_pictured_on_a_bounded_random_subset(tmp_path: Path):
    run, data, figure = trained(tmp_path, "model=regressor", "trainer.steps=5",
                                "landscape.max_samples=100")
    assert (data.samples, data.total_samples) == (100, 1000)
    # The subset: the first 100 of a permutation seeded by the run's seed, in sample order.
    index = torch.randperm(1000, generator=torch.Generator().manual_seed(0))[:100].sort().values
    x = run.train_data.inputs[index].double().numpy()
    y = run.train_data.targets[index].double().numpy()
    final = run.model.params.detach().double().numpy()
    assert data.final_loss == pytest.approx(np.abs(x @ final - y).mean(), rel=1e-12)
    label = figure.axes[1].get_ylabel()  # the colour bar
    assert "100 random of 1,000 samples" in label


def test_resolution_and_log_every_steps(tmp_path: Path):
    _, data, figure = trained(
        tmp_path, "model=linear", "landscape.resolution=9", "trainer.steps=20",
        "trainer.log_every_steps=5",
    )
    assert data.losses.shape == (9, 9)
    assert data.steps.tolist() == [0, 5, 10, 15]  # the logged steps, no others
    assert len(plotted_path(figure)) == 4


def test_skipped_when_a_tensor_is_not_logged_element_by_element():
    run = build("model=regressor", "trainer.log_elements_max=5")
    assert "landscape" not in run.instruments
    run = build("model=scalar", "landscape.enabled=false")
    assert "landscape" not in run.instruments
    assert "landscape" in build("model=scalar").instruments


def test_trajectory_memory_is_bounded_and_keeps_exact_rows():
    trajectory = Trajectory(["param/a", "param/b", "grad/a", "grad/b"], max_points=8)
    rows = {step: [float(step), -float(step), 0.0, 0.0] for step in range(100)}
    for step, row in rows.items():
        trajectory.record(step, row)
    assert len(trajectory) <= 8
    steps = trajectory.steps()
    assert steps[0] == 0 and (np.diff(steps) == trajectory.stride).all()
    assert trajectory.params().tolist() == [rows[s][:2] for s in steps]


@pytest.mark.parametrize(
    "override,message",
    [
        ("landscape.resolution=2", r"landscape.resolution must be an integer in \[3, 401\], got 2"),
        ("landscape.margin=-1", r"landscape.margin must be a finite number >= 0, got -1"),
        ('landscape.axes=["w"]', r"landscape.axes must be null or two parameter elements"),
    ],
)
def test_bad_settings(override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        build(override)


def test_axes_must_name_the_models_elements():
    with pytest.raises(ConfigError, match=r"landscape.axes must be null or two different parameter "
                       r"elements of the model \(weight\[0,0\], weight\[0,1\], weight\[0,2\], "
                       r"bias\[0\]\), got \['weight\[0,5\]', 'bias\[0\]'\]"):
        build("model=linear", 'landscape.axes=["weight[0,5]","bias[0]"]')


def marked_optimum(figure) -> list[np.ndarray]:
    return [np.column_stack(ln.get_data()) for ln in figure.axes[0].lines
            if ln.get_gid() == "optimum"]


@pytest.mark.parametrize("model,optimum", [
    ("rosenbrock", [1.0, 1.0]),  # (a - x)^2 + b (y - x^2)^2 = 0 at (a, a^2), a = 1
    ("beale", [3.0, 0.5]),  # each of Beale's three terms is 0 at x = 3, y = 0.5
])
def test_a_2d_objectives_picture_is_its_true_contour_with_the_optimum_marked(tmp_path, model,
                                                                             optimum):
    _, data, figure = trained(tmp_path, f"model={model}", "optim.lr=0.001", "trainer.steps=20")
    assert data.axes == ["x[0]", "x[1]"] and data.directions == "element"
    (marker,) = marked_optimum(figure)
    assert marker.tolist() == [optimum]
    assert data.optimum_loss == 0.0  # f(x*), computed in float64, exactly 0 at both
    # Twenty short steps stay near the start: the grid still reaches x*.
    for axis, value in zip(data.grid, optimum):
        assert axis.min() < value < axis.max()
    # The contour is f itself: Rosenbrock at a grid corner, by the formula.
    if model == "rosenbrock":
        x, y = data.grid[0][0], data.grid[1][0]
        assert data.losses[0, 0] == pytest.approx((1 - x) ** 2 + 100 * (y - x * x) ** 2,
                                                  rel=1e-12)


def test_a_one_dimensional_objective_marks_its_optimum_on_the_curve(tmp_path):
    # f = 1/2 * 4 (x - 2)^2: minimum 0 at x* = 2
    _, data, figure = trained(tmp_path, "model=quadratic", "model.eigenvalues=[4.0]",
                              "model.start=[0.0]", "model.optimum=[2.0]", "trainer.steps=3")
    assert data.kind == "curve"
    (marker,) = marked_optimum(figure)
    assert marker.tolist() == [[2.0, 0.0]]


def test_a_network_has_no_optimum_to_mark(tmp_path):
    _, data, figure = trained(tmp_path, "model=linear", "trainer.steps=3")
    assert data.optimum is None and not marked_optimum(figure)
