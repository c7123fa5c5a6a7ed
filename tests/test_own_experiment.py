"""docs/guide/your-own-experiment.md, as written: its files are taken from the page itself, its
commands run through the real CLI and through gradtrace.run, and the results are read back from
the event files and checked against hand derivations."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from gradtrace.errors import ConfigError
from gradtrace.setup.build import build_run
from gradtrace.setup.plan import make_plan

from conftest import BUILD_DIR, REPO, compose_config_from, run_cli, run_dirs, run_gradtrace, scalars

PAGE = REPO / "docs" / "guide" / "your-own-experiment.md"
SECTION = "## Your own experiment"


def readme_section() -> str:
    text = PAGE.read_text()
    start = text.index(SECTION)
    return text[start : text.index("\n## ", start + 1)]


def readme_files() -> dict[str, str]:
    """`my_experiment/<path>` -> content, for every file the section shows."""
    pattern = r"`my_experiment/([^`]+)`:\n\n```\w*\n(.*?)```"
    return dict(re.findall(pattern, readme_section(), flags=re.S))


def readme_commands() -> list[list[str]]:
    """The section's `gradtrace train ...` commands, as argv after `train`."""
    lines = re.findall(r"^gradtrace train (.*)$", readme_section(), flags=re.M)
    return [shlex.split(line) for line in lines]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("own") / "my_experiment"
    for name, content in readme_files().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content)
    return folder


@pytest.fixture(scope="module")
def mywork(experiment: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("mywork_under_test", experiment / "mywork.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def command_runs(experiment: Path) -> list[tuple[list[str], Path]]:
    """Every README command, run once from the experiment folder: (argv, run folder)."""
    out = []
    for argv in readme_commands():
        before = set(run_dirs(experiment))
        result = run_gradtrace(experiment, "train", *argv)
        assert result.returncode == 0, f"{argv}:\n{result.stderr}\n{result.stdout[-2000:]}"
        (new,) = set(run_dirs(experiment)) - before
        out.append((argv, new))
    return out


def test_readme_shows_the_files_and_commands():
    assert set(readme_files()) == {
        "mywork.py", "conf/model/my_mlp.yaml", "conf/loss/my_huber.yaml", "conf/optim/rmsprop.yaml",
        "conf/data/wave.yaml",
    }
    assert len(readme_commands()) == 5


def first_run(command_runs, *words: str) -> Path:
    return next(run for argv, run in command_runs if all(w in argv for w in words))


@pytest.mark.slow
def test_mlp_huber_rmsprop_on_own_data(command_runs, mywork: ModuleType):
    series = scalars(first_run(command_runs, "optim=rmsprop", "data=wave"))
    assert [s for s, _ in series["loss/train"]] == list(range(100))
    # The run's objects, rebuilt by hand in gradtrace's order: seed, data (its own generator),
    # then the model's initial values from the global generator.
    torch.manual_seed(0)
    x, y = mywork.wave(512, 0.1, seed=0)
    model = mywork.MLP(1, 32)
    expected = mywork.Huber(0.5)(model(x), y).item()
    assert series["loss/train"][0][1] == pytest.approx(expected, rel=1e-6)
    first_weight = model.net[0].weight.detach().flatten()
    logged = [series[f"param/net.0.weight[{i},0]"][0][1] for i in range(32)]
    assert logged == pytest.approx(first_weight.tolist(), rel=1e-6)
    # RMSprop's first step, alpha 0.99: v = 0.01 g**2, so p1 - p0 = -lr g / (sqrt(v) + eps),
    # which is -0.01 / 0.1 * sign(g) = -0.1 sign(g) wherever |g| >> eps.
    for i in range(32):
        g = series[f"grad/net.0.weight[{i},0]"][0][1]
        p0, p1 = (series[f"param/net.0.weight[{i},0]"][k][1] for k in (0, 1))
        if abs(g) > 1e-4:
            assert p1 - p0 == pytest.approx(-0.1 * np.sign(g), rel=1e-3)
    assert [v for _, v in series["optim/lr"]] == pytest.approx([0.01] * 100)


@pytest.mark.slow
def test_validation_and_mini_batches_of_own_data(command_runs):
    run = first_run(command_runs, "data.val_fraction=0.25")
    series = scalars(run)
    assert [s for s, _ in series["loss/val"]] == [0, 100, 200, 300, 400, 500]
    result = json.loads((run / "result.json").read_text())
    assert result["val_loss"] == pytest.approx(series["loss/val"][-1][1], rel=1e-6)
    assert result["val_loss"] < series["loss/val"][0][1] / 5  # the wave is learnt


@pytest.mark.slow
def test_own_model_combines_with_builtin_data_loss_and_optimiser(command_runs):
    run = first_run(command_runs, "data=uniform", "optim=adam")
    series = scalars(run)
    # in_features follows data=uniform's 10 features: 320 weights, logged as norms.
    assert "param_norm/net.0.weight" in series and "param/net.0.weight[0,0]" not in series
    config = (run / ".hydra" / "config.yaml").read_text()
    assert "_target_: torch.nn.L1Loss" in config and "_target_: torch.optim.Adam" in config


@pytest.mark.slow
def test_switching_a_builtin_target_from_the_command_line(command_runs):
    mlp = scalars(first_run(command_runs, "model._target_=mywork.MLP"))
    assert "param/net.0.weight[15,0]" not in mlp and "param_norm/net.0.weight" in mlp  # 16 x 10
    rmsprop = first_run(command_runs, "optim._target_=torch.optim.RMSprop")
    assert "_target_: torch.optim.RMSprop" in (rmsprop / ".hydra" / "config.yaml").read_text()


@pytest.mark.slow
def test_the_python_api_runs_the_same_experiment(experiment: Path, command_runs, monkeypatch):
    import gradtrace

    monkeypatch.chdir(experiment)
    monkeypatch.syspath_prepend(str(experiment))
    result = gradtrace.run(
        ["model=my_mlp", "loss=my_huber", "optim=rmsprop", "data=wave"],
        config_dir="conf", run_dir=experiment / "api_run", verbose=False,
    )
    cli = scalars(first_run(command_runs, "optim=rmsprop", "data=wave"))
    # The same config and seed: bitwise the same numbers, read back from each run's event file.
    assert result.history["loss/train"].values.tolist() == [v for _, v in cli["loss/train"]]
    assert result.final_loss == pytest.approx(cli["loss/train"][-1][1], rel=1e-7)
    assert isinstance(result.model, torch.nn.Module) and result.run_dir == experiment / "api_run"


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model=my_mlp", "+model.width=3"],
         r"^model: mywork\.MLP takes no argument width; it takes hidden: drop it with ~model\.width$"),
        (["model=scalar", "model._target_=mywork.MLP"],
         r"^model: mywork\.MLP takes no argument init; it takes hidden: drop it with ~model\.init$"),
        (["model=my_mlp", "~model.hidden"], r"^model: mywork\.MLP needs the argument hidden"),
        (["model=my_mlp", "model._target_=mywork.Nope"],
         r"^model\._target_=mywork\.Nope cannot be imported: mywork has no attribute Nope$"),
        (["model=my_mlp", "model._target_=nowhere.MLP"],
         r"^model\._target_=nowhere\.MLP cannot be imported: there is no module 'nowhere'"),
        (["loss=my_huber", "+loss.deltaa=2"],
         r"^loss: mywork\.Huber takes no argument deltaa \(did you mean delta\?\)"),
        (["data=wave", "data.samples=abc"],
         r"^data: mywork\.wave failed: TypeError: "),
    ],
)
def test_bad_own_options_are_one_line_before_anything_runs(
    experiment: Path, monkeypatch, overrides: list[str], message: str
):
    monkeypatch.syspath_prepend(str(experiment))
    sys.modules.pop("mywork", None)
    cfg = compose_config_from(experiment / "conf", *overrides)
    with pytest.raises(ConfigError, match=message):
        build_run(make_plan(cfg), BUILD_DIR.name)


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model=my_mlp", "optim=rmsprop", "optim.lr=-1"],
         "optim: torch.optim.RMSprop failed: ValueError: Invalid learning rate: -1"),
        (["model=regressor", "model._target_=torch.nn.Linear", "+model.out_features=1"],
         "model._target_=torch.nn.Linear returned predictions of shape [1000, 1] for inputs of "
         "shape [1000, 10] and targets of shape [1000]: loss._target_=torch.nn.L1Loss needs one "
         "prediction per target, of shape [1000] (return out.squeeze(-1))"),
    ],
)
def test_own_errors_through_the_cli_are_one_line_exit_2(experiment: Path, overrides, message):
    before = set(run_dirs(experiment))
    result = run_cli(experiment, "--config-dir", "conf", *overrides)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    (error,) = [line for line in output.splitlines() if "[ERROR]" in line]
    assert error.endswith(message)
    assert "Traceback" not in output
    (run,) = set(run_dirs(experiment)) - before
    assert not list(run.glob("events.out.tfevents.*"))  # stopped before the event file
