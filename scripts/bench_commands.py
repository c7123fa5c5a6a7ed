"""What a user waits for, command by command (scripts/bench.py --commands, and make bench):

  whole command   python scripts/train.py model=regressor trainer.steps=N (the defaults: event
                  file, landscape, checkpoints) against a bare script that imports torch, makes the
                  same data, model, loss and optimiser and runs the same N steps; start-up (the
                  1-step commands) subtracted
  start-up        the same two commands with trainer.steps=1
  summary         scripts/summarize.py's work on a sweep of 10 jobs of 100,000 logged steps
  processes       one run on the 1,000,000 x 100 data in 1 process and, through torchrun, in 2:
                  the training loop's seconds per step from result.json

Each command runs in a fresh process, interleaved with the one it is compared to; medians.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "scripts" / "train.py"

# The regressor worked example written as a user would, without gradtrace: the same data (uniform
# [0, 1), seed 0), model (an nn.Module like gradtrace.components.models.Regressor, initialised after the
# same seed), loss (nn.L1Loss) and optimiser; it ends with bitwise gradtrace's parameters.
BARE = """
import sys, torch
steps = int(sys.argv[1])

class Regressor(torch.nn.Module):
    def __init__(self, features):
        super().__init__()
        self.params = torch.nn.Parameter(torch.rand(features))

    def forward(self, inputs):
        return (inputs * self.params).sum(1)

torch.manual_seed(0)
generator = torch.Generator().manual_seed(0)
inputs, targets = torch.rand(1000, 10, generator=generator), torch.rand(1000, generator=generator)
model, loss_fn = Regressor(10), torch.nn.L1Loss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for _ in range(steps):
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
print(loss.item())
"""


def _seconds(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def whole_command(steps: int, repeats: int) -> dict[str, float]:
    """Median seconds of the four commands; the whole-command and start-up ratios."""
    times: dict[str, list[float]] = {"train 1": [], f"train {steps}": [], "bare 1": [],
                                     f"bare {steps}": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            for n in (1, steps):
                run_dir = f"hydra.run.dir={tmp}/run-{n}-{repeat}"
                times[f"train {n}"].append(_seconds(
                    [sys.executable, str(TRAIN), "model=regressor", f"trainer.steps={n}", run_dir],
                    Path(tmp)))
                times[f"bare {n}"].append(_seconds([sys.executable, "-c", BARE, str(n)], Path(tmp)))
    median = {name: statistics.median(t) for name, t in times.items()}
    train = median[f"train {steps}"] - median["train 1"]
    bare = median[f"bare {steps}"] - median["bare 1"]
    return {**median, "whole": train / bare, "start-up": median["train 1"] / median["bare 1"]}


def summary(jobs: int, steps: int, repeats: int) -> dict[str, float]:
    """Median seconds to summarise a sweep of `jobs` jobs of `steps` logged regressor steps
    each (event files written by the real logger, at a step's real size: 23 values)."""
    import numpy as np

    from gradtrace.loggers.tensorboard import TensorBoardLogger
    from gradtrace.sweeps.result import COMPLETED, JobResult, write_result
    from gradtrace.sweeps.summary import summarize

    columns = [f"param/params[{i}]" for i in range(10)] + [f"grad/params[{i}]" for i in range(10)]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp)
        for num in range(jobs):
            folder = sweep / f"{num}_optim.lr={num}"
            (folder / ".hydra").mkdir(parents=True)
            (folder / ".hydra" / "overrides.yaml").write_text(f"- optim.lr={num}\n")
            logger = TensorBoardLogger(str(folder), flush_every_secs=5.0)
            losses = np.exp(-np.arange(steps) / steps * (num + 1))
            rows = rng.random((steps, len(columns))).tolist()
            tags = ["loss/train", "optim/lr", "grad_norm/total", *columns]
            for step in range(steps):
                logger.log_scalars(step, dict(zip(tags, [float(losses[step]), 0.01, 1.0,
                                                         *rows[step]])))
            logger.close()
            write_result(folder, JobResult(COMPLETED, final_loss=float(losses[-1]),
                                           best_loss=float(losses[-1]), steps=steps))
        size = sum(f.stat().st_size for f in sweep.rglob("events.out.tfevents.*")) / jobs
        times, whole = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            summarize(sweep)
            times.append(time.perf_counter() - start)
            # As a user runs it: the whole `gradtrace summarize` process, imports included.
            whole.append(_seconds([sys.executable, "-m", "gradtrace", "summarize", str(sweep)],
                                  cwd=sweep))
    return {"seconds": statistics.median(times), "process seconds": statistics.median(whole),
            "bytes per step": size / steps}


# The larger work (here, and scripts/bench.py --big): bench.MillionMLP is scripts/bench.py's.
MLP = ["model=regressor", "model._target_=bench.MillionMLP", "data.samples=1000000",
       "data.features=100", "data.batch_size=256", "landscape.enabled=false"]
LINEAR = ["model=regressor", "loss=mse", "data.samples=1000000", "data.features=100",
          "landscape.enabled=false"]
PROCESS_CASES = {  # name: overrides, steps
    "linear, 1M x 100 full batch": (LINEAR, 10),
    "MLP 1M params, batch 256": (MLP, 100),
}


def processes(repeats: int) -> dict[str, dict[str, float]]:
    """Seconds per step of the training loop (result.json's train_seconds / steps), medians: one
    process with torch's threads (one per core), and two processes through torchrun (torchrun
    gives each one thread)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}  # bench.MillionMLP
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (overrides, steps) in PROCESS_CASES.items():
            times: dict[str, list[float]] = {"1 process": [], "2 processes": []}
            for repeat in range(repeats):
                for label, launcher in (
                    ("1 process", [sys.executable]),
                    ("2 processes", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                     "--nproc_per_node=2"]),
                ):
                    run_dir = Path(tmp) / f"{len(out)}-{label}-{repeat}".replace(" ", "_")
                    subprocess.run([*launcher, str(TRAIN), *overrides, f"trainer.steps={steps}",
                                    f"hydra.run.dir={run_dir}"],
                                   cwd=tmp, check=True, capture_output=True, env=env)
                    result = json.loads((run_dir / "result.json").read_text())
                    times[label].append(result["train_seconds"] / steps)
            out[name] = {label: statistics.median(t) for label, t in times.items()}
    return out


def main(repeats: int) -> None:
    steps = 20_000
    print(f"\nwhole commands, model=regressor, medians of {repeats}, seconds")
    t = whole_command(steps, repeats)
    print(f"{'':<24} {'1 step':>8} {f'{steps} steps':>12}")
    print(f"{'scripts/train.py':<24} {t['train 1']:8.2f} {t[f'train {steps}']:12.2f}")
    print(f"{'bare script':<24} {t['bare 1']:8.2f} {t[f'bare {steps}']:12.2f}")
    print(f"whole command, start-up subtracted: {t['whole']:.3f}x   start-up: {t['start-up']:.3f}x")
    s = summary(jobs=10, steps=100_000, repeats=repeats)
    print(f"\nsummary of a sweep of 10 jobs x 100,000 logged steps: {s['seconds']:.2f} s in "
          f"process, {s['process seconds']:.2f} s as a whole `gradtrace summarize` (event file: "
          f"{s['bytes per step']:.0f} bytes a step)")
    print("\none run in 1 process vs 2 (torchrun, gloo), training loop, ms per step")
    print(f"{'work':<30} {'1 process':>10} {'2 processes':>12} {'speed-up':>9}")
    for name, p in processes(max(1, repeats // 2)).items():
        print(f"{name:<30} {p['1 process'] * 1e3:10.1f} {p['2 processes'] * 1e3:12.1f} "
              f"{p['1 process'] / p['2 processes']:8.2f}x")
