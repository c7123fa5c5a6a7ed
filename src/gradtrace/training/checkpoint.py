"""Checkpoints: everything a run's future depends on, written atomically and checked on load.

A checkpoint after k steps holds the model's and the optimiser's state; every random number
generator (torch's CPU and CUDA ones, NumPy's and Python's global ones, the mini-batches' own); the
mini-batch order and position; k and the best loss so far; the landscape's trajectory; and where
the event file stood once steps 0..k-1 were written. A resumed run truncates the event file there
and goes on from step k, so every step is logged once, and every value, like the final
parameters, is bitwise what the uninterrupted run gives.

A file is b"gradtrace-checkpoint 1 <sha256 of the rest>\\n" followed by torch.save's bytes. It is
written to a temporary file in the same folder, fsynced, then renamed over its final name, so a
kill or a full disk never leaves half a checkpoint under a checkpoint's name; it is loaded with
weights_only=True once its checksum matches. The newest `keep` are kept.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
import re
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch

from gradtrace.atomic import write_atomically

log = logging.getLogger(__name__)

FOLDER = "checkpoints"
MAGIC = b"gradtrace-checkpoint 1 "
NAME = re.compile(r"^step-(\d+)\.ckpt$")


class DamagedCheckpoint(Exception):
    """A checkpoint file whose header or checksum does not match, or that torch cannot read."""


def save(run_dir: str | Path, state: dict[str, Any], keep: int) -> Path:
    """Write `state` as checkpoints/step-<k>.ckpt (k = state["step"]); delete all but the
    newest `keep`."""
    folder = Path(run_dir) / FOLDER
    folder.mkdir(exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    path = folder / f"step-{state['step']:09d}.ckpt"
    write_atomically(path, MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    for old in checkpoints(run_dir)[keep:]:
        old.unlink(missing_ok=True)
    return path


def checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's checkpoint files, newest (most steps) first."""
    folder = Path(run_dir) / FOLDER
    found = [p for p in folder.glob("step-*.ckpt") if NAME.match(p.name)] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(NAME.match(p.name).group(1)), reverse=True)  # type: ignore[union-attr]


def read(path: Path) -> dict[str, Any]:
    """The state in `path`; DamagedCheckpoint when its header or checksum is wrong."""
    data = path.read_bytes()
    header, newline, payload = data.partition(b"\n")
    if not header.startswith(MAGIC) or not newline:
        raise DamagedCheckpoint("not a gradtrace checkpoint (no header)")
    if hashlib.sha256(payload).hexdigest().encode() != header[len(MAGIC) :]:
        raise DamagedCheckpoint("its checksum does not match its contents")
    try:
        state = torch.load(io.BytesIO(payload), weights_only=True)
    except Exception as error:  # a format torch cannot read, despite the checksum
        raise DamagedCheckpoint(f"torch cannot read it: {error}") from None
    if not isinstance(state, dict) or "step" not in state:
        raise DamagedCheckpoint("it holds no run state")
    return state


def newest_valid(run_dir: str | Path) -> Optional[tuple[Path, dict[str, Any]]]:
    """The newest checkpoint that reads back intact, with its state; each damaged newer one is
    reported on the log. None when there is none."""
    for path in checkpoints(run_dir):
        try:
            return path, read(path)
        except (DamagedCheckpoint, OSError) as error:
            log.warning("checkpoint %s is damaged (%s): using the one before it", path, error)
    return None


# --- what a checkpoint holds -----------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """torch's CPU and CUDA generators, NumPy's and Python's global ones (a user's model or data
    may draw from any of them)."""
    kind, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), position, has_gauss,
                  cached],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(state["python"])


def batch_state(batches: Iterator[Any]) -> Optional[dict[str, Any]]:
    """The mini-batch stream's position (None for full batches, which have no state)."""
    state_dict = getattr(batches, "state_dict", None)
    return state_dict() if callable(state_dict) else None


def set_batch_state(batches: Iterator[Any], state: Optional[dict[str, Any]]) -> None:
    """Put the stream back where `batch_state` found it."""
    if state is not None:
        batches.load_state_dict(state)  # type: ignore[attr-defined]
