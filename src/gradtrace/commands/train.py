"""`gradtrace train OVERRIDES` (and `python scripts/train.py`, `python -m gradtrace train`): the
Hydra task that runs each job, the experiment, then an exit code for a single run or a number
for a sweeper.

A failed run prints one line and exits with 2 (a bad config value or a user's object that cannot
be built), 3 (NaN/Inf, see optim.lr) or 4 (trainer.grad_check.strict and a gradient disagreed with
its check). A failed job of a sweep (-m) returns +inf instead, so that the other jobs go on and a
minimising sweeper ranks it last; the sweep's summary lists it, and the sweep exits with 1.
SIGTERM and SIGINT stop a run after its current step, with a checkpoint: one line, exit 143 or 130
(a sweep stops there too). An output location that cannot be written (a full disk, a file where
the run folder should be, no permission): one line, exit 2, as for any environment problem.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import math
import multiprocessing
import os
import re
import sys
import threading
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from gradtrace.errors import ConfigError, Interrupted, exit_code, output_error
from gradtrace.setup.resolvers import register
from gradtrace.training import checkpoint, distributed
from gradtrace.training.experiment import check_new_folder, describe, run_experiment

log = logging.getLogger("gradtrace")
CONFIGS = "pkg://gradtrace.configs"  # configs/ of the repository, inside the installed package


def run(argv: list[str], prog: str = "gradtrace train") -> None:
    """The command line `gradtrace train ARGV`: Hydra's arguments and overrides, as
    `python scripts/train.py ARGV` takes them. Ends the process with the run's exit code."""
    try:
        argv = prepare_overrides(argv)
    except ConfigError as error:
        print(error, file=sys.stderr)
        sys.exit(exit_code(error))
    register()
    sys.argv = [prog, *argv]  # what Hydra parses, and the name its --help shows
    with exit_when_done():  # the run is written: skip the interpreter's slow teardown
        with distributed.joined():  # under torchrun: join the other processes (alone: nothing)
            with known_mode(argv):
                hydra_task()


# What brings configs other than gradtrace's own, which might set hydra.mode.
OWN_CONFIGS = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn")


@contextlib.contextmanager
def known_mode(argv: list[str]) -> Iterator[None]:
    """Before it runs anything, Hydra composes the whole config once only to read hydra.mode (a
    config that sets it to MULTIRUN sweeps without -m), and then again to run: 0.3 s of every
    command. gradtrace's configs never set hydra.mode, so unless the command line brings configs
    of its own (a config folder or name, a search path) or sets hydra.mode itself, the answer
    is known: none, and -m decides, as it would after the probe."""
    from hydra._internal.hydra import Hydra

    keys = {arg.partition("=")[0].lstrip("+~") for arg in argv}
    if keys & {*OWN_CONFIGS, "hydra.mode", "hydra.searchpath"} or not hasattr(Hydra, "get_mode"):
        yield
        return
    probe = Hydra.get_mode
    Hydra.get_mode = lambda self, config_name, overrides: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        Hydra.get_mode = probe  # type: ignore[method-assign]


NAME_MAX = 255  # a file name's length limit, and so a config group's and a key's
GRAMMAR = set(" \t'\"\\,()[]{}=:$")  # what Hydra's override grammar reads as more than text
NOT_AN_OPTION = re.compile(r"^(null|true|false|[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)$", re.I)


def prepare_overrides(argv: list[str]) -> list[str]:
    """The overrides as Hydra should get them, or a ConfigError for what Hydra would answer with
    a traceback: a key longer than a file name (Hydra looks for a config group of that name), a
    config group given null, a flag or a number instead of an option's name. A value with
    letters outside ASCII (hydra.run.dir=/tmp/rün), which Hydra's lexer takes only in quotes, is
    quoted for it when it holds nothing else Hydra's grammar reads."""
    groups = {entry.name for entry in resources.files("gradtrace.configs").iterdir()
              if entry.is_dir() and not entry.name.startswith("_")}
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if arg.startswith("-") or not eq:
            out.append(arg)  # Hydra's flags (-m, --cfg job, --config-dir DIR) and their values
            continue
        name = key.lstrip("+~")
        long = next((part for part in re.split(r"[./@]", name) if len(part) > NAME_MAX), None)
        if long is not None:
            raise ConfigError(f"the override key {long[:20]}... is {len(long)} characters long; "
                              f"no setting or config group name is longer than {NAME_MAX}")
        if name in groups and NOT_AN_OPTION.match(value):
            drop = f"; ~{name} drops the group's choice" if value.lower() == "null" else ""
            raise ConfigError(f"{name}={value}: the config group {name} takes the name of one of "
                              f"its options, e.g. {name}={_an_option(name)} (gradtrace train --help "
                              f"lists them){drop}")
        if not value.isascii() and not GRAMMAR & set(value):
            arg = f"{key}='{value}'"  # as the user could have written it
        out.append(arg)
    return out


def _an_option(group: str) -> str:
    options = sorted(entry.name.removesuffix(".yaml") for entry in
                     resources.files("gradtrace.configs").joinpath(group).iterdir()
                     if entry.name.endswith(".yaml"))
    return "default" if "default" in options else (options[0] if options else "...")


@hydra.main(version_base="1.3", config_path=CONFIGS, config_name="train")
def hydra_task(cfg: DictConfig) -> float:
    return main(cfg)


def main(cfg: DictConfig) -> float:
    """The Hydra task: run one job, return its objective (config key `objective`)."""
    # A user's own classes (model._target_=mypackage.MLP) import from the folder they run from,
    # as with `python -m`; appended, so it never shadows an installed package.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    hydra_config = HydraConfig.get()
    multirun = hydra_config.mode == RunMode.MULTIRUN
    run_dir = hydra_config.runtime.output_dir
    if multirun and checkpoint.checkpoints(run_dir) and not cfg.trainer.resume:
        # A sweep job that finds its own checkpoint was stopped and requeued (submitit, on a
        # preemption or time limit): it goes on from there.
        log.info("this job has a checkpoint in %s: resuming it", run_dir)
        cfg.trainer.resume = True
    if not multirun:
        # The process ends with this run: what exists now (torch, Hydra, ...) lives until then,
        # so the garbage collector need not walk it again at each collection and at exit (0.8 s
        # of a 20,000-step regressor run's 8.6). Not in a sweep, whose process runs many jobs.
        gc.freeze()
    try:
        with _submitit_tasks():
            outcome = run_experiment(cfg, run_dir, hydra_config.runtime.choices)
    except Exception as error:
        return give_up(error, multirun=multirun)
    return outcome.objective


@contextlib.contextmanager
def _submitit_tasks() -> Iterator[None]:
    """A submitit job of several tasks (hydra.launcher.tasks_per_node, nodes) is one run on that
    many processes: join them (gradtrace.training.distributed), as torchrun's would. Ranks other than 0
    keep their log lines out of the job's log file and print only warnings and errors."""
    environment = _submitit_environment()
    if environment is None or environment.num_tasks <= 1 or distributed.world().distributed:
        yield
        return
    from submitit.helpers import TorchDistributedEnvironment

    TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    place = distributed.from_env()
    if not place.is_main:
        root = logging.getLogger()
        root.handlers = [h for h in root.handlers if not isinstance(h, logging.FileHandler)]
        root.setLevel(logging.WARNING)
    with distributed.session(place):
        yield


def _submitit_environment() -> Any:
    """submitit's JobEnvironment inside a submitit job; None elsewhere (or without submitit)."""
    try:
        import submitit
    except ImportError:
        return None
    try:
        return submitit.JobEnvironment()
    except RuntimeError:  # not in a submitit job
        return None


class BelowWarning(logging.Filter):
    """The console's stdout handler keeps the log lines below WARNING; warnings and errors go to
    stderr (configs/hydra/job_logging/gradtrace.yaml)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


class CheckOutputFolder(Callback):
    """Hydra creates the run (or sweep) folder before any of our code runs, and reports a failure
    with a traceback; this callback tries first, and stops with one line and exit 2."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        trainer = config.get("trainer") or {}
        try:  # before Hydra writes .hydra/ and train.log there
            check_new_folder(config.hydra.run.dir, resume=bool(trainer.get("resume")),
                             overwrite=bool(trainer.get("overwrite")))
        except ConfigError as error:
            print(error, file=sys.stderr)
            sys.exit(exit_code(error))
        _check_writable(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_writable(config.hydra.sweep.dir)


def _check_writable(folder: str) -> None:
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".gradtrace-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        print(output_error(error), file=sys.stderr)
        sys.exit(exit_code(output_error(error)))


@contextlib.contextmanager
def exit_when_done() -> Iterator[None]:
    """For `gradtrace train`: once the run (or sweep) has ended, end the process at once with its
    exit code. Everything it wrote is closed by then (event file, checkpoints, result.json), and
    the exit handlers still run (logging's flush, any a user's code registered); what is skipped
    is the interpreter tearing down torch's modules and objects one by one, about 0.5 s of a
    short run (0.7-0.9 s after a bare torch script). Only when nothing else runs: a process that
    still has worker processes or threads (joblib's, a user's) exits the ordinary way, which
    waits for them, and so does one under a profiler or debugger, which reports at the end. An
    exception other than SystemExit (a bug) goes the ordinary way too."""
    try:
        yield
    except SystemExit as stop:
        code = stop.code
    else:
        code = 0
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    watched = sys.getprofile() is not None or sys.gettrace() is not None  # cProfile, pdb, coverage
    if others or multiprocessing.active_children() or watched:
        sys.exit(code)
    if not isinstance(code, int):  # sys.exit("message") or sys.exit(None)
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def give_up(error: Exception, *, multirun: bool) -> float:
    """One line and the exit code for a single run; +inf for a sweep job, so the sweep goes on."""
    code = exit_code(error)
    if isinstance(error, Interrupted):  # not a failure of this job: the user stops everything
        log.warning("%s", error)
        sys.exit(code)
    if code is None and not multirun:
        raise error  # a bug, not a bad value or a divergence: Hydra prints the traceback
    log.error("%s", describe(error), exc_info=error if code is None else None)
    if multirun:
        return math.inf
    sys.exit(code)
