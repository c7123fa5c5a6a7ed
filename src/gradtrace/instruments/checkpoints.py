"""checkpoints: the run's whole state (gradtrace.training.checkpoint) every `every_steps` steps
(0: never on the way), after the last step, and when the run stops early (a signal, an
instrument's request). Always on, built from trainer.checkpoint: a run that survives a kill
is not an option a multi-select should drop."""

from __future__ import annotations

from typing import Any, Callable, Optional

from gradtrace.training import checkpoint
from gradtrace.training.instruments import StepView

# (steps done, the last step's loss, the best loss) -> the state to save; None: not here (ranks
# other than 0 only hand rank 0 their random generators' states).
Capture = Callable[[int, float, float], Optional[dict[str, Any]]]


class Checkpoints:
    def __init__(self, run_dir: str, every_steps: int, keep: int, capture: Capture) -> None:
        self.run_dir, self.every_steps, self.keep, self.capture = run_dir, every_steps, keep, capture
        self.last_saved = -1  # steps done at the last save

    def after_step(self, view: StepView) -> None:
        done = view.step + 1
        if self.every_steps and done % self.every_steps == 0:
            self.save(done, view)

    def finish(self, view: StepView) -> None:
        self.save(view.step, view)  # in finish, view.step is the number of steps done

    def save(self, done: int, view: StepView) -> None:
        if done == self.last_saved:
            return  # already saved at this step
        state = self.capture(done, view.loss_value, view.best_loss)
        self.last_saved = done
        if state is not None:
            checkpoint.save(self.run_dir, state, self.keep)
