"""The console summary printed at the end of a run."""

from __future__ import annotations

from typing import Mapping

from torch import nn

from gradtrace.training.loop import TrainResult

SHOW_PARAMETERS_UP_TO = 20  # elements; larger models are summarised by their loss alone


def summary_lines(result: TrainResult, model: nn.Module, run_dir: str,
                  costs: Mapping[str, Mapping[str, float]]) -> list[str]:
    stopped = f" (stopped early: {result.stopped})" if result.stopped else ""
    lines = [
        f"done: {result.steps} steps in {result.seconds:.2f} s{stopped}",
        f"final loss {result.final_loss:.6g}   best loss {result.best_loss:.6g}",
    ]
    if "loss/val" in result.final:
        lines.append(f"validation loss {result.final['loss/val']:.6g} (after the last step)")
    if costs:  # what watching the steps cost, of the loop's time above
        lines.append("instruments: " + ", ".join(
            f"{name} {cost['seconds']:.3f} s ({int(cost['calls'])} calls)"
            for name, cost in costs.items()))
    if sum(p.numel() for p in model.parameters()) <= SHOW_PARAMETERS_UP_TO:
        for name, p in model.named_parameters():
            values = p.detach().cpu().flatten().tolist()
            lines.append(f"{name} = " + ", ".join(f"{v:.6g}" for v in values))
    lines.append(f"run folder: {run_dir}")
    return lines
