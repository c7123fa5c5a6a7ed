"""Every option of every config group composes and builds; bad values fail with clear messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CONFIGS, build, compose_config
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import ValidationError

from gradtrace.build import build_logger, build_run, make_plan
from gradtrace.errors import ConfigError

GROUPS = sorted(p.name for p in CONFIGS.iterdir() if p.is_dir())
OPTIONS = [(group, p.stem) for group in GROUPS for p in sorted((CONFIGS / group).glob("*.yaml"))]


def test_every_group_has_options():
    assert {"model", "data", "loss", "optim", "trainer", "logger"} <= set(GROUPS)


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_builds(group: str, option: str, tmp_path: Path):
    # The scalar model ignores its inputs, so it fits every data option.
    overrides = [f"{group}={option}"] if group == "model" else ["model=scalar", f"{group}={option}"]
    cfg = compose_config(*overrides)
    run = build_run(make_plan(cfg))
    logger = build_logger(run.plan, str(tmp_path), run.probe)
    logger.close()
    inputs, targets = next(run.batches)
    assert run.loss_fn(run.model(inputs), targets).ndim == 0


@pytest.mark.parametrize(
    "model,data,loss",
    [("scalar", "scalar", "MSELoss"), ("linear", "single_sample", "MSELoss"),
     ("regressor", "uniform", "L1Loss")],
)
def test_model_brings_its_worked_example(model: str, data: str, loss: str):
    cfg = compose_config(f"model={model}")
    expected = compose_config(f"model={model}", f"data={data}")
    assert cfg.data == expected.data
    assert cfg.loss._target_ == f"torch.nn.{loss}"


def test_data_and_loss_overrides_change_one_thing():
    cfg = compose_config("model=linear", "loss=mae", "data=uniform")
    assert cfg.loss._target_ == "torch.nn.L1Loss"
    assert cfg.data.samples == 1000
    assert build_run(cfg).model.weight.shape == (1, 10)  # in_features follows the data


RANGE_ERRORS = [
    ("optim.lr=-1", r"^optim\.lr must be a finite number > 0, got -1\.0$"),
    ("optim.lr=0", r"^optim\.lr must be a finite number > 0, got 0\.0$"),
    ("optim.lr=nan", r"^optim\.lr must be a finite number > 0, got nan$"),
    ("optim.lr=inf", r"^optim\.lr must be a finite number > 0, got inf$"),
    ("optim.momentum=-0.5", r"^optim\.momentum must be a finite number >= 0, got -0\.5$"),
    ("optim.nesterov=true", r"^optim\.nesterov=true needs optim\.momentum > 0"),
    ("optim.weight_decay=-1", r"^optim\.weight_decay must be a finite number >= 0"),
    ("trainer.steps=0", r"^trainer\.steps must be an integer >= 1, got 0$"),
    ("trainer.log_every_steps=0", r"^trainer\.log_every_steps must be an integer >= 1, got 0$"),
    ("trainer.device=gpu", r"^trainer\.device must be one of auto, cpu, cuda, cuda:N, got 'gpu'$"),
    ("model.init=inf", r"^model\.init must be a finite number, got inf$"),
    ("logger.flush_every_secs=0", r"^logger\.flush_every_secs must be a finite number > 0"),
]


@pytest.mark.parametrize("override,message", RANGE_ERRORS, ids=[o for o, _ in RANGE_ERRORS])
def test_out_of_range_values(override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        build(override)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["optim=adam", "optim.betas=[0.9,1.0]"],
         r"^optim\.betas must be two numbers in \[0, 1\), got \[0\.9, 1\.0\]$"),
        (["optim=adam", "optim.betas=[-0.1,0.9]"], r"^optim\.betas must be two numbers in \[0, 1\)"),
        (["optim=adam", "optim.eps=0"], r"^optim\.eps must be a finite number > 0, got 0\.0$"),
        (["model=regressor", "data.batch_size=0"],
         r"^data\.batch_size must be null \(full batch\) or an integer >= 1, got 0$"),
        (["model=regressor", "data.batch_size=1001"],
         r"^data\.batch_size must be at most the number of samples \(1000\), got 1001$"),
        (["model=regressor", "data.samples=0"], r"^data\.samples must be an integer >= 1, got 0$"),
        (["model=linear", "data=scalar"], r"^model=linear needs inputs with at least one feature"),
        (["model=regressor", "data=scalar"], r"^model=regressor needs inputs with at least one"),
        (["model=linear", "model.weight=[[1,2]]"],
         r"^model\.weight must have shape \[1, 3\] to match the data's features, got \[1, 2\]"),
        (["model=linear", "model.bias=[1,2]"], r"^model\.bias must have shape \[1\]"),
        (["model=linear", "data.inputs=[[1,2],[3]]", "data.targets=[1,2]"],
         r"^data\.inputs must be rows of numbers, all of one length"),
        (["model=linear", "data.targets=[1,2]"],
         r"^data\.targets must hold one number per input row \(1\), got shape \[2\]$"),
    ],
)
def test_bad_combinations(overrides: list[str], message: str):
    with pytest.raises(ConfigError, match=message):
        build(*overrides)


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigCompositionException) as info:
        compose_config("optim.lr=abc")
    assert isinstance(info.value.__cause__, ValidationError)
    assert "optim.lr" in str(info.value.__cause__) and "abc" in str(info.value.__cause__)


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigCompositionException) as info:
        compose_config("optim.lrr=1")
    assert "Key 'lrr' not in 'SGDConfig'" in str(info.value.__cause__)
    assert "full_key: optim.lrr" in str(info.value.__cause__)


def test_unknown_option_lists_the_allowed_ones():
    with pytest.raises(MissingConfigException, match=r"(?s)nope.*linear.*regressor.*scalar"):
        compose_config("model=nope")
