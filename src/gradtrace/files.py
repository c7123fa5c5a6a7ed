"""Samples from a file (data=file): .csv, .parquet or .npz, chosen by the file's suffix.

    .csv      a header row, then one sample per row; `target` names the target column, the
              features are `features` (column names) or every other column
    .parquet  the same columns, in a Parquet file
    .npz      NumPy arrays `inputs` [N, D] and `targets` [N] (np.savez)

CSV and Parquet are read with pyarrow (multi-threaded, C++; see the loader benchmark in
scripts/bench.py). Every problem is one ConfigError line naming the file and, for a bad cell, its
row and column: a missing file, an unknown column, a cell that is not a number, an empty file,
NaN or Inf.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gradtrace.data import Samples, as_samples
from gradtrace.errors import ConfigError

SUFFIXES = (".csv", ".parquet", ".npz")


def load_file(path: str, *, target: str | None, features: list[str] | None) -> Samples:
    """The samples of the file at `path` (relative to the folder gradtrace runs from)."""
    file = _existing_file(path)
    if file.suffix == ".npz":
        if target is not None or features is not None:
            raise ConfigError(
                f"data.target and data.features must be null for a .npz file, whose arrays "
                f"`inputs` and `targets` are the features and the target; got "
                f"target={target!r}, features={features!r}"
            )
        return _load_npz(file)
    table = _read_table(file)
    if table.num_rows == 0:
        raise ConfigError(f"data.path={path} holds a header but no rows")
    names = table.column_names
    if target is None:
        raise ConfigError(
            f"data.target must name the target column of {path}, one of {', '.join(names)}"
        )
    if features is None:
        features = [n for n in names if n != target]
    unknown = [c for c in [target, *features] if c not in names]
    if unknown:
        key = "data.target" if unknown[0] == target else "data.features"
        raise ConfigError(
            f"{key}: {unknown[0]!r} is not a column of {path}; its columns are {', '.join(names)}"
        )
    if target in features or not features:
        raise ConfigError(
            f"data.features must be one or more columns other than the target {target!r}, "
            f"got {list(features)}"
        )
    inputs = np.column_stack([_numbers(table, name, file) for name in features])
    targets = _numbers(table, target, file)
    return as_samples((inputs, targets), f"data: {path}")


def _existing_file(path: str) -> Path:
    if not isinstance(path, str) or not path:
        raise ConfigError(f"data.path must be a file name, got {path!r}")
    file = Path(path).expanduser()
    if file.suffix not in SUFFIXES:
        raise ConfigError(
            f"data.path must end in {', '.join(SUFFIXES)}, got {path!r}"
        )
    if not file.is_file():
        raise ConfigError(
            f"data.path={path} does not exist (looked for {file.resolve()}; a relative path "
            f"starts at the folder you run from)"
        )
    if file.stat().st_size == 0:
        raise ConfigError(f"data.path={path} is an empty file")
    return file


def _read_table(file: Path) -> Any:
    import pyarrow as pa  # imported here: only runs that read a file pay for it

    try:
        if file.suffix == ".csv":
            from pyarrow import csv

            return csv.read_csv(file)
        from pyarrow import parquet

        return parquet.read_table(file)
    except (pa.ArrowException, OSError) as error:
        message = " ".join(str(error).split())
        raise ConfigError(f"data.path={file} cannot be read: {message}") from None


def _numbers(table: Any, name: str, file: Path) -> np.ndarray:
    """Column `name` as float64 [N]; a cell that is empty or not a number is a ConfigError that
    names its row (counting data rows from 1; in a CSV file, line row + 1) and column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table.column(name)
    kind = column.type
    if column.null_count:
        row = pc.index(pc.is_null(column), True).as_py()
        raise ConfigError(f"data: {_where(file, name, row)} is empty or NaN")
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return _finite(column.to_numpy().astype(np.float64), name, file)
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise ConfigError(f"data: column {name!r} of {file} holds {kind} values, not numbers")
    cells = column.to_pylist()
    values = np.empty(len(cells))
    for row, cell in enumerate(cells):
        try:
            values[row] = float(cell)
        except ValueError:
            raise ConfigError(
                f"data: {_where(file, name, row)} is {cell!r}, not a number"
            ) from None
    return _finite(values, name, file)


def _finite(values: np.ndarray, name: str, file: Path) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        row = int(bad[0])
        raise ConfigError(f"data: {_where(file, name, row)} is {values[row]}, not a finite number")
    return values


def _where(file: Path, column: str, row: int) -> str:
    line = f" (line {row + 2})" if file.suffix == ".csv" else ""
    return f"row {row + 1}{line}, column {column!r} of {file}"


def _load_npz(file: Path) -> Samples:
    try:
        with np.load(file) as arrays:
            missing = [k for k in ("inputs", "targets") if k not in arrays]
            if missing:
                raise ConfigError(
                    f"data.path={file} must hold the arrays inputs and targets "
                    f"(np.savez(path, inputs=..., targets=...)); it holds {', '.join(arrays)}"
                )
            inputs, targets = arrays["inputs"], arrays["targets"]
    except (OSError, ValueError) as error:
        raise ConfigError(f"data.path={file} cannot be read as .npz: {error}") from None
    for name, array in (("inputs", inputs), ("targets", targets)):
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ConfigError(f"data: the array {name} of {file} holds {array.dtype}, not numbers")
    return as_samples((inputs, targets), f"data: {file}")
