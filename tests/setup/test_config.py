"""Every option of every config group composes and builds; groups combine; bad values fail with
clear messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import ValidationError

from gradtrace.errors import ConfigError
from gradtrace.setup.build import build_logger
from gradtrace.setup.folders import folder_suffix
from gradtrace.setup.plan import make_plan

from conftest import CONFIGS, build, compose_config

GROUPS = sorted(p.name for p in CONFIGS.iterdir() if p.is_dir() and p.name != "hydra")
OPTIONS = [(group, p.stem) for group in GROUPS for p in sorted((CONFIGS / group).glob("*.yaml"))]


INSTRUMENT_NEEDS = {  # what makes each built-in instrument apply to a run
    "histograms": ["trainer.log_elements_max=4"],  # a tensor too large for scalars
    "validation": ["data.val_fraction=0.5"],
    "explain": ["trainer.explain_steps=1"],
    "metrics": ["metrics=[mae]"],
}


def option_overrides(group: str, option: str, tmp_path: Path) -> list[str]:
    """Overrides that select `option`, plus what it needs to build (data=file: a file)."""
    # The scalar model ignores its inputs, so it fits every data option.
    overrides = [f"{group}={option}"] if group == "model" else ["model=scalar", f"{group}={option}"]
    if (group, option) == ("loss", "cross_entropy"):  # class logits: a classifier
        overrides = ["model=logistic", f"{group}={option}"]
    if group == "experiment":  # it picks the model itself
        overrides = [f"{group}={option}"]
    if group == "instruments":  # each switched on, on a run it applies to
        model = "quadratic" if option == "optimum" else "regressor"  # it needs a known optimum
        overrides = [f"model={model}", f"instruments=[{option}]",
                     f"instruments.{option}.every_steps=1", *INSTRUMENT_NEEDS.get(option, [])]
    if (group, option) == ("data", "file"):
        path = tmp_path / "points.csv"
        path.write_text("x,y\n1,2\n3,4\n")
        overrides += [f"data.path={path}", "data.target=y"]
    return overrides


def test_every_group_has_options():
    assert {"model", "data", "loss", "optim", "trainer", "logger", "instruments"} <= set(GROUPS)


@pytest.mark.parametrize("group,option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_builds(group: str, option: str, tmp_path: Path):
    run = build(*option_overrides(group, option, tmp_path))
    logger = build_logger(run.plan, str(tmp_path))
    logger.close()
    if group == "instruments":
        assert [m.name for m in run.instruments.mounted] == [option]  # set up on the run
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
    assert build("model=linear", "loss=mae", "data=uniform").model.weight.shape == (1, 10)


def test_gradtraces_own_data_keys_are_in_every_data_option():
    for option in ("scalar", "single_sample", "uniform", "file"):
        data = compose_config(f"data={option}").data
        assert data.batch_size is None and data.val_fraction == 0.0 and data.val_path is None


def test_each_default_lives_in_one_place():
    # The trainer and landscape options only name their schema; the values are its defaults.
    for group in ("trainer", "landscape"):
        for path in (CONFIGS / group).glob("*.yaml"):
            lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
            assert [line for line in lines if line] == ["defaults:", f"- /schema/{group}/{group}@_here_"]


RANGE_ERRORS = [
    ("optim.lr=-1", r"^optim\.lr must be a number > 0 and <= 3\.4e38 \(float32\), got -1$"),
    ("optim.lr=0", r"^optim\.lr must be a number > 0 and <= 3\.4e38 \(float32\), got 0$"),
    ("optim.lr=nan", r"^optim\.lr must be a number > 0 and <= 3\.4e38 \(float32\), got nan$"),
    ("optim.lr=inf", r"^optim\.lr must be a number > 0 and <= 3\.4e38 \(float32\), got inf$"),
    ("optim.lr=abc", r"^optim\.lr must be a number > 0 and <= 3\.4e38 \(float32\), got 'abc'$"),
    ("optim.momentum=-0.5", r"^optim\.momentum must be a number >= 0 and <= 3\.4e38 \(float32\), got -0\.5$"),
    ("optim.nesterov=true", r"^optim\.nesterov=true needs optim\.momentum > 0"),
    ("optim.weight_decay=-1", r"^optim\.weight_decay must be a number >= 0"),
    ("trainer.steps=0", r"^trainer\.steps must be an integer >= 1, got 0$"),
    ("trainer.log_every_steps=0", r"^trainer\.log_every_steps must be an integer >= 1, got 0$"),
    ("trainer.val_every_steps=0", r"^trainer\.val_every_steps must be an integer >= 1, got 0$"),
    ("trainer.device=gpu", r"^trainer\.device must be one of auto, cpu, cuda, cuda:N, got 'gpu'$"),
    ("model.init=inf", r"^model\.init must be a number with \|x\| <= 3\.4e38 \(float32\), got inf$"),
    ("+trainer.stpes=3", r"^trainer\.stpes is not a setting \(did you mean trainer\.steps\?\); "
                         r"trainer takes steps, .*: drop it with ~trainer\.stpes$"),
    ("+foo=1", r"^foo is not a setting; the top level takes model, .*: drop it with ~foo$"),
    ("+trainer.checkpoint.every=3", r"^trainer\.checkpoint\.every is not a setting \(did you mean "
                                    r"trainer\.checkpoint\.every_steps\?\)"),
    ("trainer.threads=1000000000000000000000000000000",
     r"^trainer\.threads must be null \(automatic\) or an integer in \[1, 4096\]"),
    ("+optim.differentiable=true", r"^optim\.differentiable must be false: gradtrace's loop"),
    ("optim.nesterov=abc", r"^optim\.nesterov must be true or false, got 'abc'$"),
    ("optim.nesterov=2", r"^optim\.nesterov must be true or false, got 2$"),
    ("+optim.maximize=abc", r"^optim\.maximize must be true or false, got 'abc'$"),
    ("objective.metric=loss", r"^objective\.metric must be a logged tag such as loss/final"),
    ("objective.mode=up", r"^objective\.mode must be min or max, got 'up'$"),
    ("objective.metric=accuracy/val", r"^objective\.metric=accuracy/val needs validation samples"),
    ("early_stopping.patience=0", r"^early_stopping\.patience must be null \(off\) or an integer >= 1"),
    ("early_stopping.min_delta=-1", r"^early_stopping\.min_delta must be a finite number >= 0"),
    ("early_stopping.metric=loss/final", r"^early_stopping\.metric must be a tag logged during "
                                         r"training .* loss/final is logged once, at the end"),
    ("trainer.accumulate_steps=0", r"^trainer\.accumulate_steps must be an integer >= 1, got 0$"),
    ("trainer.clip_grad_norm=0", r"^trainer\.clip_grad_norm must be null \(no clipping\) or a "
                                 r"finite number > 0, got 0"),
    ("trainer.clip_grad_value=-1", r"^trainer\.clip_grad_value must be null"),
    ("objective.metric=loss/val_final", r"^objective.metric=loss/val_final needs validation samples"),
    ("data.val_fraction=1", r"^data\.val_fraction must be a number in \[0, 1\)"),
    ("data.val_path=v.csv", r"^data\.val_path needs a data option that reads a file"),
    ("data=file", r"^data\.path must be set: data\.path=\.\.\.$"),
]


@pytest.mark.parametrize("override,message", RANGE_ERRORS, ids=[o for o, _ in RANGE_ERRORS])
def test_out_of_range_values(override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        build(override)


def test_logger_settings_are_checked_before_its_file_exists(tmp_path: Path):
    run = build("logger.flush_every_secs=0")
    with pytest.raises(ConfigError, match=r"^logger\.flush_every_secs must be a finite number > 0"):
        build_logger(run.plan, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["optim=adam", "optim.betas=[0.9,1.0]"],
         r"^optim\.betas must be two numbers in \[0, 1\), got \[0\.9, 1\.0\]$"),
        (["optim=adam", "optim.betas=[-0.1,0.9]"], r"^optim\.betas must be two numbers in \[0, 1\)"),
        (["optim=adam", "optim.eps=0"],
         r"^optim\.eps must be a number > 0 and <= 3\.4e38 \(float32\), got 0$"),
        (["model=regressor", "data.batch_size=0"],
         r"^data\.batch_size must be null \(full batch\) or an integer >= 1, got 0$"),
        (["model=regressor", "data.batch_size=1001"],
         r"^data\.batch_size must be at most the number of training samples \(1000\), got 1001$"),
        (["model=regressor", "data.val_fraction=0.5", "data.batch_size=501"],
         r"^data\.batch_size must be at most the number of training samples \(500\), got 501$"),
        (["model=regressor", "data.samples=0"], r"^data\.samples must be an integer >= 1, got 0$"),
        (["model=linear", "data=scalar"], r"^model=linear needs inputs with at least one feature"),
        (["model=regressor", "data=scalar"], r"^model=regressor needs inputs with at least one"),
        (["model=linear", "model.weight=[[1,2]]"],
         r"^model\.weight must have shape \[1, 3\] to match the data's features, got \[1, 2\]"),
        (["model=linear", "model.bias=[1,2]"], r"^model\.bias must have shape \[1\]"),
        (["model=linear", "data.inputs=[[1,2],[3]]", "data.targets=[1,2]"],
         r"^data\.inputs must be rows of numbers, all of one length"),
        (["model=linear", "data.targets=[1,2]"],
         r"^data: inputs \[samples, \.\.\.\] and targets \[samples, \.\.\.\] must hold as many "
         r"samples, got inputs of shape \[1, 3\] and targets of shape \[2\]$"),
        (["model=regressor", "data.val_fraction=0.5", "data.val_path=v.csv"],
         r"^data\.val_path needs a data option that reads a file"),
    ],
)
def test_bad_combinations(overrides: list[str], message: str):
    with pytest.raises(ConfigError, match=message):
        build(*overrides)


def test_wrong_type_in_gradtraces_own_settings_names_the_key():
    with pytest.raises(ConfigCompositionException) as info:
        compose_config("trainer.steps=abc")
    assert isinstance(info.value.__cause__, ValidationError)
    assert "trainer.steps" in str(info.value.__cause__) and "abc" in str(info.value.__cause__)


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigCompositionException) as info:
        compose_config("trainer.stepz=1")
    assert "Key 'stepz' not in 'TrainerConfig'" in str(info.value.__cause__)
    with pytest.raises(ConfigError, match=r"^optim: gradtrace\.components\.optim\.SGD takes no argument lrr "
                                          r"\(did you mean lr\?\); it takes lr, momentum, "):
        make_plan(compose_config("+optim.lrr=1"))


def test_unknown_option_lists_the_allowed_ones():
    with pytest.raises(MissingConfigException, match=r"(?s)nope.*linear.*regressor.*scalar"):
        compose_config("model=nope")


@pytest.mark.parametrize(
    "overrides,expected",
    [
        ("", ""),
        ("optim.lr=0.1,trainer.steps=5", "_optim.lr=0.1,trainer.steps=5"),
        ("data.path=data/my.csv", "_data.path=data-my.csv"),  # no nested folders
        ("model.weight=[[0.5,0.5]],model.bias=[-0.5]", "_model.weight=0.5,0.5,model.bias=-0.5"),
        ("+data.path='a b/c.csv'", "_+data.path=a-b-c.csv"),
    ],
)
def test_run_folder_names_are_one_safe_folder(overrides: str, expected: str):
    assert folder_suffix(overrides) == expected


def test_long_overrides_make_short_distinct_folder_names():
    a, b = (folder_suffix(f"data.path={'x' * 300}{end}.csv") for end in "ab")
    assert len(a) <= 81 and len(b) <= 81 and a != b


@pytest.mark.parametrize(
    "override,message",
    [
        ("optim.lr=1e39", r"^optim\.lr must be a number > 0 and <= 3\.4e38 \(float32\), got 1e\+39$"),
        ("optim.momentum=1e39", r"^optim\.momentum must be a number >= 0 and <= 3\.4e38 \(float32"),
        ("model.init=-1e39", r"^model\.init must be a number with \|x\| <= 3\.4e38 \(float32\)"),
        ("seed=18446744073709551616", r"^seed must be an integer in \[0, 2\*\*63\), got 1844"),
        ("seed=-1", r"^seed must be an integer in \[0, 2\*\*63\), got -1$"),
        ("trainer.device=cuda:x", r"^trainer\.device must be one of auto, cpu, cuda, cuda:N"),
    ],
)
def test_values_beyond_what_training_can_hold(override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        build(override)


@pytest.mark.parametrize("weight", ["[[1,nan,2]]", "[[1,inf,2]]", "[[1,2,1e39]]"])
def test_non_finite_initial_values_are_refused(weight: str):
    with pytest.raises(ConfigError, match=r"^model\.weight must hold numbers with \|x\| <= 3\.4e38"):
        build("model=linear", f"model.weight={weight}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_but_absent_says_which_torch_and_what_to_do():
    with pytest.raises(ConfigError, match=rf"^trainer\.device=cuda, but this torch "
                                          rf"{re.escape(torch.__version__)} .* finds no CUDA "
                                          rf"device: use trainer\.device=cpu"):
        build("trainer.device=cuda")
