"""Tasks: the contract between predictions, targets and the loss, checked before step 0; the
classifiers, the generated classification data, class labels from files, stratified splits, and
the softmax cross entropy's gradient derived by hand."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import gradtrace
from gradtrace.components import datasets, tasks
from gradtrace.components.data import Samples, align_classes, split
from gradtrace.components.files import load_file
from gradtrace.components.networks import MLP, ConvNet, Logistic
from gradtrace.errors import ConfigError

from conftest import build

X = torch.ones(4, 3)
Y = torch.zeros(4)


class Columns(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.linear(inputs)  # [N, 1]: the classic mistake


class Counts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return (inputs @ self.w).long()


class Dropping(nn.Module):
    """Dropout and batch norm: the check must not draw random numbers or update statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.norm, self.drop, self.w = nn.BatchNorm1d(3), nn.Dropout(0.5), nn.Parameter(torch.ones(3))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.drop(self.norm(inputs)) @ self.w


def contract(model: nn.Module, targets: torch.Tensor = Y, kind: str = tasks.REGRESSION,
             inputs: torch.Tensor = X) -> torch.Tensor:
    return tasks.check_contract(model, "my.Model", "my.Loss", kind, inputs, targets)


@pytest.mark.parametrize(
    "model,message",
    [
        (Columns(), r"^model\._target_=my\.Model returned predictions of shape \[4, 1\] for inputs "
                    r"of shape \[4, 3\] and targets of shape \[4\]: loss\._target_=my\.Loss needs "
                    r"one prediction per target, of shape \[4\] \(return out\.squeeze"),
        (Counts(), r"^model\._target_=my\.Model returned torch\.int64 predictions for inputs of "
                   r"shape \[4, 3\] and targets of shape \[4\]; they must be floating point$"),
        (nn.Identity(), r"^model\._target_=my\.Model has no trainable parameter$"),
    ],
)
def test_the_model_contract(model: nn.Module, message: str):
    with pytest.raises(ConfigError, match=message):
        contract(model)


def test_the_contract_check_leaves_the_model_and_the_random_state_as_they_were():
    model = Dropping().train()
    stats = model.norm.running_mean.clone()
    inputs = torch.rand(4, 3)
    state = torch.get_rng_state()
    contract(model, inputs=inputs)
    assert model.training and torch.equal(model.norm.running_mean, stats)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    "loss_fn,message",
    [
        (torch.nn.MSELoss(reduction="none"),
         r"^loss\._target_=my\.Loss returned \[4\] for predictions of shape \[4\]; it must return "
         r"one floating-point number"),
        (lambda p, t: float((p - t).abs().mean()), r"returned float for predictions"),
        (lambda p, t: p.view(2, 3), r"^loss: my\.Loss failed: RuntimeError: "),
    ],
)
def test_the_loss_must_be_one_number(loss_fn, message: str):
    with pytest.raises(ConfigError, match=message):
        tasks.check_loss(loss_fn, "my.Loss", torch.ones(4), Y)


def test_the_kind_of_task_is_the_losss():
    assert tasks.kind_of(nn.CrossEntropyLoss()) == tasks.kind_of(nn.NLLLoss()) == tasks.CLASSES
    assert tasks.kind_of(nn.BCEWithLogitsLoss()) == tasks.BINARY
    assert tasks.kind_of(nn.MSELoss()) == tasks.kind_of(nn.HuberLoss()) == tasks.REGRESSION

    class Mine(nn.Module):
        task = "classes"

    assert tasks.kind_of(Mine()) == tasks.CLASSES


def test_class_logits_need_one_more_dimension_than_the_labels():
    labels = torch.tensor([0, 1, 2, 1])
    assert contract(Logistic(3, (3,)), labels, tasks.CLASSES).shape == (4, 3)
    # [N] predictions read as one sample's N logits: the silent nonsense this check exists for.
    with pytest.raises(ConfigError, match=r"^loss\._target_=my\.Loss needs logits of shape "
                                          r"\[4, 'C'\] \(C classes\) for class indices of shape \[4\]"):
        contract(Logistic(3, ()), labels, tasks.CLASSES)


def test_regressor_with_cross_entropy_is_refused_before_step_0_in_one_line():
    for overrides in (["model=regressor", "loss=cross_entropy"],
                      ["model=regressor", "loss._target_=torch.nn.CrossEntropyLoss",
                       "data.features=4"]):
        with pytest.raises(ConfigError, match=r"needs class indices .* as targets, but data: "
                                              r"gradtrace\.components\.data\.uniform gives"):
            build(*overrides)
    with pytest.raises(ConfigError, match=r"needs logits of shape \[1000, 'C'\]"):
        build("model=regressor", "loss=cross_entropy", "data=spiral")
    # The scalar example's target 0 is a class index, but one number a sample is no logits.
    with pytest.raises(ConfigError, match=r"needs logits of shape \[1, 'C'\]"):
        build("model=scalar", "loss._target_=torch.nn.CrossEntropyLoss")


@pytest.mark.parametrize("overrides,message", [
    (["model=logistic", "model.classes=2"],
     r"^data: class index 2 at position \d+ \(counting from 0\) is out of range for the model's 2 "
     r"classes"),
    (["model=logistic", "model.weight=[[1,1],[0,0]]", "model.bias=[0,0]"],
     r"out of range for the model's 2 classes \(model\.classes, or model\.weight's rows"),
    (["model=logistic", "loss.weight=[1.0,2.0]"],
     r"^loss\.weight must hold one weight per class \(3\), got 2$"),
    (["model=logistic", "loss.label_smoothing=2"], r"^loss\.label_smoothing must be a number in \[0, 1\]"),
    (["model=mlp", "model.activation=swish"], r"^model\.activation must be one of relu, tanh, gelu"),
    (["model=mlp", "model.hidden=[0]"], r"^model\.hidden must be a list of layer widths >= 1"),
    (["model=convnet", "data=digits"], r"^model=convnet needs images \[N, C, H, W\], but the data "
                                       r"give samples of shape \[64\]"),
    (["model=logistic", "loss=bce"], r"needs targets in \[0, 1\]; data: .*gaussians gives values "
                                     r"from 0 to 2"),
    (["model=logistic", "data=single_sample", "data.targets=[-1]"],
     r"class indices must be >= 0 .* got -1"),
])
def test_bad_task_combinations(overrides: list[str], message: str):
    with pytest.raises(ConfigError, match=message):
        build(*overrides)


def test_the_class_count_comes_from_the_weight_then_classes_then_the_labels():
    assert build("model=logistic").model.weight.shape == (3, 2)  # gaussians: labels 0..2
    assert build("model=logistic", "model.classes=5").model.weight.shape == (5, 2)
    weight = "model.weight=[[1,0],[0,1],[1,1],[2,2]]"
    run = build("model=logistic", weight)
    assert run.model.weight.tolist() == [[1, 0], [0, 1], [1, 1], [2, 2]]


def test_the_classifiers_take_any_input_shape_and_give_the_tasks_outputs():
    images = torch.rand(5, 1, 8, 8)
    assert Logistic(64, (10,))(images).shape == (5, 10)
    assert MLP(64, (10,), hidden=[8])(images).shape == (5, 10)
    assert ConvNet((1, 8, 8), (10,), channels=[4, 4])(images).shape == (5, 10)
    assert MLP(64, (), hidden=[8])(images).shape == (5,)  # one number per sample: regression
    assert MLP(64, (3,), hidden=[])(images).shape == (5, 3)  # multi-output regression [N, K]


def test_multi_output_regression_trains_against_targets_of_k_columns(tmp_path: Path):
    x = np.arange(12, dtype=float).reshape(6, 2)
    np.savez(tmp_path / "k.npz", inputs=x, targets=np.stack([x.sum(1), x[:, 0] - x[:, 1]], 1))
    run = build("model=mlp", "loss=mse", "data=file", f"data.path={tmp_path / 'k.npz'}")
    inputs, targets = next(run.batches)
    assert targets.shape == (6, 2) and run.model(inputs).shape == (6, 2)


# --- the softmax cross entropy's gradient, by hand ---------------------------------------------


def test_cross_entropy_gradient_of_a_logistic_model_matches_the_hand_derivation(tmp_path: Path):
    # x = [1, 2, 3], label 2 of 3 classes, W = 0 and b = 0: the logits z = W x + b are all 0, so
    # softmax(z) = [1/3, 1/3, 1/3] and the loss is -log(1/3) = log 3. dL/dz = softmax(z) - onehot
    # = [1/3, 1/3, -2/3]; dL/dW[c, j] = dL/dz[c] * x[j]; dL/db = dL/dz.
    result = gradtrace.run(
        ["model=logistic", "data=single_sample", "data.targets=[2]", "model.classes=3",
         "model.weight=[[0,0,0],[0,0,0],[0,0,0]]", "model.bias=[0,0,0]", "trainer.steps=1",
         "landscape.enabled=false"], run_dir=tmp_path, verbose=False)
    assert result.final_loss == pytest.approx(math.log(3), rel=1e-6)
    history = result.history
    dz = [1 / 3, 1 / 3, -2 / 3]
    for c in range(3):
        assert history[f"grad/bias[{c}]"].values[0] == pytest.approx(dz[c], rel=1e-6)
        for j, x in enumerate([1.0, 2.0, 3.0]):
            assert history[f"grad/weight[{c},{j}]"].values[0] == pytest.approx(dz[c] * x, rel=1e-6)


# --- data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("make,classes", [
    (lambda seed: datasets.spiral(300, 3, 0.1, seed=seed), 3),
    (lambda seed: datasets.moons(300, 0.1, seed=seed), 2),
    (lambda seed: datasets.circles(300, 0.05, 0.5, seed=seed), 2),
    (lambda seed: datasets.gaussians(300, 4, 0.3, seed=seed), 4),
])
def test_generated_sets_are_seeded_2d_and_balanced(make, classes: int):
    a, b, other = make(0), make(0), make(1)
    assert a.inputs.shape == (300, 2) and a.targets.dtype == torch.long
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    counts = torch.bincount(a.targets)
    assert len(counts) == classes and counts.max() - counts.min() <= 1
    assert not torch.equal(a.inputs, other.inputs)


def test_circles_and_xor_are_what_their_names_say():
    rings = datasets.circles(200, 0.0, 0.3, seed=0)
    radius = rings.inputs.norm(dim=1)
    assert torch.allclose(radius[rings.targets == 0], torch.tensor(1.0))
    assert torch.allclose(radius[rings.targets == 1], torch.tensor(0.3))
    square = datasets.xor(200, 0.0, seed=0)
    assert torch.equal(square.targets, (square.inputs.prod(1) < 0).long())


def test_digits_are_sklearns_and_come_flat_or_as_images():
    sklearn = pytest.importorskip("sklearn.datasets")
    flat, images = datasets.digits(images=False, scale=True), datasets.digits(images=True, scale=False)
    bunch = sklearn.load_digits()
    assert flat.inputs.shape == (1797, 64) and images.inputs.shape == (1797, 1, 8, 8)
    assert torch.equal(images.inputs.flatten(1), torch.as_tensor(bunch.data, dtype=torch.float32))
    assert torch.equal(flat.inputs * 16, images.inputs.flatten(1))
    assert flat.targets.tolist() == bunch.target.tolist()


def test_a_stratified_split_keeps_each_classs_share():
    labels = torch.tensor([0] * 80 + [1] * 20)
    samples = Samples(torch.arange(100.0).unsqueeze(1), labels)
    train, val = split(samples, 0.25, seed=0, stratify=True)
    assert torch.bincount(val.targets).tolist() == [20, 5]
    assert torch.bincount(train.targets).tolist() == [60, 15]
    assert sorted(train.inputs.flatten().tolist() + val.inputs.flatten().tolist()) == list(range(100))


def test_a_classification_run_splits_by_class():
    run = build("model=logistic", "data.val_fraction=0.2", "data.classes=3", "data.samples=300")
    assert torch.bincount(run.val_data.targets).tolist() == [20, 20, 20]


def test_a_text_label_column_becomes_class_indices(tmp_path: Path):
    path = tmp_path / "pets.csv"
    path.write_text("size,legs,kind\n1,4,dog\n0.2,4,cat\n0.1,2,bird\n1.2,4,dog\n")
    samples = load_file(str(path), target="kind", features=None)
    assert samples.classes == ("bird", "cat", "dog")
    assert samples.targets.tolist() == [2, 1, 0, 2] and samples.inputs.shape == (4, 2)
    integers = load_file(str(path), target="legs", features=["size"])
    assert integers.targets.dtype == torch.long and integers.targets.tolist() == [4, 4, 2, 4]


def test_validation_labels_are_numbered_as_the_training_files():
    train = Samples(torch.zeros(3, 1), torch.tensor([0, 1, 2]), ("bird", "cat", "dog"))
    val = Samples(torch.zeros(2, 1), torch.tensor([0, 1]), ("cat", "dog"))
    assert align_classes(val, train.classes).targets.tolist() == [1, 2]
    with pytest.raises(ConfigError, match=r"class label\(s\) 'fish' that the training file has not"):
        align_classes(Samples(torch.zeros(1, 1), torch.tensor([0]), ("fish",)), train.classes)


def test_text_labels_with_a_regression_loss_are_refused(tmp_path: Path):
    path = tmp_path / "pets.csv"
    path.write_text("size,kind\n1,dog\n0.2,cat\n")
    with pytest.raises(ConfigError, match=r"the target column holds 2 text labels \('cat', 'dog'\), "
                                          r"but loss\._target_=torch\.nn\.MSELoss is not a classi"):
        build("model=linear", "data=file", f"data.path={path}", "data.target=kind")


def test_a_run_on_text_labels_saves_their_numbering(tmp_path: Path):
    path = tmp_path / "pets.csv"
    rows = [f"{0.1 * i},{1 + i % 3},{['cat', 'dog', 'bird'][i % 3]}" for i in range(30)]
    path.write_text("size,legs,kind\n" + "\n".join(rows) + "\n")
    result = gradtrace.run(["model=logistic", "data=file", f"data.path={path}", "data.target=kind",
                            "trainer.steps=2", "landscape.enabled=false"],
                           run_dir=tmp_path / "run", verbose=False)
    assert (tmp_path / "run" / "classes.json").read_text() == '["bird", "cat", "dog"]\n'
    assert result.model.weight.shape == (3, 2) and "accuracy/train" in result.history


def test_binary_cross_entropy_gradient_matches_the_hand_derivation(tmp_path: Path):
    # One logit z = w.x + b = 0 (w = 0, b = 0), target 1: sigmoid(z) = 1/2, the loss is
    # -log(1/2) = log 2, dL/dz = sigmoid(z) - y = -1/2, so dL/dw = -x/2 and dL/db = -1/2.
    result = gradtrace.run(
        ["model=logistic", "loss=bce", "data=single_sample", "data.targets=[1]",
         "model.weight=[[0,0,0]]", "model.bias=[0]", "trainer.steps=1", "landscape.enabled=false"],
        run_dir=tmp_path, verbose=False)
    assert result.final_loss == pytest.approx(math.log(2), rel=1e-6)
    for j, x in enumerate([1.0, 2.0, 3.0]):
        assert result.history[f"grad/weight[0,{j}]"].values[0] == pytest.approx(-x / 2, rel=1e-6)
    assert result.history["grad/bias[0]"].values[0] == pytest.approx(-0.5, rel=1e-6)
    assert result.history["accuracy/train"].values[0] == 0.0  # z = 0 is not on the positive side


def test_huber_gradient_of_the_linear_example_is_the_clipped_residual(tmp_path: Path):
    # The linear example: prediction 2.5, target 5, residual r = -2.5. Huber with delta 1 is
    # delta (|r| - delta/2) past delta, so dL/dpred = delta sign(r) = -1: gradients -x, -1.
    result = gradtrace.run(
        ["model=linear", "loss=huber", "model.weight=[[0.5,0.5,0.5]]", "model.bias=[-0.5]",
         "trainer.steps=1", "landscape.enabled=false"], run_dir=tmp_path, verbose=False)
    assert result.final_loss == pytest.approx(2.5 - 0.5, rel=1e-6)
    for j, x in enumerate([1.0, 2.0, 3.0]):
        assert result.history[f"grad/weight[0,{j}]"].values[0] == pytest.approx(-x, rel=1e-6)
    assert result.history["grad/bias[0]"].values[0] == pytest.approx(-1.0, rel=1e-6)


def test_digits_without_scikit_learn_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails as if absent
    with pytest.raises(ConfigError, match=r"^data=digits needs scikit-learn, which ships the data "
                                          r"set: pip install 'gradtrace\[data\]'"):
        datasets.digits(images=False, scale=True)
