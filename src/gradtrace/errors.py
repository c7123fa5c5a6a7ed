"""The errors a user can cause and fix, and the exit code of each. No dependencies, so that every
layer (models, data, trainer, insight, config) can raise them without importing Hydra.

Each message is one line that names the key, the value and what is allowed.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard


class ConfigError(ValueError):
    """A config value, a combination of values, or a user's object that cannot work (exit 2)."""


class NonFiniteError(RuntimeError):
    """The loss or a gradient became NaN or Inf; training stopped before the optimiser step
    (exit 3)."""


class GradCheckError(RuntimeError):
    """trainer.grad_check.strict: autograd disagreed with a reference beyond the tolerance
    (exit 4)."""


class OutputError(RuntimeError):
    """An output location could not be written: a full disk, a folder without permission, a
    file where a folder should be (exit 2, like every problem of the environment a run is given).
    What was written before stays readable."""


class Interrupted(Exception):
    """SIGTERM or SIGINT stopped the run at the end of a step, after a checkpoint (exit 128 +
    the signal's number, as a shell reports it: 143 for SIGTERM, 130 for SIGINT)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


EXIT_CODES: dict[type[Exception], int] = {
    ConfigError: 2, NonFiniteError: 3, GradCheckError: 4, OutputError: 2,
}


def exit_code(error: BaseException) -> int | None:
    """The documented exit code of a user's error or a stop signal; None for anything else (a
    bug)."""
    if isinstance(error, Interrupted):
        return 128 + error.signum
    return next((code for kind, code in EXIT_CODES.items() if isinstance(error, kind)), None)


def one_line(error: BaseException) -> str:
    """An exception's message on one line (its type when it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


def failure(group: str, target: str, error: BaseException) -> ConfigError:
    """The one line for an error a config group's object raised: group, target, type, message."""
    return ConfigError(f"{group}: {target} failed: {type(error).__name__}: {one_line(error)}")


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise `ConfigError("<key> must be <allowed>, got <value>")` unless `ok`."""
    if not ok:
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")


def is_finite_number(x: Any) -> TypeGuard[float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


FLOAT32_MAX = 3.4028234663852886e38


def is_float32(x: Any) -> TypeGuard[float]:
    """A finite number that float32, what the parameters and the optimiser compute in, holds."""
    return is_finite_number(x) and abs(x) <= FLOAT32_MAX


def output_error(error: OSError) -> OutputError:
    """One line for an OSError met while writing a run's outputs."""
    where = error.filename or "the run folder"
    return OutputError(f"cannot write {where}: {error.strerror or error}")
