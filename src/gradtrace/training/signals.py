"""Stop signals: SIGTERM (kill, docker stop, a SLURM time limit) and SIGINT (Ctrl-C) ask the run
to stop at the end of its current step instead of killing it, so that it can write every logged
step, a checkpoint and result.json first. A second Ctrl-C stops at once (KeyboardInterrupt).

Under submitit (hydra/launcher=slurm, slurm_local), the signal it uses to say a job is about to be
preempted or to time out (SIGUSR2) is caught the same way; once the run has stopped and saved,
`pass_on` hands it to submitit, which requeues the job: the requeued job finds its checkpoint and
goes on from there (gradtrace.commands.train).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

SIGNALS = (signal.SIGTERM, signal.SIGINT)
REQUEUE_HANDLER = "checkpoint_and_try_requeue"  # submitit's handler of its preemption signal


_EARLY: list[int] = []  # stop signals that came before a run's StopRequest was installed


def catch_early() -> None:
    """From the very start of `gradtrace train`, before torch and Hydra are imported (seconds):
    a stop signal then is kept, not fatal, and the run's StopRequest takes it over, so that the
    run stops after its first step with a checkpoint, result.json and exit 143 (or 130) like at
    any other moment."""
    if threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, lambda signum, frame: _EARLY.append(signum))


class StopRequest:
    """Why the run should stop after its current step: "signal" once a stop signal has arrived
    (`signum` says which), or the reason an instrument gave; None: go on. One path for both."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self.requested: Optional[str] = None  # an instrument's reason, e.g. "early_stopping"
        self.requeue_signals: list[int] = []

    def reason(self) -> Optional[str]:
        return "signal" if self.signum is not None else self.requested

    def request(self, reason: str) -> None:
        """An instrument's stop (StepView.request_stop); the first reason given stands."""
        if self.requested is None:
            self.requested = reason

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: the user does not want to wait
        self.signum = signum

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        """Catch the signals while inside; only the main thread can (elsewhere, a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        self.requeue_signals = [
            s for s in (signal.SIGUSR1, signal.SIGUSR2)
            if getattr(signal.getsignal(s), "__name__", "") == REQUEUE_HANDLER
        ]
        previous = {s: signal.signal(s, self._handle) for s in (*SIGNALS, *self.requeue_signals)}
        if _EARLY and self.signum is None:  # one that came while the process started
            self.signum = _EARLY[-1]
            _EARLY.clear()
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def pass_on(self) -> None:
        """After the run has stopped and saved, and outside `installed`: give a preemption signal
        to the job scheduler's own handler, which requeues the job (and exits)."""
        if self.signum is not None and self.signum in self.requeue_signals:
            signal.raise_signal(self.signum)
