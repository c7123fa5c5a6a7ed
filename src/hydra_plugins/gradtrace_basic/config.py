"""hydra/sweeper=gradtrace_basic: the sweeper's settings, those of Hydra's basic sweeper.

No `from __future__ import annotations` here: Hydra's plugin scan executes this module outside
sys.modules, where dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class GradtraceBasicSweeperConf:
    _target_: str = "hydra_plugins.gradtrace_basic.sweeper.GradtraceBasicSweeper"
    max_batch_size: Optional[int] = None  # jobs checked and launched at a time; null: all
    params: Optional[Dict[str, str]] = None  # key: sweep, as on the command line


ConfigStore.instance().store(group="hydra/sweeper", name="gradtrace_basic",
                             node=GradtraceBasicSweeperConf, provider="gradtrace")
