"""End to end through the real CLI: what a user types, what lands in outputs/, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.plugins.hparams import metadata as hparams_metadata

from conftest import TRAIN_SCRIPT, event_accumulator, run_dirs, scalars

pytestmark = pytest.mark.slow  # every test here starts processes


def only_run(tmp_path: Path) -> Path:
    (run,) = run_dirs(tmp_path)
    return run


def test_default_run_reproduces_the_scalar_example(cli, tmp_path: Path):
    result = cli()
    assert result.returncode == 0, result.stderr
    run = only_run(tmp_path)
    assert run.parent == tmp_path / "outputs" / "runs"
    assert (run / ".hydra" / "config.yaml").is_file() and (run / "train.log").is_file()
    series = scalars(run)
    # w = 3: loss 9, gradient 6; sgd lr 0.01: w = 3 - 0.01 * 6 = 2.94, then 2.94 * 0.98, ...
    assert series["loss/train"][0] == (0, 9.0)
    assert series["grad/w"][0] == (0, 6.0)
    assert series["param/w"][0] == (0, 3.0)
    w = np.array([v for _, v in series["param/w"]])
    np.testing.assert_allclose(w, 3.0 * 0.98 ** np.arange(100), rtol=1e-5)
    final = series["loss/final"]
    assert final == [(99, pytest.approx((3.0 * 0.98**99) ** 2, rel=1e-5))]
    assert series["loss/best"][0][1] == pytest.approx(final[0][1])
    # the console summary: final loss, the parameter, the run folder
    log = result.stdout + result.stderr
    assert f"final loss {(3.0 * 0.98**99) ** 2:.6g}" in log
    assert f"w = {3.0 * 0.98**100:.6g}" in log
    assert f"run folder: {run}" in log


def test_config_text_and_hparams_are_in_the_run_folder(cli, tmp_path: Path):
    assert cli("model=linear", "optim.lr=0.02", "trainer.steps=3").returncode == 0
    accumulator = event_accumulator(only_run(tmp_path))
    config_text = accumulator.Tensors("config")[0].tensor_proto.string_val[0].decode()
    assert "    lr: 0.02" in config_text and "_target_: gradtrace.components.models.Linear" in config_text
    content = accumulator.SummaryMetadata(hparams_metadata.SESSION_START_INFO_TAG)
    info = hparams_metadata.parse_session_start_info_plugin_data(content.plugin_data.content)
    hparams = {k: v.string_value or v.number_value for k, v in info.hparams.items()}
    assert hparams["model"] == "linear" and hparams["optim"] == "sgd"
    assert hparams["optim.lr"] == pytest.approx(0.02) and hparams["trainer.steps"] == 3
    content = accumulator.SummaryMetadata(hparams_metadata.EXPERIMENT_TAG)
    experiment = hparams_metadata.parse_experiment_plugin_data(content.plugin_data.content)
    assert [m.name.tag for m in experiment.metric_infos] == ["loss/final", "loss/best"]


def test_linear_example_read_back_from_the_event_file(cli, tmp_path: Path):
    result = cli("model=linear", "model.weight=[[0.5,0.5,0.5]]", "model.bias=[-0.5]",
                 "trainer.steps=2")
    assert result.returncode == 0, result.stderr
    series = scalars(only_run(tmp_path))
    # pred 2.5, y 5: loss 6.25, gradients 2 (2.5 - 5) [1, 2, 3] = [-5, -10, -15] and -5
    assert series["loss/train"][0] == (0, 6.25)
    grads = [series[f"grad/weight[0,{i}]"][0][1] for i in range(3)] + [series["grad/bias[0]"][0][1]]
    assert grads == [-5.0, -10.0, -15.0, -5.0]
    # after one step with lr 0.01: w = [0.55, 0.6, 0.65], b = -0.45, pred 3.25, loss 3.0625
    after = [series[f"param/weight[0,{i}]"][1][1] for i in range(3)] + [series["param/bias[0]"][1][1]]
    assert after == pytest.approx([0.55, 0.6, 0.65, -0.45])
    assert series["loss/train"][1][1] == pytest.approx(3.0625)


def test_regressor_gradient_read_back_from_the_event_file(cli, tmp_path: Path):
    assert cli("model=regressor", "trainer.steps=1", "seed=3").returncode == 0
    series = scalars(only_run(tmp_path))
    # The run's data and parameters as specified: uniform [0, 1) from the seed.
    generator = torch.Generator().manual_seed(3)
    x = torch.rand(1000, 10, generator=generator).double().numpy()
    y = torch.rand(1000, generator=generator).double().numpy()
    torch.manual_seed(3)
    p = torch.rand(10).double().numpy()
    assert [series[f"param/params[{i}]"][0][1] for i in range(10)] == p.astype(np.float32).tolist()
    expected = (np.sign(x @ p - y)[:, None] * x).mean(axis=0)  # (1/N) sum sign(pred - y) x
    logged = [series[f"grad/params[{i}]"][0][1] for i in range(10)]
    np.testing.assert_allclose(logged, expected, rtol=1e-5, atol=1e-7)
    assert series["loss/train"][0][1] == pytest.approx(np.abs(x @ p - y).mean(), rel=1e-6)


@pytest.mark.parametrize(
    "override,words",
    [
        ("trainer.steps=abc", ["trainer.steps", "'abc'", "could not be converted to Integer"]),
        ("trainer.stepz=1", ["trainer.stepz", "Key 'stepz' not in 'TrainerConfig'"]),
        ("optim.lrr=1", ["Could not override 'optim.lrr'", "+optim.lrr=1"]),
        ("model=nope", ["Could not find 'model/nope'", "linear", "regressor", "scalar"]),
    ],
)
def test_typos_fail_with_hydra_messages(cli, tmp_path: Path, override: str, words: list[str]):
    result = cli(override)
    assert result.returncode == 1
    for word in words:
        assert word in result.stderr
    assert not list(tmp_path.rglob("events.out.tfevents.*"))


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["optim.lr=-1"], "optim.lr must be a number > 0 and <= 3.4e38 (float32), got -1"),
        (["optim.lr=abc"], "optim.lr must be a number > 0 and <= 3.4e38 (float32), got 'abc'"),
        (["+optim.lrr=1"], "optim: gradtrace.components.optim.SGD takes no argument lrr (did you mean lr?)"),
        (["optim=adam", "optim.betas=[0.9,1.5]"], "optim.betas must be two numbers in [0, 1)"),
        (["model=regressor", "data.batch_size=2000"],
         "data.batch_size must be at most the number of training samples (1000), got 2000"),
        (["model=linear", "data=scalar"], "model=linear needs inputs with at least one feature"),
    ],
)
def test_out_of_range_exits_2_with_one_line(cli, tmp_path: Path, overrides, message):
    result = cli(*overrides)
    assert result.returncode == 2
    output = result.stdout + result.stderr
    (error,) = [line for line in output.splitlines() if "[ERROR]" in line]
    assert message in error
    assert "Traceback" not in output
    assert not list(tmp_path.rglob("events.out.tfevents.*"))  # nothing written before the check


def test_divergence_exits_3_and_keeps_what_was_logged(cli, tmp_path: Path):
    result = cli("model=linear", "optim.lr=1", "trainer.steps=500")
    assert result.returncode == 3
    # The one line is on stderr (and not on stdout, which keeps the log lines).
    (error,) = [line for line in result.stderr.splitlines() if "[ERROR]" in line]
    assert "[ERROR]" not in result.stdout
    assert "non-finite value before the optimiser step: loss = inf" in error
    failed = int(error.split("step ")[1].split(":")[0])
    losses = scalars(only_run(tmp_path))["loss/train"]
    assert [s for s, _ in losses] == list(range(failed + 1))


def test_multirun_gives_one_folder_per_job(cli, tmp_path: Path):
    result = cli("-m", "optim.lr=0.001,0.01,0.1", "trainer.steps=5")
    assert result.returncode == 0, result.stderr
    runs = run_dirs(tmp_path)
    assert [r.name for r in runs] == [
        "0_optim.lr=0.001,trainer.steps=5",
        "1_optim.lr=0.01,trainer.steps=5",
        "2_optim.lr=0.1,trainer.steps=5",
    ]
    for run, lr in zip(runs, (0.001, 0.01, 0.1)):
        series = scalars(run)
        assert series["param/w"][1][1] == pytest.approx(3 - lr * 6)  # w1 = w0 - lr * 2 w0


def test_two_runs_started_together_get_two_folders(tmp_path: Path):
    command = [sys.executable, str(TRAIN_SCRIPT), "trainer.steps=3"]
    processes = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(2)]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    runs = run_dirs(tmp_path)
    assert len(runs) == 2
    for run in runs:
        assert len(list(run.glob("events.out.tfevents.*"))) == 1


def test_an_override_of_300_characters_runs_in_one_short_folder(cli, tmp_path: Path):
    folder = tmp_path / ("d" * 120) / ("e" * 120)
    folder.mkdir(parents=True)
    data = folder / "points.csv"
    data.write_text("x,y\n1,2\n2,4\n")
    override = f"data.path={data}"
    assert len(override) > 300
    result = cli("model=linear", "data=file", override, "data.target=y", "trainer.steps=3")
    assert result.returncode == 0, result.stderr
    run = only_run(tmp_path)
    assert run.parent == tmp_path / "outputs" / "runs"  # one folder: no path from the value
    assert len(run.name) < 130
    assert override in (run / ".hydra" / "overrides.yaml").read_text()  # the whole of it
    assert [s for s, _ in scalars(run)["loss/train"]] == [0, 1, 2]
