"""Learning-rate schedules that torch.optim.lr_scheduler has no single class for. Each returns a
torch scheduler, so that its state_dict goes into checkpoints as torch's own do."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from gradtrace.errors import is_finite_number, require


class WarmupCosine:
    """The lr factor at step k: k / warmup_steps while warming up, then half a cosine from 1 down
    to eta_min / lr at total_steps (a plain object, not a lambda: LambdaLR keeps its state)."""

    def __init__(self, warmup_steps: int, total_steps: int, floor: float) -> None:
        self.warmup_steps, self.total_steps, self.floor = warmup_steps, total_steps, floor

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return step / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.floor + (1 - self.floor) * (1 + math.cos(math.pi * progress)) / 2


def warmup_cosine(optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int,
                  eta_min: float = 0.0) -> LambdaLR:
    """Linear warm-up from 0 to each group's lr over warmup_steps, then cosine annealing to
    eta_min at total_steps."""
    require(isinstance(warmup_steps, int) and 0 <= warmup_steps < total_steps,
            "scheduler.warmup_steps", warmup_steps,
            f"an integer in [0, scheduler.total_steps={total_steps})")
    require(is_finite_number(eta_min) and eta_min >= 0, "scheduler.eta_min", eta_min,
            "a finite number >= 0")
    # Each group's floor is eta_min against its own lr (as set before any schedule touched it).
    base = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
    return LambdaLR(optimizer, [WarmupCosine(warmup_steps, total_steps, eta_min / lr if lr else 0.0)
                                for lr in base])
