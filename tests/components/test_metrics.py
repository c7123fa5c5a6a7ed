"""gradtrace's metrics against scikit-learn's (an independent implementation), on random logits
and labels; small cases by hand; and which metric fits which task."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gradtrace.components import metrics, tasks
from gradtrace.errors import ConfigError

sk = pytest.importorskip("sklearn.metrics")


def random_classes(seed: int, n: int = 200, c: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=generator), torch.randint(0, c, (n,), generator=generator)


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_agree_with_scikit_learn(seed: int):
    logits, labels = random_classes(seed)
    predicted = logits.argmax(1).numpy()
    assert float(metrics.accuracy(logits, labels)) == pytest.approx(
        sk.accuracy_score(labels.numpy(), predicted), abs=1e-7)
    assert float(metrics.macro_f1(logits, labels)) == pytest.approx(
        sk.f1_score(labels.numpy(), predicted, average="macro"), abs=1e-6)
    for k in (1, 3, 5):
        expected = sk.top_k_accuracy_score(labels.numpy(), logits.numpy(), k=k, labels=range(7))
        assert float(metrics.top_k_accuracy(k)(logits, labels)) == pytest.approx(expected, abs=1e-7)


def test_macro_f1_counts_only_the_classes_that_occur():
    # Labels 0, 0, 1; predictions 0, 1, 1 (class 2 of 3 never occurs). Class 0: TP 1, FP 0, FN 1:
    # F1 = 2/3. Class 1: TP 1, FP 1, FN 0: F1 = 2/3. Mean over the two classes present: 2/3.
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0]])
    assert float(metrics.macro_f1(logits, torch.tensor([0, 0, 1]))) == pytest.approx(2 / 3)


@pytest.mark.parametrize("seed", range(3))
def test_regression_metrics_agree_with_scikit_learn(seed: int):
    generator = torch.Generator().manual_seed(seed)
    y = torch.randn(100, 3, generator=generator)
    p = y + 0.5 * torch.randn(100, 3, generator=generator)
    assert float(metrics.r2(p, y)) == pytest.approx(sk.r2_score(y.numpy(), p.numpy()), abs=1e-5)
    assert float(metrics.r2(p[:, 0], y[:, 0])) == pytest.approx(
        sk.r2_score(y[:, 0].numpy(), p[:, 0].numpy()), abs=1e-5)
    assert float(metrics.mae(p, y)) == pytest.approx(
        sk.mean_absolute_error(y.numpy(), p.numpy()), abs=1e-6)


def test_binary_accuracy_reads_logits_at_0_and_probabilities_at_a_half():
    targets = torch.tensor([0.0, 1.0, 1.0, 0.0])
    logits = torch.tensor([-1.0, 2.0, -0.5, 0.1])  # right, right, wrong, wrong
    with_logits = metrics.resolve(None, tasks.BINARY, nn.BCEWithLogitsLoss())["accuracy"]
    assert float(with_logits(logits, targets)) == 0.5
    probabilities = metrics.resolve(None, tasks.BINARY, nn.BCELoss())["accuracy"]
    assert float(probabilities(torch.tensor([0.2, 0.9, 0.6, 0.4]), targets)) == 1.0


def test_defaults_and_fit_to_the_task():
    assert list(metrics.resolve(None, tasks.CLASSES, nn.CrossEntropyLoss())) == ["accuracy"]
    assert metrics.resolve(None, tasks.REGRESSION, nn.MSELoss()) == {}
    with pytest.raises(ConfigError, match=r"^metrics: accuracy is a metric for classes tasks, but "
                                          r"the loss trains a regression task$"):
        metrics.resolve(["accuracy"], tasks.REGRESSION, nn.MSELoss())
    with pytest.raises(ConfigError, match=r"^metrics: r2 is a metric for regression tasks"):
        metrics.resolve(["r2"], tasks.CLASSES, nn.CrossEntropyLoss())
    with pytest.raises(ConfigError, match=r"^metrics: unknown metric 'precision'; gradtrace has"):
        metrics.resolve(["precision"], tasks.CLASSES, nn.CrossEntropyLoss())
    with pytest.raises(ConfigError, match=r"top12_accuracy needs at least 12 classes, the model "
                                          r"gives 7"):
        metrics.top_k_accuracy(12)(*random_classes(0))
