"""What a run is judged by, watched as it is logged: the objective's last value, the best value of
the series it summarises and that value's step, the last value of each metric, and early
stopping. `Tracker` sits in front of the logger (a Sink): every record goes through unchanged,
and the few tags it watches are looked up in each row of scalars.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Optional, Sequence

import torch

from gradtrace.loggers import HParams, Logger


class Tracker:
    """Keeps, for each of `tags`, its last logged value; for `monitor`, its best value (lowest
    for mode "min") and the step of it. With `patience`, asks to stop once `patience` logged
    values in a row have not beaten the best by more than `min_delta`, and calls `on_best(step)`
    at each new best (to keep the best model)."""

    def __init__(self, sink: Logger, *, tags: Sequence[str], monitor: str, mode: str,
                 patience: Optional[int] = None, min_delta: float = 0.0,
                 request_stop: Callable[[str], None] = lambda reason: None,
                 on_best: Callable[[int], None] = lambda step: None) -> None:
        self.sink = sink
        self.tags = tuple(dict.fromkeys([monitor, *tags]))
        self.monitor, self.sign = monitor, 1.0 if mode == "min" else -1.0
        self.patience, self.min_delta = patience, min_delta
        self.request_stop, self.on_best = request_stop, on_best
        self.last: dict[str, float] = {}
        self.best = math.inf  # sign * the best value: lower is better
        self.best_step: Optional[int] = None
        self.waited = 0  # logged values of `monitor` since the best

    @property
    def best_value(self) -> Optional[float]:
        return None if self.best_step is None else self.sign * self.best

    def log_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
        self.sink.log_scalars(step, scalars)
        for tag in self.tags:
            value = scalars.get(tag)
            if value is not None:
                self.last[tag] = value
                if tag == self.monitor:
                    self._judge(step, value)

    def _judge(self, step: int, value: float) -> None:
        score = self.sign * value
        if not math.isfinite(score):
            return
        if self.best_step is None or score < self.best - self.min_delta:
            self.best, self.best_step, self.waited = score, step, 0
            if self.patience is not None:
                self.on_best(step)
        else:
            self.waited += 1
            if self.patience is not None and self.waited >= self.patience:
                self.request_stop("early_stopping")

    def state_dict(self) -> dict[str, Any]:
        return {"last": dict(self.last), "best": self.best, "best_step": self.best_step,
                "waited": self.waited}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.last = dict(state["last"])
        self.best, self.best_step, self.waited = state["best"], state["best_step"], state["waited"]

    # The rest of the logger, passed on.
    def log_histograms(self, step: int, tensors: Mapping[str, torch.Tensor]) -> None:
        self.sink.log_histograms(step, tensors)

    def log_text(self, step: int, tag: str, markdown: str) -> None:
        self.sink.log_text(step, tag, markdown)

    def log_image(self, step: int, tag: str, png: bytes) -> None:
        self.sink.log_image(step, tag, png)

    def log_hparams(self, hparams: HParams, metrics: list[str]) -> None:
        self.sink.log_hparams(hparams, metrics)

    def flush(self) -> Any:
        return self.sink.flush()

    def close(self) -> None:
        self.sink.close()
