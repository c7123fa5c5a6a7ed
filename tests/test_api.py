"""The Python API: gradtrace.run composes the CLI's configs from any folder, writes the same run
folder, returns the history, and raises the CLI's errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

import gradtrace
from gradtrace.errors import ConfigError, OutputError

from conftest import scalars

LINEAR = ["model=linear", "model.weight=[[0.5,0.5,0.5]]", "model.bias=[-0.5]", "optim.lr=0.01"]


@pytest.mark.slow
def test_a_notebook_snippet_from_another_folder(tmp_path: Path):
    snippet = textwrap.dedent(f"""
        import json
        import gradtrace

        result = gradtrace.run({LINEAR + ["trainer.steps=2"]!r}, verbose=False)
        loss = result.history["loss/train"]
        print(json.dumps({{"steps": loss.steps.tolist(), "loss": loss.values.tolist(),
                           "final": result.final_loss, "run_dir": str(result.run_dir)}}))
    """)
    done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    # pred 2.5, y 5: loss 6.25; one SGD step (lr 0.01) gives pred 3.25, loss (3.25 - 5)**2.
    assert out["steps"] == [0, 1]
    assert out["loss"] == [6.25, pytest.approx(3.0625, rel=1e-6)]
    assert out["final"] == pytest.approx(3.0625, rel=1e-6)
    run_dir = tmp_path / out["run_dir"]  # outputs/runs/... under the folder it ran from
    assert run_dir.parent == tmp_path / "outputs" / "runs"
    for name in ("result.json", "train.log", ".hydra/config.yaml", ".hydra/overrides.yaml",
                 "landscape.png"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "result.json").read_text())["status"] == "completed"


def test_history_is_every_logged_tag_as_tensorboard_reads_it(tmp_path: Path):
    result = gradtrace.run([*LINEAR, "trainer.steps=5"], run_dir=tmp_path, verbose=False)
    expected = scalars(tmp_path)  # TensorBoard's own reader
    assert set(result.history) == set(expected)
    for tag, points in expected.items():
        assert result.history[tag].steps.tolist() == [s for s, _ in points], tag
        assert result.history[tag].values.tolist() == [v for _, v in points], tag
    assert result.steps == 5 and result.val_loss is None
    assert result.best_loss == min(result.history["loss/train"].values)
    assert result.model.weight.shape == (1, 3)


def test_bad_input_raises_the_clis_errors_and_records_the_failure(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^optim\.lr must be a number > 0 and <= 3\.4e38 "
                                          r"\(float32\), got -1$"):
        gradtrace.run(["optim.lr=-1"], run_dir=tmp_path, verbose=False)
    failed = json.loads((tmp_path / "result.json").read_text())
    assert failed["status"] == "failed" and failed["error"].startswith("optim.lr must be")
    assert not list(tmp_path.glob("events.out.tfevents.*"))
    with pytest.raises(ConfigCompositionException, match="trainer.stepz"):
        gradtrace.run(["trainer.stepz=1"], run_dir=tmp_path, verbose=False)
    with pytest.raises(TypeError, match="list of strings"):
        gradtrace.run("model=linear", run_dir=tmp_path)  # type: ignore[arg-type]


@pytest.mark.parametrize("overrides,message", [
    ([1, 2], r"^overrides must be a list of strings such as 'optim\.lr=0\.1', got 1 \(int\)$"),
    (5, r"^overrides must be a list of strings such as 'optim\.lr=0\.1', got int$"),
])
def test_overrides_of_the_wrong_type_are_one_plain_line(overrides, message: str, tmp_path: Path):
    with pytest.raises(TypeError, match=message):
        gradtrace.run(overrides, run_dir=tmp_path)


def test_a_config_dir_that_is_not_there_is_refused(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^config_dir='/nonexistent/conf' is not a folder"):
        gradtrace.run(["trainer.steps=1"], run_dir=tmp_path, config_dir="/nonexistent/conf")
    assert list(tmp_path.iterdir()) == []


def test_a_run_dir_that_is_a_file_is_an_output_error(tmp_path: Path):
    (tmp_path / "plain").write_text("mine")
    with pytest.raises(OutputError, match=r"it is a file, not a folder"):
        gradtrace.run(["trainer.steps=1"], run_dir=tmp_path / "plain")
    assert (tmp_path / "plain").read_text() == "mine"
