"""data=file: samples from .csv, .parquet and .npz files, every problem with one a file can have as
one ConfigError line, the CLI's exit code for them, training on a file, and data.val_path."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from pyarrow import parquet

import gradtrace
from gradtrace.components.files import load_file
from gradtrace.errors import ConfigError

from conftest import build, run_cli, run_dirs, scalars

# x1: integers only, x2: integers and decimals mixed, y: the target, between the features.
HEADER = ["x1", "y", "x2"]
ROWS = [[1, 0.5, 2.5], [-2, 3, 4], [30, -0.125, 0.1], [4, 1e-3, -7]]


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def column(name: str, rows=ROWS, header=HEADER) -> np.ndarray:
    """A column of what was written, as the float32 the samples hold."""
    return np.array([float(row[header.index(name)]) for row in rows]).astype(np.float32)


def test_csv_target_by_name_and_every_other_column_in_file_order(tmp_path: Path):
    samples = load_file(str(write_csv(tmp_path / "d.csv", HEADER, ROWS)), target="y",
                        features=None)
    expected = np.stack([column("x1"), column("x2")], axis=1)
    assert samples.inputs.dtype == torch.float32 and samples.targets.dtype == torch.float32
    np.testing.assert_array_equal(samples.inputs.numpy(), expected)
    np.testing.assert_array_equal(samples.targets.numpy(), column("y"))


def test_csv_features_are_the_listed_columns_in_the_listed_order(tmp_path: Path):
    # an unused column may hold text: only the listed ones are read as numbers
    header = [*HEADER, "name"]
    rows = [[*row, f"sample {i}"] for i, row in enumerate(ROWS)]
    path = write_csv(tmp_path / "d.csv", header, rows)
    samples = load_file(str(path), target="x1", features=["x2", "y"])
    expected = np.stack([column("x2"), column("y")], axis=1)
    np.testing.assert_array_equal(samples.inputs.numpy(), expected)
    np.testing.assert_array_equal(samples.targets.numpy(), column("x1"))


@pytest.mark.parametrize("suffix", [".parquet", ".npz"])
def test_parquet_and_npz_give_the_samples_of_the_same_csv(tmp_path: Path, suffix: str):
    from_csv = load_file(str(write_csv(tmp_path / "d.csv", HEADER, ROWS)), target="y",
                         features=None)
    path = tmp_path / f"d{suffix}"
    if suffix == ".parquet":
        table = pa.table({name: [row[i] for row in ROWS] for i, name in enumerate(HEADER)})
        parquet.write_table(table, path)
        samples = load_file(str(path), target="y", features=None)
    else:
        inputs = np.array([[row[0], row[2]] for row in ROWS], dtype=np.float64)
        np.savez(path, inputs=inputs, targets=np.array([row[1] for row in ROWS]))
        samples = load_file(str(path), target=None, features=None)
    assert torch.equal(samples.inputs, from_csv.inputs)
    assert torch.equal(samples.targets, from_csv.targets)


# --- every problem is one ConfigError line ----------------------------------------------------

GOOD = "x1,x2,y\n1,2,3\n4,5,6\n7,8,9\n"


@pytest.mark.parametrize(
    "name,content,kwargs,message",
    [
        ("d.txt", GOOD, {}, r"data\.path must end in \.csv, \.parquet, \.npz, got '{path}'"),
        ("d.csv", "", {}, r"data\.path={path} is an empty file"),
        ("d.csv", "x1,x2,y\n", {}, r"data\.path={path} holds a header but no rows"),
        ("d.csv", GOOD, {"target": None},
         r"data\.target must name the target column of {path}, one of 'x1', 'x2', 'y'"),
        ("d.csv", GOOD, {"target": "z"},
         r"data\.target: 'z' is not a column of {path}; its columns are 'x1', 'x2', 'y'"),
        ("d.csv", GOOD, {"features": ["x1", "x3"]},
         r"data\.features: 'x3' is not a column of {path}; its columns are 'x1', 'x2', 'y'"),
        ("d.csv", GOOD, {"features": ["x1", "y"]},
         (r"data\.features must be one or more columns other than the target 'y', "
          r"got \['x1', 'y'\]")),
        ("d.csv", "x1,x1,y\n1,2,3\n", {},
         r"data\.path={path}: the header names the column 'x1' 2 times; rename all but one"),
        ("d.csv", "x1,x2,y\n1,2,3\n4,5,6\n7,abc,9\n", {},
         r"data: row 3 \(line 4\), column 'x2' of {path} is 'abc', not a number"),
        # the line counts the empty lines that pyarrow skips
        ("d.csv", "x1,x2,y\n\n1,2,3\n\n4,5,6\n7,abc,9\n", {},
         r"data: row 3 \(line 6\), column 'x2' of {path} is 'abc', not a number"),
        ("d.csv", "x1,x2,y\n1,2,3\n,5,6\n", {},
         r"data: row 2 \(line 3\), column 'x1' of {path} is empty or NaN"),
        ("d.csv", "x1,x2,y\n1,2,3\n4,5,nan\n", {},
         r"data: row 2 \(line 3\), column 'y' of {path} is empty or NaN"),
        # in a column of text too: the first bad cell, whichever kind it is
        ("d.csv", "x1,x2,y\n1,,3\n4,abc,6\n", {},
         r"data: row 1 \(line 2\), column 'x2' of {path} is empty or NaN"),
        ("d.csv", "x1,x2,y\n1,2,3\n4,5,6\n7,inf,9\n", {},
         r"data: row 3 \(line 4\), column 'x2' of {path} is inf, not a finite number"),
    ],
)
def test_a_bad_csv_is_one_config_error_line(tmp_path: Path, name, content, kwargs, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"^{message.format(path=re.escape(str(path)))}$"):
        load_file(str(path), **{"target": "y", "features": None, **kwargs})


def test_a_missing_file_names_the_path_it_looked_for(tmp_path: Path):
    path = tmp_path / "nope" / "d.csv"
    with pytest.raises(ConfigError, match=rf"^data\.path={re.escape(str(path))} does not exist "
                                          rf"\(looked for {re.escape(str(path.resolve()))};"):
        load_file(str(path), target="y", features=None)


def test_a_null_in_parquet_names_its_row_without_a_line(tmp_path: Path):
    path = tmp_path / "d.parquet"
    parquet.write_table(pa.table({"x1": [1.0, 2.0, None], "y": [1.0, 2.0, 3.0]}), path)
    with pytest.raises(ConfigError, match=rf"^data: row 3, column 'x1' of {re.escape(str(path))} "
                                          r"is empty or NaN$"):
        load_file(str(path), target="y", features=None)


@pytest.mark.parametrize(
    "arrays,kwargs,message",
    [
        ({"inputs": np.ones((3, 2))}, {},
         (r"data\.path={path} must hold the arrays inputs and targets \(np\.savez\(path, "
          r"inputs=\.\.\., targets=\.\.\.\)\); it holds inputs$")),
        ({"inputs": np.ones((3, 2)), "targets": np.ones(3)}, {"target": "y"},
         (r"data\.target and data\.features must be null for a \.npz file, .* got "
          r"target='y', features=None$")),
        ({"inputs": np.array([["a", "b"]]), "targets": np.ones(1)}, {},
         r"data: the array inputs of {path} holds <U1, not numbers$"),
        ({"inputs": np.ones((1, 2)), "targets": np.array([1j])}, {},
         r"data: the array targets of {path} holds complex128, not numbers$"),
    ],
)
def test_a_bad_npz_is_one_config_error_line(tmp_path: Path, arrays, kwargs, message):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(ConfigError, match=f"^{message.format(path=re.escape(str(path)))}"):
        load_file(str(path), **{"target": None, "features": None, **kwargs})


# --- through the real CLI (a subprocess each: ~3 s) -------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "content,message",
    [
        ("x1,x2,y\n1,2,3\n4,5,6\n7,abc,9\n",
         "data: row 3 (line 4), column 'x2' of d.csv is 'abc', not a number"),
        (None, "data.path=d.csv does not exist (looked for {cwd}/d.csv;"),
    ],
)
def test_cli_exits_2_with_one_error_line_and_writes_no_events(tmp_path: Path, content, message):
    if content is not None:
        (tmp_path / "d.csv").write_text(content)  # a relative path starts at the folder run from
    result = run_cli(tmp_path, "model=linear", "data=file", "data.path=d.csv", "data.target=y")
    assert result.returncode == 2
    output = result.stdout + result.stderr
    (error,) = [line for line in output.splitlines() if "[ERROR]" in line]
    assert message.format(cwd=tmp_path.resolve()) in error
    assert "Traceback" not in output
    assert not list(tmp_path.rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_cli_trains_on_a_csv_file(tmp_path: Path):
    x = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.25]])
    y = np.array([1.0, -2.0, 0.5])
    (tmp_path / "data").mkdir()
    path = write_csv(tmp_path / "data" / "d.csv", ["x1", "x2", "y"],
                     np.column_stack([x, y]).tolist())
    result = run_cli(tmp_path, "model=linear", "data=file", f"data.path={path}", "data.target=y",
                     "model.weight=[[0.5,-0.5]]", "model.bias=[0.25]", "trainer.steps=5")
    assert result.returncode == 0, result.stderr
    (run,) = run_dirs(tmp_path)
    assert run.parent == tmp_path / "outputs" / "runs"  # the path's folders are not nested in
    losses = scalars(run)["loss/train"]
    assert [step for step, _ in losses] == [0, 1, 2, 3, 4]
    initial = np.mean((x @ [0.5, -0.5] + 0.25 - y) ** 2)  # the MSE at the given initial values
    assert losses[0][1] == pytest.approx(initial, rel=1e-6)


# --- training on a file ---------------------------------------------------------------------


def test_gradient_descent_on_a_csv_finds_the_least_squares_fit(tmp_path: Path):
    rng = np.random.default_rng(7)
    n, a, b = 200, np.array([1.5, -2.0, 0.5]), 0.7
    x = rng.normal(size=(n, 3))
    y = x @ a + b + rng.normal(scale=0.1, size=n)
    path = tmp_path / "d.csv"
    np.savetxt(path, np.column_stack([x, y]), fmt="%.9g", delimiter=",", header="x1,x2,x3,y",
               comments="")
    # The least-squares fit of the numbers in the file, and the Hessian of the MSE there,
    # H = 2/N [X 1]^T [X 1]: full-batch gradient descent with lr = 1/lambda_max shrinks the
    # distance to the fit by at least 1 - lambda_min/lambda_max every step.
    numbers = np.loadtxt(path, delimiter=",", skiprows=1)
    design = np.column_stack([numbers[:, :3], np.ones(n)])
    fit = np.linalg.lstsq(design, numbers[:, 3], rcond=None)[0]
    eigenvalues = np.linalg.eigvalsh(2 / n * design.T @ design)
    contraction = 1 - eigenvalues[0] / eigenvalues[-1]
    steps = int(np.ceil(np.log(1e-8) / np.log(contraction)))  # from a distance < 10 to < 1e-7
    result = gradtrace.run(
        ["model=linear", "loss=mse", "data=file", f"data.path={path}", "data.target=y",
         f"optim.lr={1 / eigenvalues[-1]}", f"trainer.steps={steps}", "landscape.enabled=false"],
        run_dir=tmp_path / "run", verbose=False,
    )
    trained = np.append(result.model.weight.detach().numpy()[0], result.model.bias.item())
    # 1e-5: float32 training (the data, the parameters and the sums of 200 products are float32,
    # relative error ~1e-7 each) stops within a few float32 steps of the fit, not at it.
    np.testing.assert_allclose(trained, fit, atol=1e-5)
    assert np.abs(fit - [*a, b]).max() > 1e-3  # the fit of the noisy data, not a and b


# --- data.val_path --------------------------------------------------------------------------


def test_val_path_gives_the_validation_samples_of_the_second_file(tmp_path: Path):
    train_rows = [[1, 2, 3], [4, 5, 6], [7, 8, 9.5]]
    val_rows = [[0.5, -1, 2], [10, 20, 30]]
    train = write_csv(tmp_path / "train.csv", ["x1", "x2", "y"], train_rows)
    val = write_csv(tmp_path / "val.csv", ["x1", "x2", "y"], val_rows)
    run = build("model=linear", "data=file", f"data.path={train}", "data.target=y",
                f"data.val_path={val}", "landscape.enabled=false")
    for samples, rows in ((run.train_data, train_rows), (run.val_data, val_rows)):
        numbers = np.array(rows, dtype=np.float32)
        np.testing.assert_array_equal(samples.inputs.numpy(), numbers[:, :2])
        np.testing.assert_array_equal(samples.targets.numpy(), numbers[:, 2])


def test_val_path_with_another_number_of_features_is_refused(tmp_path: Path):
    train = write_csv(tmp_path / "train.csv", ["x1", "x2", "y"], [[1, 2, 3], [4, 5, 6]])
    val = write_csv(tmp_path / "val.csv", ["x1", "x2", "x3", "y"], [[1, 2, 3, 4]])
    with pytest.raises(ConfigError, match=r"^data\.val_path: a validation sample has inputs of "
                                          r"shape \[3\] and targets of shape \[\], a training "
                                          r"sample \[2\] and \[\]$"):
        build("model=linear", "data=file", f"data.path={train}", "data.target=y",
              f"data.val_path={val}")
