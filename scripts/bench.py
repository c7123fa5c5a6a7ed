"""Trainer vs. a bare hand-written PyTorch loop: median microseconds per step and the ratio.

    python scripts/bench.py [--steps 2000] [--repeats 7]

For each worked example the same model, data and loss run three ways, interleaved in one process
so that machine noise hits all three alike:
  bare      zero_grad / forward / loss / backward / torch.optim.SGD step, nothing else
  trainer   gradtrace's train() with logger=none (NaN checks and the progress bar included)
  logged    train() writing loss, lr, grad norm and every parameter and gradient element, every
            step, to a TensorBoard event file (flush and close included in the time)
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from gradtrace.build import build_logger, build_run
from gradtrace.config import register
from gradtrace.loggers import NullLogger
from gradtrace.trainer import train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def bare_loop(model, loss_fn, optimizer, inputs, targets, steps: int) -> None:
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()


def bench_example(example: str, steps: int, repeats: int, out_dir: Path) -> dict[str, float]:
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=[f"model={example}", f"trainer.steps={steps}"])
    run = build_run(cfg)
    initial = copy.deepcopy(run.model.state_dict())
    inputs, targets = next(run.batches)
    lr = run.optimizer.param_groups[0]["lr"]
    times: dict[str, list[float]] = {"bare": [], "trainer": [], "logged": []}

    def timed_train(logger) -> float:
        run.model.load_state_dict(initial)
        start = time.perf_counter()
        train(
            model=run.model, loss_fn=run.loss_fn, optimizer=run.optimizer, batches=run.batches,
            probe=run.probe, logger=logger, steps=steps,
        )
        logger.close()
        return time.perf_counter() - start

    for repeat in range(repeats):
        run.model.load_state_dict(initial)
        optimizer = torch.optim.SGD(run.model.parameters(), lr=lr)
        start = time.perf_counter()
        bare_loop(run.model, run.loss_fn, optimizer, inputs, targets, steps)
        times["bare"].append(time.perf_counter() - start)
        times["trainer"].append(timed_train(NullLogger("", [])))
        logger = build_logger(cfg, str(out_dir / f"{example}-{repeat}"), run.probe)
        times["logged"].append(timed_train(logger))
    return {name: statistics.median(t) / steps * 1e6 for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--examples", nargs="+", default=["scalar", "linear", "regressor"])
    args = parser.parse_args()
    register()
    logging.basicConfig(level=logging.WARNING)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.steps} steps x {args.repeats} repeats, medians in microseconds per step")
    print(f"{'example':<10} {'bare':>8} {'trainer':>8} {'logged':>8} {'trainer/bare':>13} "
          f"{'logged/bare':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for example in args.examples:
            t = bench_example(example, args.steps, args.repeats, Path(tmp))
            print(f"{example:<10} {t['bare']:8.1f} {t['trainer']:8.1f} {t['logged']:8.1f} "
                  f"{t['trainer'] / t['bare']:12.3f}x {t['logged'] / t['bare']:11.3f}x")


if __name__ == "__main__":
    main()
