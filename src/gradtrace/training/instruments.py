"""The seam between the loop and everything that watches a step: instruments.

An instrument is any object with `measure(view) -> Mapping[str, float]`. The loop calls it on its
due steps (0, every_steps, 2 * every_steps, ...) after `backward()` and before `optimizer.step()`,
with a `StepView` of that step; each returned key lands in the logger as `<name>/<key>` at that
step. It may also have, each optional, and each timed like `measure`:

    setup(context) -> bool | None    once before step 0 (a RunContext); False: leave me out
    after_step(view) -> Mapping      on the same due steps, after optimizer.step()
    finish(view) -> Mapping          once at the end; view.stopped says why it ended
    state_dict() / load_state_dict(state)   kept in checkpoints, for a bitwise resume
    diagnose() -> str | None         when the run diverges: a sentence for its error message
    tag_prefix: str                  the tags' prefix instead of "<name>/" ("" for none)

A returned value is a number (a scalar), a torch.Tensor of several elements (a histogram), a str
(Markdown text) or bytes (a PNG image). An instrument never changes parameters, gradients or the
optimiser, and never calls another instrument; to end the run it calls `view.request_stop(reason)`,
and to fail it, it raises (gradtrace.errors). docs/instruments.md has a worked example.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Optional, Protocol, Sequence

import torch
from torch import nn

from gradtrace.components.data import Samples

HOOKS = ("measure", "after_step", "finish")  # an instrument has at least one of them


class Instrument(Protocol):
    def measure(self, view: StepView) -> Mapping[str, Any]: ...


class Sink(Protocol):
    """What instruments' records go to (gradtrace.loggers.Logger)."""

    def log_scalars(self, step: int, scalars: Mapping[str, float]) -> None: ...

    def log_histograms(self, step: int, tensors: Mapping[str, torch.Tensor]) -> None: ...

    def log_text(self, step: int, tag: str, markdown: str) -> None: ...

    def log_image(self, step: int, tag: str, png: bytes) -> None: ...


@dataclass(frozen=True)
class RunContext:
    """What an instrument's `setup` may keep: the run's objects and facts."""

    model: nn.Module  # the model itself (not a DistributedDataParallel wrapper)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    train_data: Samples
    val_data: Optional[Samples]  # None without validation samples
    device: torch.device
    run_dir: str
    steps: int  # trainer.steps: the run's last step is steps - 1
    seed: int
    is_main: bool  # False on ranks other than 0 of a distributed run, which log nothing
    processes: int = 1  # that train the run together (torchrun), each on its shard of a batch
    task: str = "regression"  # "classes", "binary" or "regression" (gradtrace.components.tasks)
    # name -> (preds, targets) -> [] : the run's metrics, logged as <name>/train and <name>/val
    metrics: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = \
        field(default_factory=dict)


class Row(Mapping[str, float]):
    """Scalars as two parallel lists: what an instrument returns for many values at once, at
    the cost of two references instead of a dict (the per-element logging's hot path)."""

    __slots__ = ("keys_", "values_")

    def __init__(self, keys: Sequence[str], values: Sequence[float]) -> None:
        self.keys_ = keys
        self.values_ = values

    def __getitem__(self, key: str) -> float:
        try:
            return self.values_[list(self.keys_).index(key)]
        except ValueError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_)

    def __len__(self) -> int:
        return len(self.keys_)


class StepView:
    """One step as instruments see it: read it, do not change it. Reused from step to step."""

    __slots__ = ("step", "model", "optimizer", "loss", "loss_value", "best_loss", "inputs",
                 "targets", "preds", "stopped", "_stop")

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 request_stop: Callable[[str], None]) -> None:
        self.model = model  # the model itself; on due steps .grad holds this step's gradients
        self.optimizer = optimizer
        self.step = -1
        self.loss: torch.Tensor = torch.tensor(math.nan)  # [] the step's loss, before its update
        self.loss_value = math.nan  # the same as a float, as logged (averaged across processes)
        self.best_loss = math.inf  # the lowest loss_value so far, this step's included
        self.inputs: torch.Tensor = torch.empty(0)  # [B, ...] the step's batch
        self.targets: torch.Tensor = torch.empty(0)
        self.preds: torch.Tensor = torch.empty(0)  # the model's output on inputs
        self.stopped: Optional[str] = None  # in finish: None (all steps done), or the reason
        self._stop = request_stop

    @property
    def interrupted(self) -> bool:
        """In finish: a stop signal ended the run; do only what is quick (it will resume)."""
        return self.stopped == "signal"

    def request_stop(self, reason: str) -> None:
        """End the run after this step (checkpointed), with `reason` in result.json's stopped."""
        self._stop(reason)


class Mounted:
    """An instrument as the loop runs it: its name, schedule, hooks (bound once) and cost."""

    def __init__(self, name: str, instrument: Any, every_steps: int) -> None:
        self.name, self.instrument, self.every_steps = name, instrument, every_steps
        self.prefix: str = getattr(instrument, "tag_prefix", f"{name}/")  # "<name>/" or its own
        self.measure: Optional[Callable[[StepView], Any]] = getattr(instrument, "measure", None)
        self.after_step: Optional[Callable[[StepView], Any]] = getattr(instrument, "after_step",
                                                                        None)
        self.seconds: dict[str, float] = {}  # hook -> its own time in total (the rare hooks)
        self.measure_seconds = self.after_step_seconds = 0.0  # the hooks of every step
        self.calls = 0

    def cost(self) -> dict[str, Any]:
        """Its own seconds and calls over all hooks, and the seconds of each hook it has."""
        hooks = dict(self.seconds)
        if self.measure is not None:
            hooks["measure"] = self.measure_seconds
        if self.after_step is not None:
            hooks["after_step"] = self.after_step_seconds
        return {"seconds": sum(hooks.values()), "calls": self.calls, "hooks": hooks}

    def call(self, hook: str, arg: Any) -> Any:
        """`hook(arg)`, timed; None when the instrument has no such hook."""
        method = getattr(self.instrument, hook, None)
        if method is None:
            return None
        start = time.perf_counter()
        try:
            return method(arg)
        finally:
            self.seconds[hook] = self.seconds.get(hook, 0.0) + time.perf_counter() - start
            self.calls += 1


class Instruments:
    """The run's instruments, in config order; the loop calls them with one line per hook."""

    def __init__(self, named: Mapping[str, tuple[Any, int]]) -> None:
        """named: name -> (instrument, every_steps)."""
        self.mounted = [Mounted(name, instrument, every) for name, (instrument, every) in
                        named.items()]
        self._refresh()

    def _refresh(self) -> None:
        self._measuring = [(m, m.measure) for m in self.mounted if m.measure is not None]
        self._after = [(m, m.after_step) for m in self.mounted if m.after_step is not None]

    def mount(self, name: str, instrument: Any, every_steps: int = 1) -> None:
        """Add an instrument after the others (checkpoints: the experiment's own)."""
        self.mounted.append(Mounted(name, instrument, every_steps))
        self._refresh()

    def setup(self, context: RunContext) -> None:
        """Each instrument's setup; those that return False are left out of this run."""
        self.mounted = [m for m in self.mounted if m.call("setup", context) is not False]
        self._refresh()

    # The two hooks of every step: one loop each, the hook bound once, the time summed in place.
    def measure(self, view: StepView, row: dict[str, float], sink: Sink) -> None:
        """The due instruments' measurements of `view.step`: scalars into `row`, the rest to
        `sink`. Between backward() and step(): the parameters are those the loss was computed
        with, and .grad holds its gradients."""
        step = view.step
        for m, measure in self._measuring:
            if step % m.every_steps == 0:
                start = time.perf_counter()
                out = measure(view)
                m.measure_seconds += time.perf_counter() - start
                m.calls += 1
                if out:
                    _collect(m.prefix, out, step, row, sink)

    def after_step(self, view: StepView, sink: Sink) -> None:
        """After optimizer.step(), in mount order; each one's records logged at once, so that
        checkpoints, mounted last, hold them."""
        step = view.step
        for m, after_step in self._after:
            if step % m.every_steps == 0:
                start = time.perf_counter()
                out = after_step(view)
                m.after_step_seconds += time.perf_counter() - start
                m.calls += 1
                if out:
                    _log(m.prefix, out, step, sink)

    def finish(self, view: StepView, sink: Sink) -> dict[str, float]:
        """Once at the end, in reverse mount order, as teardown goes: the final checkpoint comes
        before what the others add at the end. Returns the scalars they logged."""
        final: dict[str, float] = {}
        for m in reversed(self.mounted):
            out = m.call("finish", view)
            if out:
                final.update(_log(m.prefix, out, view.step, sink))
        return final

    def state_dict(self) -> dict[str, Any]:
        return {m.name: m.instrument.state_dict() for m in self.mounted
                if hasattr(m.instrument, "state_dict")}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for m in self.mounted:
            if m.name in state and hasattr(m.instrument, "load_state_dict"):
                m.instrument.load_state_dict(state[m.name])

    def diagnoses(self) -> list[str]:
        """What the instruments that can say why a run diverged say (its one-line message)."""
        said = [m.instrument.diagnose() for m in self.mounted if hasattr(m.instrument, "diagnose")]
        return [sentence for sentence in said if sentence]

    def costs(self) -> dict[str, dict[str, Any]]:
        """Each instrument's own time: seconds and calls of all its hooks together, and the
        seconds of each hook."""
        return {m.name: m.cost() for m in self.mounted}

    def __contains__(self, name: str) -> bool:
        return any(m.name == name for m in self.mounted)

    def __getitem__(self, name: str) -> Any:
        """The instrument mounted as `name`; KeyError when there is none (off, or left out)."""
        for m in self.mounted:
            if m.name == name:
                return m.instrument
        raise KeyError(name)


def _log(prefix: str, out: Mapping[str, Any], step: int, sink: Sink) -> dict[str, float]:
    row: dict[str, float] = {}
    _collect(prefix, out, step, row, sink)
    if row:
        sink.log_scalars(step, row)
    return row


def _collect(prefix: str, out: Mapping[str, Any], step: int, row: dict[str, float],
             sink: Sink) -> None:
    """Scalars into the step's row; histograms, text and images straight to the sink."""
    if type(out) is Row:  # its values are numbers: no look at each one
        keys = out.keys_ if not prefix else [prefix + key for key in out.keys_]
        row.update(zip(keys, out.values_))
        return
    for key, value in out.items():
        tag = prefix + key
        if isinstance(value, str):
            sink.log_text(step, tag, value)
        elif isinstance(value, bytes):
            sink.log_image(step, tag, value)
        elif isinstance(value, torch.Tensor) and value.numel() > 1:
            sink.log_histograms(step, {tag: value})
        else:
            row[tag] = float(value)
