"""Optimisers of our own, and the range checks gradtrace runs for torch's before anything is
built (torch.optim supplies the rest; see configs/optim/). A check gets every argument the
optimiser will get, its defaults included, and names the key users set."""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterable, Mapping, Optional

import torch

from gradtrace.errors import ConfigError, is_finite_number, is_float32, require

# torch.optim.Optimizer's methods that torch wraps in torch._disable_dynamo: the wrapper's first
# call imports torch._dynamo, the compiler (about 2 s of every run's start-up on this project's
# CPU, torch 2.13), only to mark the method as not to be compiled.
DYNAMO_DISABLED = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


def skip_compiler_import() -> None:
    """Let those methods run as they are, without importing the compiler: the wrapper looks for
    the disabled version of the function on the function itself (`__dynamo_disable`), and finds
    the function. gradtrace's loop is eager, so nothing would compile them anyway; where the
    compiler is loaded already (a user's torch.compile), nothing changes. Relies on torch's
    private torch/_compile.py: with another torch, where the names differ, it does nothing and
    the import happens as before."""
    if "torch._dynamo" in sys.modules:
        return
    for name in DYNAMO_DISABLED:
        function = getattr(getattr(torch.optim.Optimizer, name, None), "__wrapped__", None)
        if function is not None and getattr(function, "__dynamo_disable", None) is None:
            function.__dynamo_disable = function


def _check_lr(args: Mapping[str, Any]) -> None:
    lr = args.get("lr")
    require(is_float32(lr) and lr > 0, "optim.lr", lr, "a number > 0 and <= 3.4e38 (float32)")


def _check_at_least_0(args: Mapping[str, Any], *keys: str) -> None:
    for key in keys:
        value = args.get(key, 0)
        require(is_float32(value) and value >= 0, f"optim.{key}", value,
                "a number >= 0 and <= 3.4e38 (float32)")


def _check_flags(args: Mapping[str, Any], *keys: str) -> None:
    """true/false flags: a string or a number is never taken for one."""
    for key in keys:
        value = args.get(key)
        require(value is None or isinstance(value, bool), f"optim.{key}", value,
                "true or false" + (" (or null)" if key in ("foreach", "fused") else ""))


def _check_not_differentiable(args: Mapping[str, Any]) -> None:
    # A differentiable optimiser's step builds a graph through the update; gradtrace's loop steps
    # leaf parameters in place, where torch refuses it with a traceback.
    require(not args.get("differentiable"), "optim.differentiable", args.get("differentiable"),
            "false: gradtrace's loop updates the parameters in place, outside autograd")


def check_sgd(args: Mapping[str, Any]) -> None:
    _check_lr(args)
    _check_at_least_0(args, "momentum", "dampening", "weight_decay")
    _check_flags(args, "nesterov", "maximize", "foreach", "differentiable", "fused")
    _check_not_differentiable(args)
    if args.get("nesterov") and args.get("momentum", 0) == 0:
        raise ConfigError("optim.nesterov=true needs optim.momentum > 0, got 0.0")


def check_adam(args: Mapping[str, Any]) -> None:
    _check_lr(args)
    betas = args.get("betas")
    require(
        isinstance(betas, (list, tuple)) and len(betas) == 2
        and all(is_finite_number(b) and 0 <= b < 1 for b in betas),
        "optim.betas",
        list(betas) if isinstance(betas, (list, tuple)) else betas,
        "two numbers in [0, 1)",
    )
    eps = args.get("eps")
    require(is_float32(eps) and eps > 0, "optim.eps", eps, "a number > 0 and <= 3.4e38 (float32)")
    _check_at_least_0(args, "weight_decay")
    _check_flags(args, "amsgrad", "maximize", "foreach", "capturable", "differentiable", "fused")
    _check_not_differentiable(args)


# Keyed by `_target_`, so that they apply to every option that names the class, a user's too.
CHECKS: dict[str, Callable[[Mapping[str, Any]], None]] = {
    "torch.optim.SGD": check_sgd,
    "gradtrace.components.optim.SGD": check_sgd,
    "torch.optim.Adam": check_adam,
    "torch.optim.AdamW": check_adam,
    "gradtrace.components.optim.ManualSGD": _check_lr,
}


class SGD(torch.optim.SGD):
    """torch.optim.SGD (optim=sgd), with a short path for plain gradient descent on CPU tensors.

    With no momentum, weight decay, maximize, foreach, fused or differentiable, torch's step runs
    `p.add_(p.grad, alpha=-lr)` for each parameter, behind about 20 microseconds of Python
    (argument handling, profiling, the choice of an implementation), as much as a small model's
    forward and backward. This class runs that same call directly, so the parameters are bitwise
    torch's (tested); every other case, and a closure, goes to torch.optim.SGD.step. zero_grad
    sets the gradients to None as torch's does, without its profiling wrapper.
    """

    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:  # type: ignore[override]
        if closure is not None or not self._plain():
            return _torch_step(self, closure)
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-group["lr"])  # torch's single-tensor SGD, as is
        return None

    def _plain(self) -> bool:
        # .get: not every torch release has every flag (fused came in 2.3).
        return all(
            g["momentum"] == 0 and g["weight_decay"] == 0 and not g.get("maximize")
            and not g.get("foreach") and not g.get("fused") and not g.get("differentiable")
            and isinstance(g["lr"], (float, int)) and all(p.is_cpu for p in g["params"])
            for g in self.param_groups
        )

    def zero_grad(self, set_to_none: bool = True) -> None:
        if not set_to_none:
            super().zero_grad(set_to_none=False)
            return
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None


def _torch_step(optimizer: SGD, closure: Optional[Callable[[], float]]) -> Optional[float]:
    """torch.optim.SGD.step without the step hooks' wrapper that torch puts on the class once any
    torch.optim.SGD exists: this class's own step is wrapped too and has run the hooks already, so
    a hook that changes gradients would otherwise apply twice."""
    step = torch.optim.SGD.step
    if getattr(step, "hooked", False):  # Optimizer._patch_step_function's functools.wraps
        step = step.__wrapped__  # type: ignore[attr-defined]
    return step(optimizer, closure)


class ManualSGD(torch.optim.Optimizer):
    """Gradient descent written out by hand: `p -= lr * p.grad`, then the gradient is zeroed.

    The update a tutorial writes, wrapped as an Optimizer so the trainer treats it like any other.
    It is written `p.sub_(p.grad, alpha=lr)` rather than `p -= lr * p.grad`: the same rule, but
    computed as one fused multiply-subtract, which is what torch.optim.SGD does. The two-step form
    rounds `lr * p.grad` to float32 first and so drifts from SGD by an ulp per step on the CPU;
    the fused form gives bitwise the same parameters as SGD without momentum (tested).
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]  # takes no closure
        if closure is not None:
            raise ValueError("ManualSGD.step takes no closure")
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.sub_(p.grad, alpha=group["lr"])  # p -= lr * p.grad
                p.grad.zero_()
