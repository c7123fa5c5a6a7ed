"""hydra/sweeper=gradtrace_optuna: the sweeper's settings (sweeper.py says what it does).

No `from __future__ import annotations` here: Hydra's plugin scan executes this module outside
sys.modules, where dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class GradtraceOptunaConf:
    _target_: str = "hydra_plugins.gradtrace_optuna.sweeper.GradtraceOptunaSweeper"
    # minimize or maximize; null: as the run's objective.mode says (min: minimize, max: maximize)
    direction: Optional[str] = None
    study_name: str = "gradtrace"
    n_trials: int = 20  # in all, those of an earlier start of the search included
    n_jobs: int = 2  # trials asked and launched at a time
    seed: Optional[int] = None  # the TPE sampler's; an integer makes a search repeatable
    params: Dict[str, str] = field(default_factory=dict)  # key: choice(...) / interval(...) / ...


ConfigStore.instance().store(group="hydra/sweeper", name="gradtrace_optuna",
                             node=GradtraceOptunaConf, provider="gradtrace")
