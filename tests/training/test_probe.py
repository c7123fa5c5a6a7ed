"""The probe's row: names, order and values of parameters and gradients."""

from __future__ import annotations

import math

import torch
from torch import nn

from gradtrace.components.models import Linear
from gradtrace.training.probe import Probe, element_names


def test_element_names():
    assert element_names("w", torch.Size([])) == ["w"]
    assert element_names("b", torch.Size([2])) == ["b[0]", "b[1]"]
    assert element_names("weight", torch.Size([2, 2])) == [
        "weight[0,0]", "weight[0,1]", "weight[1,0]", "weight[1,1]"]


def test_row_layout_and_values():
    model = Linear(2, weight=[[1.0, 2.0]], bias=[3.0])
    probe = Probe(model.named_parameters(), max_elements=64)
    # loss = pred = 1*x0 + 2*x1 + 3 at x = [10, 20]: dL/dw = x, dL/db = 1
    model(torch.tensor([[10.0, 20.0]])).sum().backward()
    assert probe.columns == ["param/weight[0,0]", "param/weight[0,1]", "param/bias[0]",
                             "grad/weight[0,0]", "grad/weight[0,1]", "grad/bias[0]"]
    assert probe.read() == [1.0, 2.0, 3.0, 10.0, 20.0, 1.0]


def test_large_tensors_become_norms():
    model = Linear(4, weight=[[3.0, 4.0, 0.0, 0.0]], bias=[1.0])
    probe = Probe(model.named_parameters(), max_elements=2)
    model(torch.tensor([[0.0, 0.0, 6.0, 8.0]])).sum().backward()
    assert probe.columns == ["param/bias[0]", "grad/bias[0]", "param_norm/weight",
                             "grad_norm/weight"]
    assert probe.read() == [1.0, 1.0, 5.0, 10.0]  # |[3, 4, 0, 0]| = 5, |[0, 0, 6, 8]| = 10


def test_unused_parameter_reads_as_zero_gradient():
    class TwoParams(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Parameter(torch.tensor(2.0))
            self.unused = nn.Parameter(torch.tensor(5.0))

    model = TwoParams()
    probe = Probe(model.named_parameters(), max_elements=64)
    (model.used**2).backward()
    assert probe.read() == [2.0, 5.0, 4.0, 0.0]


def test_all_finite():
    assert Probe.all_finite(1.0, [1.0, 2.0])
    assert not Probe.all_finite(math.nan, [1.0])
    assert not Probe.all_finite(1.0, [1.0, math.inf])
    assert not Probe.all_finite(1.0, [-math.inf, math.inf])  # inf - inf is nan: still caught
    assert Probe.all_finite(1.0, [1e308, 1e308])  # the sum overflows, the values do not
