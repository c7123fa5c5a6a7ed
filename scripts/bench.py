"""Trainer vs. a bare hand-written PyTorch loop: median microseconds per step and the ratio.

    python scripts/bench.py [--steps 2000] [--repeats 7] [--big] [--commands] [--all]
                            [--insight] [--checkpoints] [--loaders]

--curvature adds the curvature instruments (sharpness, hessian_trace, grad_noise) due every step
and every 16 steps against the loop with the element instrument alone, on the regressor and an
MLP (Cockpit's published figures for comparison: docs/benchmarks.md).

--experiments (digits_mlp and spiral_mlp by default) adds the worked classification experiments:
their model, mini-batches, Adam and schedule as a bare loop against train() with their default
instruments (accuracy and validation included).

For each worked example the same model, data and loss run four ways, interleaved in one process
so that machine noise hits them alike:
  bare      zero_grad / forward / loss / backward / torch.optim.SGD step, nothing else
  trainer   gradtrace's train() with logger=none (NaN checks and the progress bar included)
  logged    train() writing loss, lr, grad norm and every parameter and gradient element, every
            step, to a TensorBoard event file (flush and close included in the time), through
            the objective's Tracker, and keeping the trajectory for the landscape picture, as a
            default run does
  torch SGD logged, with torch.optim.SGD itself instead of optim=sgd's gradtrace.components.optim.SGD
            (bitwise the same steps, without torch's per-step Python overhead): what the logging
            alone costs

--commands adds whole commands in fresh processes (scripts/bench_commands.py): train.py against a
bare script, start-up, the summary of a sweep of long runs, and 1 process against 2 (torchrun).
--all is --big and --commands: every figure in README's table, in one run (make bench).

--insight adds the cost of gradient insight, each used only when asked for or once per run:
one gradient check (trainer.grad_check), one explained step (trainer.explain_steps), and the
landscape picture's losses and drawing, in milliseconds next to the trainer's step.

--big adds the same comparison for a 1,000,000-parameter MLP on mini-batches of 256 from
1,000,000 x 100 samples, and a linear model on all of them (full batch): tensors above
log_elements_max are logged as norms and histograms.

--checkpoints times saving a checkpoint (gradtrace.training.checkpoint: the whole run state, torch.save,
SHA-256, fsync, rename) for the worked examples and an MLP of about 1,000,000 parameters with
Adam, and what that costs per step at the default interval, trainer.checkpoint.every_steps=1000.

--loaders times data=file's reader (gradtrace.components.files.load_file) on a 1,000,000 x 20 float CSV
written to a temporary folder, against numpy.loadtxt of the same file, and on the same numbers as
.parquet and .npz; medians in seconds. --loaders-only skips the trainer's table.
"""

from __future__ import annotations

import argparse
import copy
import gc
import logging
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import bench_commands
import numpy as np
import torch
from hydra import compose, initialize_config_module

from gradtrace.components.data import batches
from gradtrace.components.files import load_file
from gradtrace.insight.picture import draw
from gradtrace.loggers import NullLogger
from gradtrace.setup.build import build_instruments, build_logger, build_run
from gradtrace.setup.plan import make_plan
from gradtrace.setup.resolvers import register
from gradtrace.training import checkpoint
from gradtrace.training.experiment import capture
from gradtrace.training.loop import train
from gradtrace.training.objective import Tracker

CONFIG_MODULE = "gradtrace.configs"


def bare_loop(model, loss_fn, optimizer, inputs, targets, steps: int, stream=None) -> None:
    """The loop a user would write; `stream` gives a batch each step, else the one batch."""
    for _ in range(steps):
        if stream is not None:
            inputs, targets = next(stream)
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        optimizer.step()


def bench_example(example: str, steps: int, repeats: int, out_dir: Path,
                  overrides: Sequence[str] = ()) -> dict[str, float]:
    """Medians of bare, trainer and logged, in microseconds per step. `overrides` replace
    model=<example> (the larger cases); mini-batches come to the bare loop the same way."""
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        chosen = list(overrides) or [f"model={example}"]
        cfg = compose("train", overrides=[*chosen, f"trainer.steps={steps}"])
    run = build_run(make_plan(cfg), str(out_dir))  # the landscape's picture goes there
    initial = copy.deepcopy(run.model.state_dict())
    inputs, targets = next(run.batches)
    plan = run.plan
    lr = run.optimizer.param_groups[0]["lr"]
    times: dict[str, list[float]] = {"bare": [], "trainer": [], "logged": [], "torch SGD": []}

    # trainer: only the element instrument's NaN/Inf check, nothing logged; logged: the default
    # instruments (on these runs: every element, and the landscape's path) into an event file.
    only_checks = replace(plan, instruments={"elements": plan.instruments["elements"]})

    def timed_train(logger, logged: bool = True, optimizer=None) -> float:
        run.model.load_state_dict(initial)
        instruments = build_instruments(plan if logged else only_checks, run.context)
        start = time.perf_counter()
        train(
            model=run.model, loss_fn=run.loss_fn, optimizer=optimizer or run.optimizer,
            batches=run.batches, instruments=instruments, logger=logger, steps=steps,
        )
        logger.close()
        # Less the landscape's computation and picture at the end (timed by --insight): the
        # per-step cost of watching, as a default run pays it.
        picture = instruments.costs().get("landscape", {}).get("hooks", {}).get("finish", 0.0)
        return time.perf_counter() - start - picture

    for repeat in range(repeats):
        run.model.load_state_dict(initial)
        optimizer = torch.optim.SGD(run.model.parameters(), lr=lr)
        stream = (batches(run.train_data, plan.batch_size, plan.seed, run.device)
                  if plan.batch_size else None)
        start = time.perf_counter()
        bare_loop(run.model, run.loss_fn, optimizer, inputs, targets, steps, stream)
        times["bare"].append(time.perf_counter() - start)
        times["trainer"].append(timed_train(NullLogger(""), logged=False))
        logger = tracked(run.plan, out_dir / f"{example}-{repeat}")
        times["logged"].append(timed_train(logger))
        logger = tracked(run.plan, out_dir / f"{example}-{repeat}-torch")
        torch_sgd = torch.optim.SGD(run.model.parameters(), lr=lr)
        times["torch SGD"].append(timed_train(logger, optimizer=torch_sgd))
    return {name: statistics.median(t) / steps * 1e6 for name, t in times.items()}


def tracked(plan, folder: Path) -> Tracker:
    """The run's logger behind the Tracker that watches the objective, as train_plan has it."""
    return Tracker(build_logger(plan, str(folder)), tags=[plan.objective.metric],
                   monitor=plan.monitor, mode=plan.objective.mode)


def bench_insight(example: str, repeats: int) -> dict[str, float]:
    """Median milliseconds of one gradient check, one explained step (the optimiser's step
    included), and the landscape's losses and picture after a 100-step run."""
    overrides = [f"model={example}", "trainer.grad_check.every_steps=1", "trainer.explain_steps=1"]
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with tempfile.TemporaryDirectory() as tmp:  # where the landscape instrument draws
        run = build_run(make_plan(cfg), tmp)
        train(
            model=run.model, loss_fn=run.loss_fn, optimizer=run.optimizer, batches=run.batches,
            instruments=run.instruments, logger=NullLogger(""), steps=100,
        )  # a real path for the landscape
    grad_check = run.instruments["grad_check"].check
    explainer = run.instruments["explain"].explainer
    landscape = run.instruments["landscape"]
    inputs, targets = next(run.batches)
    state = copy.deepcopy(run.model.state_dict())
    times: dict[str, list[float]] = {"grad check": [], "explained step": [], "landscape": [],
                                     "picture": []}
    for _ in range(repeats):
        run.optimizer.zero_grad()
        loss = run.loss_fn(run.model(inputs), targets)
        loss.backward()
        start = time.perf_counter()
        grad_check.check(0, inputs, targets)
        times["grad check"].append(time.perf_counter() - start)
        start = time.perf_counter()
        before = explainer.before_step(loss.item())
        run.optimizer.step()
        explainer.after_step(0, before, inputs, targets)
        times["explained step"].append(time.perf_counter() - start)
        run.model.load_state_dict(state)
        start = time.perf_counter()
        data = landscape.landscape.compute(landscape.trajectory)
        times["landscape"].append(time.perf_counter() - start)
        start = time.perf_counter()
        draw(data)
        times["picture"].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def bench_loaders(rows: int, repeats: int) -> None:
    """Write rows x 20 floats (19 features, the target y) as .csv, .parquet and .npz, and print
    the median seconds of reading each."""
    import pyarrow as pa
    from pyarrow import csv, parquet

    numbers = np.random.default_rng(0).normal(size=(rows, 20))
    names = [f"x{i}" for i in range(1, 20)] + ["y"]
    with tempfile.TemporaryDirectory() as tmp:
        path = {suffix: Path(tmp) / f"data{suffix}" for suffix in (".csv", ".parquet", ".npz")}
        table = pa.table(dict(zip(names, numbers.T)))
        csv.write_csv(table, path[".csv"])
        parquet.write_table(table, path[".parquet"])
        np.savez(path[".npz"], inputs=numbers[:, :19], targets=numbers[:, 19])
        readers = {
            "load_file .csv": lambda: load_file(str(path[".csv"]), target="y", features=None),
            "numpy.loadtxt .csv": lambda: np.loadtxt(path[".csv"], delimiter=",", skiprows=1),
            "load_file .parquet": lambda: load_file(str(path[".parquet"]), target="y",
                                                    features=None),
            "load_file .npz": lambda: load_file(str(path[".npz"]), target=None, features=None),
        }
        times: dict[str, list[float]] = {name: [] for name in readers}
        for _ in range(repeats):  # interleaved, as above
            for name, read in readers.items():
                start = time.perf_counter()
                read()
                times[name].append(time.perf_counter() - start)
        size = {name: path[name.split()[-1]].stat().st_size / 1e6 for name in readers}
    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"\nfile loaders: {rows:,} x 20 floats, {repeats} repeats, medians in seconds")
    print(f"{'reader':<20} {'MB':>8} {'seconds':>8} {'x load_file .csv':>17}")
    for name, seconds in median.items():
        print(f"{name:<20} {size[name]:8.1f} {seconds:8.3f} "
              f"{seconds / median['load_file .csv']:16.2f}x")


class MillionMLP(torch.nn.Module):
    """100 -> 1000 -> 900 -> 1 with tanh: 1,002,801 parameters."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(in_features, 1000), torch.nn.Tanh(), torch.nn.Linear(1000, 900),
            torch.nn.Tanh(), torch.nn.Linear(900, 1),
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs).squeeze(-1)


def bench_checkpoints(repeats: int) -> None:
    """Median milliseconds per checkpoint save, and its cost per step at every 1000 steps."""
    cases = {example: [f"model={example}"] for example in ("scalar", "linear", "regressor")}
    cases["mlp 1M, adam"] = [
        "model=regressor", "model._target_=__main__.MillionMLP", "optim=adam", "data.features=100",
        "data.samples=4096", "data.batch_size=256", "landscape.enabled=false",
    ]
    print(f"\ncheckpoints: median of {repeats} saves; per step at trainer.checkpoint.every_steps=1000")
    print(f"{'example':<14} {'parameters':>10} {'MB':>7} {'save ms':>8} {'step us':>8} "
          f"{'per step us':>12} {'of a step':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in cases.items():
            with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
                cfg = compose("train", overrides=[*overrides, "logger=none"])
            run = build_run(make_plan(cfg), tmp)
            inputs, targets = next(run.batches)
            bare_loop(run.model, run.loss_fn, run.optimizer, inputs, targets, 3)  # optimiser state
            step_times = []
            for _ in range(repeats):
                start = time.perf_counter()
                bare_loop(run.model, run.loss_fn, run.optimizer, inputs, targets, 20)
                step_times.append((time.perf_counter() - start) / 20)
            logger, folder = NullLogger(tmp), Path(tmp) / name.replace(" ", "_")
            folder.mkdir()
            save_times = []
            for k in range(repeats):
                start = time.perf_counter()
                path = checkpoint.save(folder, capture(run, logger, k + 1, 0.0, 0.0), keep=2)
                save_times.append(time.perf_counter() - start)
            save_ms, step_us = statistics.median(save_times) * 1e3, statistics.median(step_times) * 1e6
            per_step_us = save_ms * 1e3 / 1000
            count = sum(p.numel() for p in run.model.parameters())
            print(f"{name:<14} {count:>10,} {path.stat().st_size / 1e6:7.3f} {save_ms:8.2f} "
                  f"{step_us:8.1f} {per_step_us:12.2f} {per_step_us / step_us:9.1%}")


def bench_experiment(experiment: str, steps: int, repeats: int, out_dir: Path) -> dict[str, float]:
    """A worked classification experiment (its model, mini-batches, optimiser and schedule) as a
    bare loop (the same model, batches, torch.optim optimiser and lr_scheduler, nothing else)
    against gradtrace's train() with its default instruments (elements, accuracy/train, the
    validations, histograms) into an event file, and with logger=none and checks only.
    Medians in microseconds per step."""
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", f"trainer.steps={steps}"])
    run = build_run(make_plan(cfg), str(out_dir))
    plan, initial = run.plan, copy.deepcopy(run.model.state_dict())
    only_checks = replace(plan, instruments={"elements": plan.instruments["elements"]})
    times: dict[str, list[float]] = {"bare": [], "trainer": [], "logged": []}

    def fresh() -> tuple:
        run.model.load_state_dict(initial)
        optimizer = plan.optim.build(run.model.parameters())
        scheduler = plan.scheduler.build(optimizer) if plan.scheduler else None
        stream = batches(run.train_data, plan.batch_size, plan.seed, run.device)
        return optimizer, scheduler, stream

    def timed_train(logger, watched) -> float:
        optimizer, scheduler, stream = fresh()
        instruments = build_instruments(watched, replace(run.context, optimizer=optimizer))
        start = time.perf_counter()
        train(model=run.model, loss_fn=run.loss_fn, optimizer=optimizer, batches=stream,
              instruments=instruments, logger=logger, steps=steps, scheduler=scheduler)
        logger.close()
        return time.perf_counter() - start

    for repeat in range(repeats):  # interleaved
        optimizer, scheduler, stream = fresh()
        start = time.perf_counter()
        for _ in range(steps):
            inputs, targets = next(stream)
            optimizer.zero_grad()
            loss = run.loss_fn(run.model(inputs), targets)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        times["bare"].append(time.perf_counter() - start)
        times["trainer"].append(timed_train(NullLogger(""), only_checks))
        times["logged"].append(timed_train(tracked(plan, out_dir / f"{experiment}-{repeat}"), plan))
    return {name: statistics.median(t) / steps * 1e6 for name, t in times.items()}


CURVATURE = ("sharpness", "hessian_trace", "grad_noise")


def bench_curvature(model: list[str], steps: int, repeats: int, out_dir: Path) -> dict[str, float]:
    """Each curvature instrument (gradtrace.instruments.curvature) due every step and every 16
    steps, against the same loop with the element instrument alone; medians of the ratios."""
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose("train", overrides=[*model, f"trainer.steps={steps}",
                                          f"instruments=[elements,{','.join(CURVATURE)}]"])
    run = build_run(make_plan(cfg), str(out_dir))
    plan, initial = run.plan, copy.deepcopy(run.model.state_dict())
    cases = {"bare": {"elements": plan.instruments["elements"]}}
    for name in CURVATURE:
        target, _ = plan.instruments[name]
        for every in (1, 16):
            cases[f"{name} every {every}"] = {"elements": plan.instruments["elements"],
                                             name: (target, every)}
    times: dict[str, list[float]] = {case: [] for case in cases}
    for _ in range(repeats):  # interleaved
        for case, chosen in cases.items():
            run.model.load_state_dict(initial)
            optimizer = plan.optim.build(run.model.parameters())
            instruments = build_instruments(replace(plan, instruments=chosen),
                                            replace(run.context, optimizer=optimizer))
            stream = batches(run.train_data, plan.batch_size, plan.seed, run.device)
            start = time.perf_counter()
            train(model=run.model, loss_fn=run.loss_fn, optimizer=optimizer, batches=stream,
                  instruments=instruments, logger=NullLogger(""), steps=steps)
            times[case].append(time.perf_counter() - start)
    bare = statistics.median(times["bare"])
    return {case: statistics.median(t) / bare for case, t in times.items() if case != "bare"}


BIG = {  # name: (overrides, steps)
    "mlp 1M, batch 256": (bench_commands.MLP, 100),
    "linear, 1M x 100 full": (bench_commands.LINEAR, 20),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--examples", nargs="+", default=["scalar", "linear", "regressor"])
    parser.add_argument("--curvature", action="store_true",
                        help="also the curvature instruments' overheads (regressor, MLP)")
    parser.add_argument("--experiments", nargs="*", default=["digits_mlp", "spiral_mlp"],
                        help="worked classification experiments to time (none: skip)")
    parser.add_argument("--insight", action="store_true", help="also time gradient insight")
    parser.add_argument("--checkpoints", action="store_true", help="also time checkpoints")
    parser.add_argument("--big", action="store_true",
                        help="also a 1M-parameter MLP and 1,000,000 x 100 data (a few minutes)")
    parser.add_argument("--commands", action="store_true",
                        help="also whole commands, start-up, summaries, 1 vs 2 processes")
    parser.add_argument("--all", action="store_true", help="--big and --commands (many minutes)")
    parser.add_argument("--loaders", action="store_true", help="also time the file loaders")
    parser.add_argument("--loaders-only", action="store_true", help="time the file loaders only")
    parser.add_argument("--loader-rows", type=int, default=1_000_000)
    parser.add_argument("--loader-repeats", type=int, default=3)
    args = parser.parse_args()
    args.big |= args.all
    args.commands |= args.all
    if args.loaders_only:
        bench_loaders(args.loader_rows, args.loader_repeats)
        return
    register()
    logging.basicConfig(level=logging.WARNING)
    # As scripts/train.py does before a run: what exists now lives to the end, so a full
    # collection during a long loop need not walk torch's and Hydra's objects (it would land on
    # whichever loop is running when it comes).
    gc.freeze()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{args.steps} steps x {args.repeats} repeats, medians in microseconds per step")
    print(f"{'example':<10} {'bare':>8} {'trainer':>8} {'logged':>8} {'torch SGD':>10} "
          f"{'trainer/bare':>13} {'logged/bare':>12} {'torch SGD logged/bare':>22}")
    step_ms: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for example in args.examples:
            t = bench_example(example, args.steps, args.repeats, Path(tmp))
            print(f"{example:<10} {t['bare']:8.1f} {t['trainer']:8.1f} {t['logged']:8.1f} "
                  f"{t['torch SGD']:10.1f} {t['trainer'] / t['bare']:12.3f}x "
                  f"{t['logged'] / t['bare']:11.3f}x {t['torch SGD'] / t['bare']:21.3f}x")
            step_ms[example] = t["trainer"] / 1e3
    if args.experiments:
        print(f"\n{'experiment':<20} {'bare':>8} {'trainer':>8} {'logged':>8} {'trainer/bare':>13} "
              f"{'logged/bare':>12}")
        with tempfile.TemporaryDirectory() as tmp:
            for experiment in args.experiments:
                t = bench_experiment(experiment, args.steps, args.repeats, Path(tmp))
                print(f"{experiment:<20} {t['bare']:8.1f} {t['trainer']:8.1f} {t['logged']:8.1f} "
                      f"{t['trainer'] / t['bare']:12.3f}x {t['logged'] / t['bare']:11.3f}x")
    if args.curvature:
        models = {"regressor": ["model=regressor"],
                  "mlp, batches of 64": ["model=mlp", "data.batch_size=64"]}
        print(f"\ncurvature instruments: time / (loop with elements alone), medians of "
              f"{args.repeats}, {min(args.steps, 320)} steps")
        with tempfile.TemporaryDirectory() as tmp:
            for name, model in models.items():
                ratios = bench_curvature(model, min(args.steps, 320), args.repeats, Path(tmp))
                print(f"{name:<20} " + "  ".join(f"{case} {r:.2f}x" for case, r in ratios.items()))
    if args.big:
        with tempfile.TemporaryDirectory() as tmp:
            for name, (overrides, steps) in BIG.items():
                t = bench_example(name, steps, min(args.repeats, 3), Path(tmp), overrides)
                print(f"{name:<22} {t['bare']:9.0f} {t['trainer']:9.0f} {t['logged']:9.0f} "
                      f"{t['torch SGD']:9.0f} {t['trainer'] / t['bare']:8.3f}x "
                      f"{t['logged'] / t['bare']:8.3f}x {t['torch SGD'] / t['bare']:8.3f}x")
    if args.commands:
        bench_commands.main(args.repeats)
    if args.insight:
        print("\ngradient insight, medians in milliseconds (x: in trainer steps)")
        print(f"{'example':<10} {'grad check':>16} {'explained step':>16} {'landscape':>10} "
              f"{'picture':>8}")
        for example in args.examples:
            t = bench_insight(example, args.repeats)
            check, explain = t["grad check"], t["explained step"]
            print(f"{example:<10} {check:7.2f} ({check / step_ms[example]:5.0f}x) "
                  f"{explain:7.2f} ({explain / step_ms[example]:5.0f}x) "
                  f"{t['landscape']:10.1f} {t['picture']:8.1f}")
    if args.checkpoints:
        bench_checkpoints(args.repeats)
    if args.loaders:
        bench_loaders(args.loader_rows, args.loader_repeats)


if __name__ == "__main__":
    main()
