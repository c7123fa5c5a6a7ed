"""Samples from a file (data=file): .csv, .parquet or .npz, chosen by the file's suffix.

    .csv      a header row, then one sample per row; `target` names the target column (or a
              list of them: targets [N, K]), the features are `features` (column names) or
              every other column. A target column of text is class labels: its sorted distinct
              values are the classes 0, 1, ...; one of integers stays integers. Nothing else is
              transformed.
    .parquet  the same columns, in a Parquet file
    .npz      NumPy arrays `inputs` [N, D] and `targets` [N] (np.savez)

CSV and Parquet are read with pyarrow (multi-threaded, C++; see the loader benchmark in
scripts/bench.py). Every problem is one ConfigError line naming the file and, for a bad cell, its
row and column: a missing file, an unknown column, a cell that is not a number, an empty file,
NaN or Inf.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from gradtrace.components.data import Samples, as_samples
from gradtrace.errors import ConfigError, one_line

SUFFIXES = (".csv", ".parquet", ".npz")


def load_file(path: str, *, target: str | list[str] | None, features: list[str] | None) -> Samples:
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
            f"data.target must name the target column of {path}, one of {_listed(names)}"
        )
    targets_ = list(target) if isinstance(target, (list, tuple)) else [target]
    if not targets_ or not all(isinstance(t, str) for t in targets_):
        raise ConfigError(f"data.target must name a column or list columns of {path}, got "
                          f"{target!r}")
    if features is None:
        features = [n for n in names if n not in targets_]
    unknown = [c for c in [*targets_, *features] if c not in names]
    if unknown:
        key = "data.target" if unknown[0] in targets_ else "data.features"
        raise ConfigError(
            f"{key}: {unknown[0]!r} is not a column of {path}; its columns are {_listed(names)}"
        )
    repeated = [c for c in [*targets_, *features] if names.count(c) > 1]
    if repeated:
        raise ConfigError(
            f"data.path={path}: the header names the column {repeated[0]!r} "
            f"{names.count(repeated[0])} times; rename all but one"
        )
    if set(targets_) & set(features) or not features:
        raise ConfigError(
            f"data.features must be one or more columns other than the target {target!r}, "
            f"got {list(features)}"
        )
    inputs = np.column_stack([_numbers(table, name, file) for name in features])
    if len(targets_) > 1:
        samples = as_samples((inputs, np.column_stack(
            [_numbers(table, name, file) for name in targets_])), f"data: {path}")
        return samples
    values, classes = _target(table, targets_[0], file)
    samples = as_samples((inputs, values), f"data: {path}")
    return replace(samples, classes=classes)


def _target(table: Any, name: str, file: Path) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """One target column: integers as int64, numbers as float64, or text as class labels (the
    indices of its sorted distinct values, and those values)."""
    import pyarrow as pa

    column = table.column(name)
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        if column.null_count:
            return _numbers(table, name, file), None  # names the empty cell
        return column.to_numpy().astype(np.int64), None
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return _numbers(table, name, file), None
    cells = column.to_pylist()
    try:
        return _numbers(table, name, file), None  # text that is all numbers ("1.5", " 2")
    except ConfigError:
        if None in cells:
            raise
    classes, index = np.unique(np.asarray(cells, dtype=object).astype(str), return_inverse=True)
    return index.astype(np.int64), tuple(str(c) for c in classes)


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

            # strings_can_be_null: an empty cell is a null in a column of text too
            return csv.read_csv(file, convert_options=csv.ConvertOptions(strings_can_be_null=True))
        from pyarrow import parquet

        return parquet.read_table(file)
    except (pa.ArrowException, OSError) as error:
        raise ConfigError(f"data.path={file} cannot be read: {one_line(error)}") from None


def _numbers(table: Any, name: str, file: Path) -> np.ndarray:
    """Column `name` as float64 [N]; a cell that is empty or not a number is a ConfigError that
    names its row (counting data rows from 1; in a CSV file, its line too) and column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table.column(name)
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _finite(_parse(column.to_pylist(), name, file), name, file)
    if column.null_count:
        row = pc.index(pc.is_null(column), True).as_py()
        raise ConfigError(f"data: {_where(file, name, row)} is empty or NaN")
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return _finite(column.to_numpy().astype(np.float64), name, file)
    raise ConfigError(f"data: column {name!r} of {file} holds {kind} values, not numbers")


def _parse(cells: list[str | None], name: str, file: Path) -> np.ndarray:
    """A column of text (some cell is not a number to pyarrow): the first bad cell in row order
    is the error."""
    values = np.empty(len(cells))
    for row, cell in enumerate(cells):
        if cell is None:
            raise ConfigError(f"data: {_where(file, name, row)} is empty or NaN")
        try:
            values[row] = float(cell)
        except ValueError:
            raise ConfigError(
                f"data: {_where(file, name, row)} is {cell!r}, not a number"
            ) from None
    return values


def _finite(values: np.ndarray, name: str, file: Path) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        row = int(bad[0])
        raise ConfigError(f"data: {_where(file, name, row)} is {values[row]}, not a finite number")
    return values


def _where(file: Path, column: str, row: int) -> str:
    line = f" (line {_csv_line(file, row)})" if file.suffix == ".csv" else ""
    return f"row {row + 1}{line}, column {column!r} of {file}"


def _csv_line(file: Path, row: int) -> int:
    """The line of data row `row` (from 0) of a CSV file, read as pyarrow reads it: empty lines
    are skipped, and a quoted cell may span lines. Only for messages: it reads the file again."""
    import csv

    with open(file, newline="", encoding="utf-8", errors="replace") as lines:
        reader = csv.reader(lines)
        end, record = 0, -1  # the last line read; the header is record -1
        for cells in reader:
            if cells:
                if record == row:
                    return end + 1
                record += 1
            end = reader.line_num
    return row + 2


def _listed(names: list[str]) -> str:
    """Column names quoted, so that a space in a header shows."""
    return ", ".join(repr(name) for name in names)


def _load_npz(file: Path) -> Samples:
    try:
        npz = np.load(file)
        if not hasattr(npz, "files"):  # np.save's one array
            raise ValueError("it holds one array, not the named arrays of np.savez")
        with npz:
            names = list(npz.files)
            arrays = {k: npz[k] for k in ("inputs", "targets") if k in names}
    except (OSError, ValueError) as error:
        raise ConfigError(f"data.path={file} cannot be read as .npz: {error}") from None
    if len(arrays) < 2:
        raise ConfigError(
            f"data.path={file} must hold the arrays inputs and targets "
            f"(np.savez(path, inputs=..., targets=...)); it holds {', '.join(names) or 'none'}"
        )
    inputs, targets = arrays["inputs"], arrays["targets"]
    for name, array in (("inputs", inputs), ("targets", targets)):
        if array.dtype.kind not in "biuf":  # bool, int, unsigned, float: not complex, text
            raise ConfigError(f"data: the array {name} of {file} holds {array.dtype}, not numbers")
    return as_samples((inputs, targets), f"data: {file}")
