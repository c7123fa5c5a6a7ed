"""gradtrace.components.optim.SGD (optim=sgd) against torch.optim.SGD: bitwise the same parameters and state
in every case, its short path (plain gradient descent on CPU) and torch's (everything else)."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from gradtrace.components.optim import SGD


def regressor_steps(optimizer_class: type, steps: int = 25, **kwargs: object):
    """A regressor like the worked example (mae, 200 x 10 uniform samples, a bias), trained by
    `optimizer_class`; the lr halves after 10 steps, as a scheduler would change it."""
    generator = torch.Generator().manual_seed(0)
    inputs, targets = torch.rand(200, 10, generator=generator), torch.rand(200, generator=generator)
    params = torch.nn.Parameter(torch.rand(10, generator=generator))
    bias = torch.nn.Parameter(torch.zeros(()))
    unused = torch.nn.Parameter(torch.ones(3))  # no gradient: left alone
    optimizer = optimizer_class([params, bias, unused], lr=0.05, **kwargs)
    for step in range(steps):
        if step == 10:
            optimizer.param_groups[0]["lr"] = 0.025
        optimizer.zero_grad()
        loss = ((inputs * params).sum(1) + bias - targets).abs().mean()
        loss.backward()
        optimizer.step()
    return [p.detach().clone() for p in (params, bias, unused)], optimizer.state_dict()


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}, {"weight_decay": 0.1},
     {"maximize": True}, {"momentum": 0.5, "dampening": 0.5, "weight_decay": 0.01}],
)
def test_bitwise_torch_sgd(kwargs: dict) -> None:
    ours, our_state = regressor_steps(SGD, **kwargs)
    theirs, their_state = regressor_steps(torch.optim.SGD, **kwargs)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    assert str(our_state) == str(their_state)
    assert not torch.equal(ours[0], regressor_steps(SGD, steps=0, **kwargs)[0][0])  # it moved
    assert torch.equal(ours[2], torch.ones(3))


def test_the_plain_step_is_p_minus_lr_times_grad() -> None:
    """w = 3, loss w**2: dL/dw = 6, so one step of lr 0.1 gives 3 - 0.6 = 2.4."""
    w = torch.nn.Parameter(torch.tensor(3.0))
    optimizer = SGD([w], lr=0.1)
    (w**2).backward()
    optimizer.step()
    assert w.item() == pytest.approx(2.4, abs=1e-6)
    optimizer.zero_grad()
    assert w.grad is None
    (w**2).backward()
    optimizer.zero_grad(set_to_none=False)
    assert w.grad is not None and w.grad.item() == 0.0


def test_a_closure_is_evaluated_and_returned() -> None:
    w = torch.nn.Parameter(torch.tensor(3.0))
    optimizer = SGD([w], lr=0.1)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = w**2
        loss.backward()
        return loss

    assert optimizer.step(closure).item() == 9.0
    assert w.item() == pytest.approx(2.4, abs=1e-6)


def _random_use(seed: int) -> tuple[dict, list[str], bool]:
    """A random flag combination torch.optim.SGD accepts, the hooks to register, a closure?"""
    rng = random.Random(seed)
    momentum = rng.choice([0.0, 0.9])
    dampening = rng.choice([0.0, 0.1]) if momentum else 0.0
    kwargs = {
        "lr": rng.choice([0.1, 0.01]), "momentum": momentum, "dampening": dampening,
        "weight_decay": rng.choice([0.0, 0.01]), "maximize": rng.random() < 0.3,
        "nesterov": bool(momentum) and not dampening and rng.random() < 0.5,
        "foreach": rng.choice([None, False, True]),
    }
    hooks = rng.sample(["pre", "post", "global_pre"], rng.randint(0, 3))
    return kwargs, hooks, rng.random() < 0.3


@pytest.mark.parametrize("seed", range(40))
def test_differential_against_torch_sgd_with_hooks(seed: int) -> None:
    # The same random use of gradtrace's SGD and torch's, with step hooks that change the
    # gradients: bitwise the same parameters, and every hook called once a step.
    kwargs, hooks, closure = _random_use(seed)
    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)  # torch's class is patched
    generator = torch.Generator().manual_seed(seed)
    start = [torch.randn(3, 2, generator=generator), torch.randn(4, generator=generator)]
    grads = [[torch.randn_like(t) for t in start] for _ in range(4)]
    results, calls = [], []
    for cls in (SGD, torch.optim.SGD):
        params = [torch.nn.Parameter(t.clone()) for t in start]
        optimizer = cls(params, **kwargs)
        count = {"n": 0}

        def halve(opt, args, kw, count=count, params=params):  # changes the gradients
            count["n"] += 1
            for p in params:
                p.grad.mul_(0.5)

        handles = []
        if "pre" in hooks:
            handles.append(optimizer.register_step_pre_hook(halve))
        if "post" in hooks:
            handles.append(optimizer.register_step_post_hook(
                lambda opt, args, kw, count=count: count.__setitem__("n", count["n"] + 1)))
        if "global_pre" in hooks:
            handles.append(register_optimizer_step_pre_hook(
                lambda opt, args, kw, count=count: count.__setitem__("n", count["n"] + 1)))
        try:
            for step_grads in grads:
                for p, g in zip(params, step_grads):
                    p.grad = g.clone()
                if closure:
                    optimizer.step(lambda: 1.0)
                else:
                    optimizer.step()
        finally:
            for handle in handles:
                handle.remove()
        results.append([p.detach().clone() for p in params])
        calls.append(count["n"])
    assert calls[0] == calls[1] == len(hooks) * len(grads)
    for ours, theirs in zip(*results):
        assert torch.equal(ours, theirs), (kwargs, hooks, closure)


@pytest.mark.slow  # a fresh process: this one may have loaded the compiler already
def test_a_plain_gradient_descent_run_never_imports_the_compiler(tmp_path):
    # torch wraps Optimizer.add_param_group, zero_grad and (load_)state_dict in
    # torch._disable_dynamo, whose first call imports torch._dynamo (about 2 s);
    # gradtrace.components.optim.skip_compiler_import spares an eager run that import. A run
    # with checkpoints (state_dict) and resumed from one (load_state_dict):
    script = (
        "import sys, gradtrace\n"
        f"run = {str(tmp_path / 'run')!r}\n"
        "gradtrace.run(['model=linear', 'trainer.steps=20', 'trainer.checkpoint.every_steps=5'],"
        " run_dir=run, verbose=False)\n"
        "gradtrace.run(['model=linear', 'trainer.steps=30', 'trainer.checkpoint.every_steps=5',"
        " 'trainer.resume=true'], run_dir=run, verbose=False)\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"
