"""A Hydra sweeper on the current Optuna, with studies stored in the sweep folder.

Hydra's own Optuna plugin pins optuna<3, whose sqlite storage fails with SQLAlchemy 2, so its
studies live in memory: a killed search loses every trial, and a failed trial is recorded as a
completed one of value +inf. This one keeps the same interface (`hydra/sweeper=...`, `params`
with choice(), interval(), tag(log, interval()) and range(), direction, n_trials, n_jobs) and:

- optimises the run's objective in the direction objective.mode says (unless direction is set);

- stores the study in <sweep folder>/optuna.db (sqlite), so that the same command with
  hydra.sweep.dir=<that folder> resumes a killed search with its finished trials;
- records a trial whose job failed (it returns +inf or NaN, or raises) as FAILED, which TPE
  leaves out of its model; when a killed search resumes, a trial it was running takes the value
  its job's result.json recorded, or is FAILED if the job did not complete;
- numbers the jobs after the trials, so a job's folder is <trial number>_<overrides>.

Trials are asked n_jobs at a time and launched together by the configured launcher.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from gradtrace.sweeps.result import COMPLETED, read_result
from hydra_plugins.gradtrace_optuna.config import GradtraceOptunaConf  # noqa: F401 (registers it)

if TYPE_CHECKING:
    # Imported where the sweeper runs: Hydra imports every plugin module at every start, and
    # optuna's import would cost every run 30 ms.
    import optuna

log = logging.getLogger(__name__)
STORAGE_FILE = "optuna.db"
Suggest = Callable[["optuna.Trial"], Any]


class GradtraceOptunaSweeper(Sweeper):
    def __init__(self, direction: Optional[str], study_name: str, n_trials: int, n_jobs: int,
                 seed: Optional[int], params: Optional[DictConfig]) -> None:
        if direction not in (None, "minimize", "maximize"):
            raise ValueError(f"hydra.sweeper.direction must be null (from objective.mode), "
                             f"minimize or maximize, got {direction!r}")
        self.direction = direction
        self.study_name = study_name
        self.n_trials, self.n_jobs, self.seed = n_trials, max(1, n_jobs), seed
        self.params = {str(k): str(v) for k, v in (params or {}).items()}

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.run_config = config  # not `config`/`launcher`: the base class types them Optional
        if self.direction is None:  # the objective says which way is better
            mode = OmegaConf.select(config, "objective.mode", default="min")
            self.direction = "maximize" if mode == "max" else "minimize"
        self.run_launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        import optuna

        sweep_dir = Path(self.run_config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.run_config, sweep_dir / "multirun.yaml")
        space, fixed = search_space([f"{k}={v}" for k, v in self.params.items()] + arguments)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=f"sqlite:///{(sweep_dir / STORAGE_FILE).resolve()}",
            sampler=optuna.samplers.TPESampler(seed=self.seed),
            direction=optuna.study.StudyDirection[(self.direction or "minimize").upper()],
            load_if_exists=True,
        )
        for cut in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            # Running when the search was killed: its job may have finished first.
            value = _finished_value(sweep_dir, cut.number)
            if value is None:
                study.tell(cut.number, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(cut.number, value)
        finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL,
                    optuna.trial.TrialState.PRUNED)
        done = len(study.get_trials(deepcopy=False, states=finished))
        if done:
            log.info("resuming the search in %s: %d of %d trials done", sweep_dir, done,
                     self.n_trials)
        while done < self.n_trials:
            trials = [study.ask() for _ in range(min(self.n_jobs, self.n_trials - done))]
            batch = [tuple(f"{key}={suggest(trial)}" for key, suggest in space.items()) + fixed
                     for trial in trials]
            returns = self.run_launcher.launch(batch, initial_job_idx=trials[0].number)
            for trial, job in zip(trials, returns):
                value = _value(job)
                if value is None:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, value)
            done += len(trials)
        _write_results(study, sweep_dir)


def _value(job: Any) -> Optional[float]:
    """The job's finite return value; None when it failed (+inf or NaN returned, or raised)."""
    try:
        value = float(job.return_value)
    except Exception as error:  # the job raised: Hydra re-raises it here
        log.warning("trial failed: %s: %s", type(error).__name__, error)
        return None
    return value if math.isfinite(value) else None


def _finished_value(sweep_dir: Path, number: int) -> Optional[float]:
    """The objective a trial's job recorded in its result.json, if it completed."""
    for folder in sweep_dir.glob(f"{number}_*"):
        result = read_result(folder)
        if result is not None and result.status == COMPLETED:
            value = result.objective_value
            return value if value is not None and math.isfinite(value) else None
    return None


def _write_results(study: optuna.Study, sweep_dir: Path) -> None:
    import optuna

    completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not completed:
        log.warning("no trial completed: no optimization_results.yaml")
        return
    best = study.best_trial
    results = {"name": "optuna", "best_params": best.params, "best_value": best.value,
               "best_trial": best.number}
    OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
    log.info("best trial %d: %s, value %s", best.number, best.params, best.value)


def search_space(arguments: list[str]) -> tuple[dict[str, Suggest], tuple[str, ...]]:
    """The swept keys as Optuna suggestions, and the fixed overrides as they are."""
    space: dict[str, Suggest] = {}
    fixed = []
    for override in OverridesParser.create().parse_overrides(arguments):
        if override.is_sweep_override():
            space[override.get_key_element()] = _suggestion(override)
        else:
            fixed.append(f"{override.get_key_element()}={override.get_value_element_as_str()}")
    return space, tuple(fixed)


def _suggestion(override: Override) -> Suggest:
    name, value = override.get_key_element(), override.value()
    if isinstance(value, ChoiceSweep):
        choices = [str(c) for c in value.list]
        return lambda trial: trial.suggest_categorical(name, choices)
    if isinstance(value, RangeSweep):
        steps: list[Any] = list(override.sweep_iterator())
        return lambda trial: trial.suggest_categorical(name, steps)
    if isinstance(value, IntervalSweep) and value.start is not None and value.end is not None:
        low, high, log_scale = value.start, value.end, "log" in value.tags
        if isinstance(low, int) and isinstance(high, int):
            return lambda trial: trial.suggest_int(name, low, high, log=log_scale)
        return lambda trial: trial.suggest_float(name, float(low), float(high), log=log_scale)
    raise ValueError(f"hydra.sweeper.params.{name}: {override.input_line} is not a choice(), "
                     f"range() or interval() sweep")
