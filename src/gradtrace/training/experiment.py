"""One experiment, start to end: check the config, build (or resume from a checkpoint), train,
always close the logger, draw the landscape, report, and record how it ended in result.json. The
CLI (`gradtrace train`, gradtrace.commands.train) and the Python API (gradtrace.run) both run
experiments through `run_experiment`.
"""

from __future__ import annotations

import io
import json
import logging
import math
import signal
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
from omegaconf import DictConfig
from torch import nn

from gradtrace.atomic import write_atomically
from gradtrace.errors import ConfigError, Interrupted, NonFiniteError, exit_code, output_error
from gradtrace.instruments.checkpoints import Checkpoints
from gradtrace.loggers.reading import Series, read_scalars
from gradtrace.setup.build import Run, build_logger, build_run
from gradtrace.setup.plan import Plan, make_plan
from gradtrace.sweeps.result import (
    COMPLETED,
    FAILED,
    FILENAME,
    INTERRUPTED,
    JobResult,
    read_result,
    write_result,
)
from gradtrace.training import checkpoint, distributed
from gradtrace.training.loop import TrainResult, train
from gradtrace.training.objective import Tracker
from gradtrace.training.report import summary_lines
from gradtrace.training.signals import StopRequest

log = logging.getLogger("gradtrace")


@dataclass
class RunResult:
    """One run as it ended: what the loop did and what was trained. `gradtrace train` returns its
    objective to the sweeper; `gradtrace.run` returns it whole."""

    run_dir: Path
    train: TrainResult  # the loop's: steps, losses, why it stopped, what it logged at the end
    objective: float  # the value of objective.metric (NaN if never logged): what a sweeper optimises
    run: Run  # what was trained: the model, the data, the instruments
    instruments: dict[str, dict[str, Any]]  # name -> its own seconds, calls, seconds per hook
    best_value: Optional[float] = None  # the best logged value of the objective's series
    best_step: Optional[int] = None  # the step that logged it
    metrics: dict[str, float] = field(default_factory=dict)  # each metric tag's last value

    @property
    def final_loss(self) -> float:
        return self.train.final_loss  # the loss of the last step's batch, before its update

    @property
    def best_loss(self) -> float:
        return self.train.best_loss

    @property
    def val_loss(self) -> Optional[float]:
        return val_loss(self.train)  # on the validation samples after the last step

    @property
    def steps(self) -> int:
        return self.train.steps

    @property
    def stopped(self) -> Optional[str]:
        return self.train.stopped

    @property
    def model(self) -> nn.Module:
        return self.run.model  # trained

    @cached_property
    def history(self) -> dict[str, Series]:
        """Every logged scalar tag: .steps, .values (NumPy arrays), read from the event file."""
        return read_scalars(self.run_dir)


def val_loss(result: TrainResult) -> Optional[float]:
    """The validation loss after the last step (the validation instrument's), if any."""
    return result.final.get("loss/val")


def run_experiment(
    cfg: DictConfig, run_dir: str, choices: Mapping[str, Optional[str]] | None = None
) -> RunResult:
    """Run the experiment `cfg` describes into `run_dir`, and write its result.json whether it
    completes, fails (the error is raised again) or is stopped by SIGTERM or SIGINT (then
    Interrupted is raised, after a checkpoint). In a distributed run, every rank runs this and
    rank 0 alone writes."""
    start = time.perf_counter()
    stop = StopRequest()
    place = distributed.world()
    try:
        with stop.installed():
            plan = make_plan(cfg, choices)  # the checks that need no object: before anything
            outcome = train_plan(plan, run_dir, stop, place)
        result = outcome.train
        if place.is_main:
            write_result(run_dir, JobResult(
                INTERRUPTED if result.stopped == "signal" else COMPLETED,
                stopped=result.stopped,
                final_loss=result.final_loss,
                best_loss=result.best_loss,
                val_loss=val_loss(result),
                objective=plan.objective.metric,
                mode=plan.objective.mode,
                value=outcome.objective,
                best_value=outcome.best_value,
                best_step=outcome.best_step,
                metrics=outcome.metrics or None,
                steps=result.steps,
                seconds=time.perf_counter() - start,
                train_seconds=result.seconds,
                threads=torch.get_num_threads(),
                world_size=place.size,
                instruments=outcome.instruments,
            ))
    except KeyboardInterrupt:  # Ctrl-C twice: stopped at once, wherever the run was
        try:
            if place.is_main:
                write_result(run_dir, JobResult(
                    INTERRUPTED, stopped="signal", seconds=time.perf_counter() - start,
                    error="a second Ctrl-C stopped the run at once; its newest checkpoint holds "
                          "where it can go on from", world_size=place.size))
        except (OSError, KeyboardInterrupt):
            pass
        raise Interrupted(f"SIGINT twice: stopped at once; resume from the newest checkpoint "
                          f"with: gradtrace resume {run_dir}", signal.SIGINT) from None
    except Exception as error:
        if isinstance(error, OSError):  # writing the outputs failed: a world fault, one line
            error = output_error(error)
        seconds = time.perf_counter() - start
        try:
            if place.is_main:
                write_result(run_dir, JobResult(FAILED, error=describe(error), seconds=seconds,
                                                world_size=place.size))
        except OSError:
            pass  # the disk is full or gone: no result.json, rather than a partial one
        raise error from None
    if result.stopped == "signal":
        # Across processes, the rank that was signalled may be another: its signal's code.
        signum = stop.signum or signal.SIGTERM
        name = signal.Signals(signum).name
        stop.pass_on()  # under submitit, preemption: it requeues the job (and exits) here
        raise Interrupted(
            f"{name}: stopped after step {result.steps - 1} of {plan.trainer.steps}, every logged "
            f"step and a checkpoint written; resume with: gradtrace resume {run_dir}",
            signum,
        )
    return outcome


def check_new_folder(folder: str | Path, *, resume: bool, overwrite: bool) -> None:
    """A new run goes into a new or empty folder: one that holds files (an earlier run's
    result.json, checkpoints, event file) is refused unless the run resumes it
    (trainer.resume=true) or trainer.overwrite=true says to write there anyway."""
    path = Path(folder)
    if resume or overwrite or not path.is_dir():
        return
    held = sorted(entry.name for entry in path.iterdir())
    earlier = read_result(path)
    if set(held) <= {".hydra", "train.log", FILENAME} and (earlier is None or earlier.status == FAILED):
        return  # a run that failed before it wrote anything else (a bad value): nothing to lose
    if held:
        shown = ", ".join(held[:4]) + (f" and {len(held) - 4} more" if len(held) > 4 else "")
        where = f"{str(folder)!r} (the current folder)" if str(folder) in ("", ".") else folder
        run = {FILENAME, "checkpoints", ".hydra"} & set(held)
        go_on = f"continue that run with: gradtrace resume {path}, or " if run else ""
        raise ConfigError(
            f"hydra.run.dir={where} already holds {shown}: a new run goes into a new or empty "
            f"folder; {go_on}write there anyway with trainer.overwrite=true"
        )


def train_plan(
    plan: Plan,
    run_dir: str,
    stop: Optional[StopRequest] = None,
    place: distributed.World = distributed.ALONE,
) -> RunResult:
    run = build_run(plan, run_dir, place)  # the remaining checks (data, model, instruments)
    # As configured (on every rank alike: on others than 0 these instruments stay out).
    parts = [part for part, instrument in (("train", "metrics"), ("val", "validation"))
             if instrument in plan.instruments and (part == "train" or plan.has_validation)]
    metric_tags = [f"{name}/{part}" for name in run.metrics for part in parts]
    check_logged(plan, run, metric_tags)
    state = resume(run, run_dir) if plan.trainer.resume else None
    stop = stop or StopRequest()
    early = plan.early_stopping
    logger = Tracker(
        build_logger(plan, run_dir, state["events"] if state else None, place),
        tags=[plan.objective.metric, *metric_tags], monitor=early.metric or plan.monitor,
        mode=early.mode or plan.objective.mode, patience=early.patience,
        min_delta=early.min_delta, request_stop=stop.request,
        on_best=lambda step: save_best(run, run_dir, step) if place.is_main else None,
    )
    if state is not None and "tracker" in state:
        logger.load_state_dict(state["tracker"])
    if place.is_main and run.train_data.classes is not None:  # label i is classes[i]
        write_atomically(Path(run_dir) / "classes.json", json.dumps(run.train_data.classes) + "\n")
    # Across processes, the ranks average their losses and agree on stopping, at every step.
    agreement = distributed.StepAgreement(place, lambda: stop.reason() is not None) \
        if place.distributed else None
    # Last, so that each step's checkpoint holds what the others logged (gradtrace.instruments).
    run.instruments.mount("checkpoints", Checkpoints(
        run_dir, plan.trainer.checkpoint.every_steps, plan.trainer.checkpoint.keep,
        capture=lambda steps_done, loss, best: capture(run, logger, steps_done, loss, best),
    ))
    summaries = ["loss/final", "loss/best"] + (["loss/val_final"] if plan.has_validation else [])
    try:
        if state is None:  # a resumed run's event file has them already
            # Four-space indent: TensorBoard's text dashboard renders Markdown, this as code.
            logger.log_text(0, "config", "\n".join("    " + line
                                                   for line in plan.config_yaml.splitlines()))
            logger.log_hparams(plan.hparams, summaries + metric_tags)
        result = train(
            model=run.model,
            forward=run.forward,
            loss_fn=run.loss_fn,
            optimizer=run.optimizer,
            batches=run.batches,
            instruments=run.instruments,
            logger=logger,
            steps=plan.trainer.steps,
            log_every_steps=plan.trainer.log_every_steps,
            accumulate_steps=plan.trainer.accumulate_steps,
            clip_grad_norm=plan.trainer.clip_grad_norm,
            clip_grad_value=plan.trainer.clip_grad_value,
            scheduler=run.scheduler,
            plateau_metric=plan.monitor,
            stop=_agreed(agreement, stop) if agreement else stop.reason,
            request_stop=stop.request,
            read_loss=agreement.loss if agreement else torch.Tensor.item,
            start_step=state["step"] if state else 0,
            last_loss=state["loss"] if state else math.nan,
            best_loss=state["best_loss"] if state else math.inf,
        )
        if result.stopped != "signal":
            summary = {"loss/final": result.final_loss, "loss/best": result.best_loss}
            if val_loss(result) is not None:
                summary["loss/val_final"] = result.final["loss/val"]
            logger.log_scalars(result.steps - 1, summary)
    except NonFiniteError as error:  # the one line says what the instruments saw before it
        raise NonFiniteError(" ".join([str(error), *run.instruments.diagnoses()])) from None
    finally:
        logger.close()  # flushes every buffered step, also when training failed
    objective = logger.last.get(plan.objective.metric, math.nan)
    if place.is_main and result.stopped != "signal" and not math.isfinite(objective):
        log.warning("objective.metric=%s was never logged with a finite value: the objective is "
                    "NaN", plan.objective.metric)
    outcome = RunResult(Path(run_dir), result, objective, run, run.instruments.costs(),
                        best_value=logger.best_value, best_step=logger.best_step,
                        metrics={tag: logger.last[tag] for tag in metric_tags if tag in logger.last})
    if place.is_main and result.stopped != "signal":
        for line in summary_lines(result, run.model, run_dir, outcome.instruments):
            log.info("%s", line)
    return outcome


def check_logged(plan: Plan, run: Run, metric_tags: list[str]) -> None:
    """Refuse, before step 0, an objective (or early-stopping metric) tag that this run never
    logs. Known: the loss tags, the metrics', optim/lr, <name>/... of every instrument with the
    default prefix, and what one with tag_prefix "" declares in `tags_under`; one that declares
    nothing may log anything, and then any tag is taken."""
    groups = len(run.optimizer.param_groups)
    known = {"loss/train", "loss/final", "loss/best", *metric_tags,
             *(["optim/lr"] if groups == 1 else [f"optim/lr/group{i}" for i in range(groups)])}
    if plan.has_validation:
        known |= {"loss/val", "loss/val_final"}
    if plan.trainer.clip_grad_norm is not None or plan.trainer.clip_grad_value is not None:
        known.add("grad_norm/clipped")
    prefixes: list[str] = []
    for name, (target, _) in plan.instruments.items():  # as configured: alike on every rank
        prefix = getattr(target.factory, "tag_prefix", f"{name}/")
        under = (prefix,) if prefix else getattr(target.factory, "tags_under", None)
        if under is None:
            return  # no prefix and no tags_under: its tags cannot be known before it runs
        prefixes += under
    for key, tag in (("objective.metric", plan.objective.metric),
                     ("early_stopping.metric", plan.early_stopping.metric)):
        if tag is not None and tag not in known and not tag.startswith(tuple(prefixes)):
            raise ConfigError(
                f"{key}={tag} is never logged by this run; it logs {', '.join(sorted(known))}"
                f"{' and ' + ', '.join(p + '...' for p in prefixes) if prefixes else ''}"
            )


def save_best(run: Run, run_dir: str, step: int) -> None:
    """The model at the early-stopping metric's best so far, as best_model.pt in the run folder:
    torch.load(...)["model"] is its state_dict, ["step"] the step whose parameters they are."""
    buffer = io.BytesIO()
    torch.save({"step": step, "model": run.model.state_dict()}, buffer)
    write_atomically(Path(run_dir) / "best_model.pt", buffer.getvalue())


def _agreed(agreement: distributed.StepAgreement, stop: StopRequest) -> Callable[[], Optional[str]]:
    """Why to stop now, once every rank has heard of it (the ranks stop at the same step)."""
    return lambda: (stop.reason() or "signal") if agreement.stop() else None


def capture(
    run: Run, logger: Tracker, steps_done: int, loss: float, best: float
) -> Optional[dict[str, Any]]:
    """The state a checkpoint holds after `steps_done` steps (see gradtrace.training.checkpoint);
    None on ranks other than 0, which only hand rank 0 their random number generators' states."""
    rngs = distributed.gather(checkpoint.rng_state(), run.place)  # one per rank
    if rngs is None:
        return None
    return {
        "step": steps_done,
        "loss": loss,
        "best_loss": best,
        "config": run.plan.identity,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
        "tracker": logger.state_dict(),
        "rng": rngs,
        "world_size": run.place.size,
        "batches": checkpoint.batch_state(run.batches),
        "instruments": run.instruments.state_dict(),
        "events": logger.flush(),  # every step so far written out; where the file stands
    }


def resume(run: Run, run_dir: str) -> dict[str, Any]:
    """Put `run` back where the newest valid checkpoint in `run_dir` left it; return that state."""
    found = checkpoint.newest_valid(run_dir)
    if found is None:
        raise ConfigError(
            f"trainer.resume=true needs a checkpoint in {Path(run_dir) / checkpoint.FOLDER}, and "
            f"there is none that reads back intact"
        )
    path, state = found
    if state["config"] != run.plan.identity:
        raise ConfigError(
            f"trainer.resume=true: {path} was written with another config; a run resumes with its "
            f"own (only trainer.steps and trainer.checkpoint may change): gradtrace resume "
            f"{run_dir} reruns it"
        )
    if state.get("world_size", 1) != run.place.size:
        raise ConfigError(
            f"{path} was written by a run of {state.get('world_size', 1)} process(es); resume it "
            f"with as many (torchrun --nproc_per_node), got {run.place.size}"
        )
    if state["step"] > run.plan.trainer.steps:
        raise ConfigError(
            f"trainer.steps must be at least the checkpoint's {state['step']} steps to resume "
            f"from {path}, got {run.plan.trainer.steps}"
        )
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    if run.scheduler is not None and state.get("scheduler") is not None:
        run.scheduler.load_state_dict(state["scheduler"])
    rngs = state["rng"]  # one per rank (a dict: written before multi-process runs)
    checkpoint.set_rng_state(rngs[run.place.rank] if isinstance(rngs, list) else rngs)
    checkpoint.set_batch_state(run.batches, state["batches"])
    run.instruments.load_state_dict(state.get("instruments") or {})
    log.info("resuming from %s: %d of %d steps done", path, state["step"], run.plan.trainer.steps)
    return state


def describe(error: BaseException) -> str:
    """A user's error by its message alone; anything else with its type, as it is a bug."""
    return str(error) if exit_code(error) is not None else f"{type(error).__name__}: {error}"
