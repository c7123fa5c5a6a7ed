"""The loss's curvature at the step's parameters, from Hessian-vector products (double backward):

    sharpness       sharpness/top: the largest (algebraic) eigenvalue of the Hessian of the
                    training loss on the step's batch (or on a fixed subset of `samples` training
                    samples), by Lanczos iteration with full reorthogonalisation, stopped when the
                    top Ritz value moves by less than `tolerance` (relative) or after `iterations`;
                    sharpness/eig<i> for the top `top_k` with top_k > 1; and sharpness/threshold,
                    the stability limit of the optimiser: 2/lr for SGD, (2 + 2 momentum)/lr for
                    heavy-ball momentum (not logged for other optimisers).
    hessian_trace   hessian_trace/estimate: Hutchinson's estimate of tr(H), the mean of v.Hv over
                    `probes` Rademacher vectors v, and hessian_trace/stderr, its standard error.

Both leave the training as it was: the products are taken with torch.autograd.grad (nothing goes
into .grad), in the model's own mode, and the random generators they draw from are their own.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch
from torch.func import functional_call, grad, vmap

from gradtrace.errors import require
from gradtrace.training.instruments import RunContext, StepView

Hvp = Callable[[torch.Tensor], torch.Tensor]  # flat vector [P] -> H @ vector [P]


def hessian_vector_product(model: torch.nn.Module, loss_fn: Any, inputs: torch.Tensor,
                           targets: torch.Tensor) -> tuple[Hvp, int]:
    """v -> H v for the loss of (inputs, targets) at the model's current parameters; P."""
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        loss = loss_fn(model(inputs), targets)
        grads = torch.autograd.grad(loss, params, create_graph=True)
    flat_grad = torch.cat([g.reshape(-1) for g in grads])

    def hvp(vector: torch.Tensor) -> torch.Tensor:
        products = torch.autograd.grad(flat_grad, params, grad_outputs=vector, retain_graph=True)
        return torch.cat([h.reshape(-1) for h in products]).detach()

    return hvp, flat_grad.numel()


def lanczos(hvp: Hvp, size: int, iterations: int, tolerance: float,
            generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """The Ritz values (ascending) of up to `iterations` Lanczos steps from a random start;
    stops once the largest moves by less than `tolerance` relative, or the Krylov space is
    exhausted. Full reorthogonalisation keeps the basis orthogonal in float32."""
    steps = min(iterations, size)
    basis = torch.empty(steps, size, device=device)  # [k, P]: the orthonormal Lanczos vectors
    v = torch.randn(size, generator=generator).to(device)
    basis[0] = v / torch.linalg.vector_norm(v)
    alphas: list[float] = []
    betas: list[float] = []
    top = math.inf
    for k in range(steps):
        w = hvp(basis[k])
        alphas.append(float(w @ basis[k]))
        known = basis[: k + 1]
        w = w - known.T @ (known @ w)  # twice is enough (Kahan's rule)
        w = w - known.T @ (known @ w)
        tridiagonal = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if betas:
            off = torch.tensor(betas, dtype=torch.float64)
            tridiagonal += torch.diag(off, 1) + torch.diag(off, -1)
        ritz = torch.linalg.eigvalsh(tridiagonal)
        beta = float(torch.linalg.vector_norm(w))
        if abs(float(ritz[-1]) - top) <= tolerance * abs(float(ritz[-1])) or beta < 1e-10:
            return ritz
        top = float(ritz[-1])
        betas.append(beta)
        if k + 1 < steps:
            basis[k + 1] = w / beta
    return ritz


def stability_threshold(optimizer: torch.optim.Optimizer) -> Optional[float]:
    """2/lr for gradient descent, (2 + 2 momentum)/lr for heavy-ball momentum (the step size
    beyond which the top eigendirection of a quadratic diverges); None for other optimisers."""
    if not isinstance(optimizer, torch.optim.SGD):
        return None
    group = optimizer.param_groups[0]
    momentum = group.get("momentum", 0.0)
    if group.get("nesterov") or group.get("dampening", 0.0) or group.get("weight_decay", 0.0):
        return None
    return (2 + 2 * momentum) / group["lr"]


def step_size_verdict(optimizer: torch.optim.Optimizer, top: float) -> str:
    """How the step size stands against the curvature `top` (the Hessian's top eigenvalue), as a
    quadratic model of the loss along the top eigenvector says: gradient descent multiplies that
    direction by 1 - lr * top a step, so it shrinks smoothly up to lr = 1/top, shrinks changing
    sign up to 2/top, and grows beyond; with heavy-ball momentum mu the limit is (2 + 2 mu)/top.
    For example "lr 0.1 > 2/lambda = 0.0667: the top direction overshoots and grows"."""
    threshold = stability_threshold(optimizer)
    if threshold is None:
        return f"no stability threshold is stated for {type(optimizer).__name__}"
    if top <= 0:
        return "no direction of positive curvature to overshoot"
    lr = optimizer.param_groups[0]["lr"]
    numerator = threshold * lr  # 2, or 2 + 2 momentum
    momentum = (numerator - 2) / 2
    formula = "2" if momentum == 0 else f"(2 + 2*{momentum:g})"
    limit = numerator / top
    if lr > limit:
        return f"lr {lr:.4g} > {formula}/lambda = {limit:.4g}: the top direction overshoots and grows"
    if momentum == 0 and lr > 1 / top:
        return (f"1/lambda = {1 / top:.4g} < lr {lr:.4g} <= 2/lambda = {limit:.4g}: the top "
                "direction overshoots, but shrinks")
    return f"lr {lr:.4g} <= {formula}/lambda = {limit:.4g}: the top direction shrinks"


class _Curvature:
    """The batch an instrument's products are taken on, and its own random generator."""

    def __init__(self, samples: Optional[int]) -> None:
        require(samples is None or (isinstance(samples, int) and samples >= 1),
                "instruments.*.samples", samples, "null (the step's batch) or an integer >= 1")
        self.samples = samples

    def setup(self, context: RunContext) -> None:
        self.model, self.loss_fn, self.optimizer = context.model, context.loss_fn, context.optimizer
        self.generator = torch.Generator().manual_seed(context.seed)
        self.device = context.device
        self.fixed = None
        if self.samples is not None:
            data = context.train_data
            self.fixed = (data.inputs[: self.samples].to(context.device),
                          data.targets[: self.samples].to(context.device))

    def hvp(self, view: StepView) -> tuple[Hvp, int]:
        inputs, targets = self.fixed if self.fixed is not None else (view.inputs, view.targets)
        with torch.random.fork_rng(devices=[]):  # dropout draws here leave training's alone
            return hessian_vector_product(self.model, self.loss_fn, inputs, targets)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class Sharpness(_Curvature):
    def __init__(self, iterations: int = 20, tolerance: float = 1e-5, top_k: int = 1,
                 samples: Optional[int] = None) -> None:
        super().__init__(samples)
        require(isinstance(iterations, int) and iterations >= 1, "instruments.sharpness.iterations",
                iterations, "an integer >= 1")
        require(isinstance(top_k, int) and 1 <= top_k <= iterations, "instruments.sharpness.top_k",
                top_k, f"an integer in [1, iterations={iterations}]")
        require(isinstance(tolerance, (int, float)) and tolerance >= 0,
                "instruments.sharpness.tolerance", tolerance, "a number >= 0")
        self.iterations, self.tolerance, self.top_k = iterations, float(tolerance), top_k
        self.last: Optional[tuple[int, float]] = None  # (step, sharpness/top) measured last

    def measure(self, view: StepView) -> dict[str, float]:
        hvp, size = self.hvp(view)
        # The top k of the Ritz values converge first; with k > 1 run every iteration.
        tolerance = self.tolerance if self.top_k == 1 else 0.0
        ritz = lanczos(hvp, size, self.iterations, tolerance, self.generator, self.device)
        out = {"top": float(ritz[-1])}
        for i in range(2, min(self.top_k, len(ritz)) + 1):
            out[f"eig{i}"] = float(ritz[-i])
        threshold = stability_threshold(self.optimizer)
        if threshold is not None:
            out["threshold"] = threshold
        if math.isfinite(out["top"]):
            self.last = (view.step, out["top"])
        return out

    def diagnose(self) -> Optional[str]:
        """For a run that diverged: the last sharpness against the threshold."""
        if self.last is None:
            return None
        step, top = self.last
        threshold = stability_threshold(self.optimizer)
        against = "" if threshold is None else (
            f" ({'above' if top > threshold else 'not above'} sharpness/threshold {threshold:.4g})")
        return (f"sharpness/top was lambda = {top:.4g} at step {step}{against}: "
                f"{step_size_verdict(self.optimizer, top)}.")


class HessianTrace(_Curvature):
    def __init__(self, probes: int = 10, samples: Optional[int] = None) -> None:
        super().__init__(samples)
        require(isinstance(probes, int) and probes >= 2, "instruments.hessian_trace.probes", probes,
                "an integer >= 2")
        self.probes = probes

    def measure(self, view: StepView) -> dict[str, float]:
        hvp, size = self.hvp(view)
        values = []
        for _ in range(self.probes):  # E[v.Hv] = tr(H) for v of independent +-1 entries
            v = (torch.randint(0, 2, (size,), generator=self.generator) * 2 - 1).float()
            v = v.to(self.device)
            values.append(float(v @ hvp(v)))
        samples = torch.tensor(values, dtype=torch.float64)
        return {"estimate": float(samples.mean()),
                "stderr": float(samples.std() / math.sqrt(self.probes))}


class GradNoise:
    """grad_noise/*: per-sample gradients on the step's batch (torch.func.vmap of grad), g_i the
    gradient of the loss on a batch of sample i alone and G their mean:

        trace_cov       sum_i |g_i - G|^2 / (N - 1), the trace of their covariance
        mean_sq         |G|^2
        simple_scale    trace_cov / mean_sq, McCandlish et al.'s simple noise scale: about the
                        batch size beyond which a larger batch stops helping much
        snr/<name>      |G_t|^2 / (sum_i |g_i,t - G_t|^2 / (N - 1)) for each parameter tensor t

    Memory: N x (number of parameters) floats."""

    def setup(self, context: RunContext) -> None:
        self.model, self.loss_fn = context.model, context.loss_fn
        self.names = [n for n, p in context.model.named_parameters() if p.requires_grad]

    def measure(self, view: StepView) -> dict[str, float]:
        model, loss_fn = self.model, self.loss_fn
        params = {n: p.detach() for n, p in model.named_parameters() if n in self.names}
        buffers = dict(model.named_buffers())

        def loss_of_one(params: dict[str, torch.Tensor], x: torch.Tensor,
                        y: torch.Tensor) -> torch.Tensor:
            preds = functional_call(model, (params, buffers), (x.unsqueeze(0),))
            return loss_fn(preds, y.unsqueeze(0))

        with torch.random.fork_rng(devices=[]):
            grads = vmap(grad(loss_of_one), in_dims=(None, 0, 0))(params, view.inputs,
                                                                  view.targets)
        n = len(view.targets)
        out: dict[str, float] = {}
        total_cov = total_sq = 0.0
        for name in self.names:
            g = grads[name].reshape(n, -1).double()  # [N, elements]
            mean = g.mean(0)
            cov = float(((g - mean) ** 2).sum() / max(1, n - 1))
            sq = float(mean @ mean)
            total_cov, total_sq = total_cov + cov, total_sq + sq
            out[f"snr/{name}"] = sq / cov if cov > 0 else math.inf
        out.update(trace_cov=total_cov, mean_sq=total_sq,
                   simple_scale=total_cov / total_sq if total_sq > 0 else math.inf)
        return out
