"""gradtrace: configurable gradient-descent experiments with every gradient in TensorBoard.

    import gradtrace
    result = gradtrace.run(["model=linear", "optim.lr=0.1"])   # see gradtrace.api

Importing the package loads nothing heavy: `run` brings in Hydra when first used, so that the
models, data, trainer and insight modules import without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gradtrace.errors import ConfigError, GradCheckError, Interrupted, NonFiniteError, OutputError

if TYPE_CHECKING:
    from gradtrace.api import RunResult, run

__version__ = "0.1.0"
__all__ = [
    "ConfigError", "GradCheckError", "Interrupted", "NonFiniteError", "OutputError", "RunResult",
    "run", "__version__",
]


def __getattr__(name: str) -> Any:
    if name in ("run", "RunResult"):
        from gradtrace import api

        return getattr(api, name)
    raise AttributeError(f"module 'gradtrace' has no attribute {name!r}")
