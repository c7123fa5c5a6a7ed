"""Hydra's basic sweeper (the grid of the command line's sweep overrides, `hydra.sweeper.params`,
`max_batch_size`), composing each job's config once instead of twice.

Hydra's sweeper composes every job of a batch before the first one starts, so that a bad
override stops the sweep before any job runs; its basic launcher then composes each job again.
For gradtrace's configs a composition takes about 0.3 s, as long as a short job's training. This
sweeper makes the same check and hands the configs it composed to the basic launcher (jobs in
this process), each once, for the first KEPT jobs of a batch (a composed config holds about
0.4 MB: a grid of 10,000 jobs would keep 4 GB); the others are composed again, as Hydra does.
Other launchers (joblib, submitit) compose in their own processes: they are left as they are.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from omegaconf import DictConfig

from hydra_plugins.gradtrace_basic.config import GradtraceBasicSweeperConf  # noqa: F401 (registers it)

KEPT = 200


class GradtraceBasicSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        launcher, context, master = self.launcher, self.hydra_context, self.config
        if not isinstance(launcher, BasicLauncher) or context is None or master is None:
            super().validate_batch_is_legal(batch)  # composed elsewhere: check as Hydra does
            return
        loader = context.config_loader
        composed: dict[tuple[str, ...], DictConfig] = {}
        for index, job in enumerate(batch):  # every job checked; the first KEPT configs kept
            config = loader.load_sweep_config(master, list(job))
            if index < KEPT:
                composed[tuple(job)] = config
        launcher.hydra_context = dataclasses.replace(
            context, config_loader=ComposedOnce(loader, composed))  # type: ignore[arg-type]


class ComposedOnce:
    """A config loader that answers `load_sweep_config` with a config composed already, once
    each (the launcher then changes it); anything else it passes to the loader it wraps."""

    def __init__(self, loader: Any, composed: dict[tuple[str, ...], DictConfig]) -> None:
        self.loader, self.composed = loader, composed

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        config = self.composed.pop(tuple(sweep_overrides), None)
        return config if config is not None else self.loader.load_sweep_config(
            master_config, sweep_overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
