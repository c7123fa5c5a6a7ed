"""The docs hold: README stays short and every link in it and in docs/ resolves; the commands of
the pages run as written (in a fresh folder, through the real `gradtrace` command) and do what
the text around them says."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_dirs, run_gradtrace, scalars

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings."""
    headings = re.findall(r"^#+ (.*)$", page.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_readme_is_at_most_300_lines():
    assert len((REPO / "README.md").read_text().splitlines()) <= 300


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_every_link_resolves(page: Path):
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor:
            assert anchor in anchors(linked), f"{page.name}: {target}"


def test_every_docs_page_is_linked_from_the_readme():
    readme = (REPO / "README.md").read_text()
    pages = {p.relative_to(REPO).as_posix() for p in PAGES[1:]}
    assert {p for p in pages if p not in readme} == set()


def code_lines(page: Path, heading: str, start: str) -> list[str]:
    """The lines beginning with `start` in the code blocks of `heading`'s section of `page`."""
    text = page.read_text()
    begin = text.index(f"{heading}\n")
    level = heading.split(" ")[0]
    end = text.find(f"\n{level} ", begin + 1)
    section = text[begin : end if end != -1 else None]
    blocks = re.findall(r"```\w*\n(.*?)```", section, flags=re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()
            if line.startswith(start)]


def gradtrace(folder: Path, command: str):
    argv = shlex.split(command)
    assert argv[0] == "gradtrace"
    return run_gradtrace(folder, *argv[1:])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs")


OWN = REPO / "docs" / "guide" / "your-own-experiment.md"


@pytest.mark.slow
def test_data_from_files_as_written(folder: Path):
    import subprocess
    import sys

    (make,) = code_lines(OWN, "## Data from files", "python ")
    done = subprocess.run([sys.executable, *shlex.split(make)[1:]], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    commands = code_lines(OWN, "## Data from files", "gradtrace ")
    assert len(commands) == 2
    for command in commands:
        done = gradtrace(folder, command)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
    x = np.loadtxt(folder / "my.csv", delimiter=",", skiprows=1)
    assert x.shape == (200, 4)
    np.testing.assert_allclose(x[:, 3], x[:, :3] @ [1.5, -2.0, 0.5] + 0.3)
    first, second = run_dirs(folder)
    # 500 steps of gradient descent recover the numbers the file was made with.
    learnt = json.loads((first / "result.json").read_text())
    assert learnt["final_loss"] < 1e-6
    text = (first / "train.log").read_text()
    printed = {name: [float(v) for v in re.search(rf"- {name} = (.*)$", text, re.M).group(1)
                      .split(", ")] for name in ("weight", "bias")}
    # Float32 gradient descent, 500 steps: within 1e-3 of the numbers the file was made with.
    np.testing.assert_allclose(printed["weight"], [1.5, -2.0, 0.5], atol=1e-3)
    np.testing.assert_allclose(printed["bias"], [0.3], atol=1e-3)
    assert "param/weight[0,1]" in scalars(second) and "param/weight[0,2]" not in scalars(second)


@pytest.mark.slow
def test_validation_as_written(folder: Path):
    if not (folder / "my_val.csv").exists():  # written by the first command of Data from files
        test_data_from_files_as_written(folder)
    commands = [c for c in code_lines(OWN, "## Validation", "gradtrace ") if " -m " not in c]
    assert len(commands) == 2
    for command in commands:
        before = set(run_dirs(folder))
        done = gradtrace(folder, command)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        (new,) = set(run_dirs(folder)) - before
        series = scalars(new)
        assert [s for s, _ in series["loss/val"]] == [0, 100]  # every 100 steps and at the end
        assert json.loads((new / "result.json").read_text())["val_loss"] == pytest.approx(
            series["loss/val"][-1][1]
        )


@pytest.mark.slow
def test_the_first_sweep_completes_as_the_readme_says(folder: Path):
    (command,) = code_lines(REPO / "README.md", "## A first sweep", "gradtrace train -m ")
    done = gradtrace(folder, command)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "6 jobs: 6 completed, 0 failed" in done.stdout + done.stderr


INSTRUMENTS = REPO / "docs" / "instruments.md"


@pytest.mark.slow
def test_the_instruments_worked_example_as_written(tmp_path: Path):
    text = INSTRUMENTS.read_text()
    (code,) = re.findall(r"`mylab/watch.py`:\n\n```python\n(.*?)```", text, flags=re.S)
    (yaml,) = re.findall(r"`conf/instruments/watch.yaml`[^\n]*\n\n```yaml\n(.*?)```", text,
                         flags=re.S)
    (tmp_path / "mylab").mkdir()
    (tmp_path / "mylab" / "__init__.py").write_text("")
    (tmp_path / "mylab" / "watch.py").write_text(code)
    (tmp_path / "conf" / "instruments").mkdir(parents=True)
    (tmp_path / "conf" / "instruments" / "watch.yaml").write_text(yaml)
    commands = code_lines(INSTRUMENTS, "## Your own: a worked example", "gradtrace ")
    assert len(commands) == 2
    for command, lr, cosine in zip(commands, (0.01, 0.05), (1.0, -1.0)):
        before = set(run_dirs(tmp_path))
        done = gradtrace(tmp_path, command)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        (run,) = set(run_dirs(tmp_path)) - before
        series = {tag: dict(points) for tag, points in scalars(run).items()}
        assert sorted(series["watch/update_ratio"]) == list(range(0, 50, 5))
        assert sorted(series["watch/cosine"]) == list(range(5, 50, 5))
        # The error pred - y is multiplied by 1 - 30 lr each step: 0.7 or -0.5 (the page's
        # derivation), so successive gradients are parallel (+1) or opposite (-1).
        assert list(series["watch/cosine"].values()) == pytest.approx([cosine] * 9, abs=1e-5)
        # lr |grad| / |param|, from the elements the built-in instrument logged at that step.
        names = ["weight[0,0]", "weight[0,1]", "weight[0,2]", "bias[0]"]
        for step, ratio in series["watch/update_ratio"].items():
            grad = np.array([series[f"grad/{n}"][step] for n in names])
            param = np.array([series[f"param/{n}"][step] for n in names])
            assert ratio == pytest.approx(lr * np.linalg.norm(grad) / np.linalg.norm(param),
                                          rel=1e-5)
