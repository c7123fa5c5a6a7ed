"""The optimiser's path: the parameters at each logged step, kept in memory for the landscape.

The landscape instrument hands over one fresh row of parameter values per due step (a list of
floats), so recording costs one append. Memory is bounded: when `max_points` rows are held, every
other one is dropped and from then on only every second logged step is kept (then every fourth, and
so on). The kept points are always exactly what the logger received at those steps.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch


class Trajectory:
    def __init__(self, columns: list[str], max_points: int = 4096) -> None:
        # A row starts with one param/<element> column per parameter element (every
        # tensor is small when a trajectory is kept); the gradients follow.
        self.names = [c.removeprefix("param/") for c in columns if c.startswith("param/")]
        self.max_points = max_points
        self.stride = 1  # keep every stride-th recorded row
        self._seen = 0
        self._steps: list[int] = []
        self._rows: list[list[float]] = []

    def keeps_next(self) -> bool:
        """Whether the next recorded row will be kept: a caller may skip reading one that will
        not (then it calls `record(step, None)`)."""
        return self._seen % self.stride == 0

    def record(self, step: int, values: Optional[list[float]]) -> None:
        if self._seen % self.stride == 0:
            assert values is not None, "keeps_next() said this row is kept"
            self._steps.append(step)
            self._rows.append(values)
            if len(self._rows) >= self.max_points:
                del self._steps[1::2], self._rows[1::2]
                self.stride *= 2
        self._seen += 1

    def state_dict(self) -> dict[str, Any]:
        """The kept rows (float64 holds each logged value exactly) and the thinning state."""
        width = len(self._rows[0]) if self._rows else 0
        rows = torch.tensor(self._rows, dtype=torch.float64).reshape(len(self._rows), width)
        return {"steps": list(self._steps), "rows": rows, "stride": self.stride, "seen": self._seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._steps = list(state["steps"])
        self._rows = state["rows"].tolist()
        self.stride, self._seen = state["stride"], state["seen"]

    def __len__(self) -> int:
        return len(self._steps)

    def steps(self) -> np.ndarray:
        return np.array(self._steps, dtype=np.int64)  # [K]

    def params(self) -> np.ndarray:
        """[K, P] parameter elements, in the order of `names` (named_parameters, row-major)."""
        width = len(self.names)
        return np.array([row[:width] for row in self._rows], dtype=np.float64).reshape(-1, width)
