"""The instruments seam: a user's instrument from their own package, its schedule, its hooks, its
state across a checkpoint, a stop it asks for, and what it costs. In process, through the API."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import gradtrace
from gradtrace.errors import ConfigError
from gradtrace.training import checkpoint
from gradtrace.training.instruments import Row

LR = 0.1
# The scalar worked example: w0 = 3, loss w**2, so dL/dw = 2w and plain SGD gives
# w[k+1] = w[k] - lr * 2 w[k] = (1 - 2 lr) w[k] = 0.8 w[k].
MINE = '''

class Watch:
    """Measures the scalar model's w and dL/dw; after the step, the new w."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.seen = []  # steps measured: kept in checkpoints

    def setup(self, context):
        self.steps = context.steps

    def measure(self, view):
        self.seen.append(view.step)
        return {"w": self.scale * view.model.w.item(), "grad": view.model.w.grad.item(),
                "loss": view.loss_value}

    def after_step(self, view):
        return {"w_after": view.model.w.item()}

    def finish(self, view):
        return {"measured": float(len(self.seen)), "last_step": float(view.step)}

    def state_dict(self):
        return {"seen": list(self.seen)}

    def load_state_dict(self, state):
        self.seen = list(state["seen"])


class StopAt:
    def __init__(self, step: int) -> None:
        self.step = step

    def measure(self, view):
        if view.step == self.step:
            view.request_stop("enough")
        return {}


class Idle:
    """Has no hook the loop calls."""

    def measured(self, view):
        return {}


class Refuses:
    def setup(self, context):
        from gradtrace.errors import ConfigError
        raise ConfigError("instruments.refuses: needs validation samples (data.val_fraction)")

    def measure(self, view):
        return {}
'''


@pytest.fixture
def mylab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's own package, importable as mylab."""
    (tmp_path / "mylab").mkdir()
    (tmp_path / "mylab" / "__init__.py").write_text("")
    (tmp_path / "mylab" / "instruments.py").write_text(textwrap.dedent(MINE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def run(tmp_path: Path, *overrides: str, folder: str = "run") -> gradtrace.RunResult:
    return gradtrace.run(["model=scalar", f"optim.lr={LR}", "landscape.enabled=false",
                          *overrides], run_dir=tmp_path / folder, verbose=False)


def test_a_users_instrument_logs_its_scalars_on_its_due_steps_only(mylab: Path):
    result = run(mylab, "trainer.steps=10",
                 "+instruments.watch={_target_:mylab.instruments.Watch,every_steps:3}")
    history = result.history
    for key in ("w", "grad", "loss", "w_after"):
        assert history[f"watch/{key}"].steps.tolist() == [0, 3, 6, 9], key
    w = history["watch/w"].values
    # Against the hand derivation: w[k] = 3 * 0.8**k, dL/dw = 2 w, loss w**2 (float32 steps).
    assert w == pytest.approx([3 * 0.8**k for k in (0, 3, 6, 9)], rel=1e-5)
    assert history["watch/grad"].values == pytest.approx(2 * w, rel=1e-6)
    assert history["watch/loss"].values == pytest.approx(w**2, rel=1e-6)
    # after_step sees the update: (1 - 2 lr) w.
    assert history["watch/w_after"].values == pytest.approx(0.8 * w, rel=1e-6)
    # ... and it agrees with the built-in element logging at the same steps.
    assert history["param/w"].values[[0, 3, 6, 9]].tolist() == w.tolist()
    # finish: once, at step 10 (after the last update), having measured 4 times.
    assert history["watch/measured"].steps.tolist() == [10]
    assert history["watch/measured"].values.tolist() == [4.0]
    assert history["watch/last_step"].values.tolist() == [10.0]


def test_its_cost_is_in_result_json(mylab: Path):
    run(mylab, "trainer.steps=10", "+instruments.watch={_target_:mylab.instruments.Watch,every_steps:3}")
    costs = json.loads((mylab / "run" / "result.json").read_text())["instruments"]
    assert set(costs) == {"elements", "watch", "checkpoints"}
    # setup once, measure and after_step on steps 0, 3, 6, 9, finish once.
    assert costs["watch"]["calls"] == 1 + 4 + 4 + 1
    assert set(costs["watch"]["hooks"]) == {"setup", "measure", "after_step", "finish"}
    assert 0 < costs["watch"]["seconds"] == pytest.approx(sum(costs["watch"]["hooks"].values()))
    assert costs["elements"]["calls"] == 1 + 10


def test_its_state_is_in_the_checkpoint(mylab: Path):
    run(mylab, "trainer.steps=7", "trainer.checkpoint.every_steps=5",
        "+instruments.watch={_target_:mylab.instruments.Watch,every_steps:2}")
    path, = checkpoint.checkpoints(mylab / "run")[:1]
    state = checkpoint.read(path)
    assert state["step"] == 7 and state["instruments"]["watch"] == {"seen": [0, 2, 4, 6]}


def test_an_instruments_keys_are_checked_against_its_class(mylab: Path):
    with pytest.raises(ConfigError, match=r"^instruments\.watch: mylab\.instruments\.Watch takes "
                                          r"no argument scal \(did you mean scale\?\)"):
        run(mylab, "+instruments.watch={_target_:mylab.instruments.Watch,scal:2}")
    with pytest.raises(ConfigError, match=r"^instruments\.watch\.every_steps must be an integer "
                                          r">= 0 \(0: off\), got -1"):
        run(mylab, "+instruments.watch={_target_:mylab.instruments.Watch,every_steps:-1}")


def test_a_class_with_no_hook_is_refused(mylab: Path):
    with pytest.raises(ConfigError, match=r"^instruments\.idle: mylab\.instruments\.Idle has none "
                                          r"of the methods an instrument is called by: measure, "
                                          r"after_step, finish"):
        run(mylab, "+instruments.idle={_target_:mylab.instruments.Idle}")


def test_every_steps_0_switches_an_instrument_off(mylab: Path):
    result = run(mylab, "+instruments.watch={_target_:mylab.instruments.Watch,every_steps:0}",
                 "instruments.elements.every_steps=0")
    assert not [tag for tag in result.history if tag.startswith(("watch/", "param/"))]
    assert "loss/train" in result.history


def test_a_refusal_in_setup_comes_before_any_file(mylab: Path):
    with pytest.raises(ConfigError, match=r"^instruments\.refuses: needs validation samples"):
        run(mylab, "+instruments.refuses={_target_:mylab.instruments.Refuses}")
    assert not list((mylab / "run").glob("events.out.tfevents.*"))
    assert json.loads((mylab / "run" / "result.json").read_text())["status"] == "failed"


def test_an_instrument_can_stop_the_run(mylab: Path):
    result = run(mylab, "trainer.steps=50", "+instruments.stop={_target_:mylab.instruments.StopAt,step:4}")
    assert result.steps == 5
    record = json.loads((mylab / "run" / "result.json").read_text())
    assert record["status"] == "completed" and record["stopped"] == "enough"
    assert record["steps"] == 5
    assert result.history["loss/train"].steps.tolist() == [0, 1, 2, 3, 4]
    assert checkpoint.read(checkpoint.checkpoints(mylab / "run")[0])["step"] == 5  # resumable


def test_a_run_that_ran_every_step_says_stopped_null(tmp_path: Path):
    run(tmp_path, "trainer.steps=3")
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["stopped"] is None and record["steps"] == 3


def test_instruments_run_in_config_order_and_can_be_chosen(tmp_path: Path):
    result = run(tmp_path, "trainer.steps=3", "instruments=[elements]", folder="elements")
    assert "param/w" in result.history
    result = run(tmp_path, "trainer.steps=3", "instruments=[]", folder="none")
    assert sorted(result.history) == ["loss/best", "loss/final", "loss/train", "optim/lr"]


def test_row_is_a_mapping_of_its_two_lists():
    row = Row(["a", "b"], [1.0, 2.0])
    assert dict(row) == {"a": 1.0, "b": 2.0} and len(row) == 2 and row["b"] == 2.0
    with pytest.raises(KeyError):
        row["c"]
