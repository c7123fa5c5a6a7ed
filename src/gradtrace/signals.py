"""Stop signals: SIGTERM (kill, docker stop, a SLURM time limit) and SIGINT (Ctrl-C) ask the run
to stop at the end of its current step instead of killing it, so that it can write every logged
step, a checkpoint and result.json first. A second Ctrl-C stops at once (KeyboardInterrupt)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Callable: True once a stop signal has arrived. `signum` says which."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None

    def __call__(self) -> bool:
        return self.signum is not None

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
        previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
