"""The layers hold in the imports: the parts below the config layer load without Hydra or
TensorBoard, no module imports one that imports it back (counting imports inside functions too),
and every package under src/ ships in the wheel."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from conftest import REPO

SRC = REPO / "src"
# The loop's layer and everything it runs: neither Hydra (the config layer) nor TensorBoard (one
# logger among others) is loaded by importing them.
BELOW_CONFIG = [
    "gradtrace", "gradtrace.errors", "gradtrace.components.models", "gradtrace.components.data",
    "gradtrace.components.files", "gradtrace.components.optim", "gradtrace.training.probe",
    "gradtrace.training.loop", "gradtrace.training.instruments", "gradtrace.training.report",
    "gradtrace.training.checkpoint", "gradtrace.loggers", "gradtrace.instruments.elements",
    "gradtrace.instruments.histograms", "gradtrace.instruments.validation",
    "gradtrace.instruments.gradcheck", "gradtrace.instruments.explain",
    "gradtrace.instruments.landscape", "gradtrace.instruments.checkpoints",
    "gradtrace.insight.gradcheck", "gradtrace.insight.explain", "gradtrace.insight.landscape",
    "gradtrace.insight.trajectory", "gradtrace.components.tasks", "gradtrace.components.networks",
    "gradtrace.components.datasets", "gradtrace.components.losses", "gradtrace.components.metrics",
    "gradtrace.components.schedules", "gradtrace.training.objective", "gradtrace.instruments.metrics",
    "gradtrace.components.objectives", "gradtrace.instruments.curvature",
    "gradtrace.instruments.optimum",
]


@pytest.mark.slow
def test_the_loop_and_its_instruments_import_without_hydra_or_tensorboard():
    code = (
        f"import importlib, sys\n"
        f"for name in {BELOW_CONFIG!r}: importlib.import_module(name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & "
        f"{{'hydra', 'omegaconf', 'tensorboard'}}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def module_name(path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path, modules: set[str]) -> set[str]:
    """The gradtrace modules `path` imports anywhere in it, functions included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in modules}


def test_no_import_cycles():
    paths = sorted(SRC.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): imports(p, modules) - {module_name(p)} for p in paths}
    # The package's own __init__ only re-exports (run: gradtrace.api); every submodule loads it
    # first anyway, so its edges are not the layering this checks.
    graph["gradtrace"] = set()

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return path + [start]
                if nxt not in path:
                    stack.append((nxt, path + [nxt]))
        return None

    cycles = [c for m in graph if (c := cycle_from(m))]
    assert not cycles, " -> ".join(cycles[0])


def test_every_package_is_found_for_the_wheel():
    """setuptools finds packages by their __init__.py: a folder of modules without one would be
    left out of the wheel, and an installed gradtrace would miss it."""
    folders = {p.parent for p in (SRC / "gradtrace").rglob("*.py")}
    assert all((folder / "__init__.py").is_file() for folder in folders), folders
