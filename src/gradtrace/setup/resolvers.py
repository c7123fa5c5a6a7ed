"""What Hydra needs before it composes gradtrace's configs: the schemas of gradtrace's own groups
(gradtrace.setup.schema) in its ConfigStore, and the resolvers that name run and sweep folders
(configs/train.yaml). Registered at import: joblib and submitit workers unpickle the task function,
which imports this module, but never run the command line's start; they resolve the job's folder
name before the task starts.
"""

from __future__ import annotations

from datetime import datetime

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from gradtrace.setup.folders import folder_suffix
from gradtrace.setup.schema import SCHEMAS, TrainConfig
from gradtrace.training.distributed import launch


def register_resolvers() -> None:
    """The resolvers that run and sweep folder names use (configs/train.yaml)."""
    if not OmegaConf.has_resolver("gradtrace.pid"):
        # When and by which process the run was started: the process id keeps two runs started
        # in the same second apart, and in a distributed run both are rank 0's, so that every rank
        # names the same folder. Cached, like Hydra's `now`: a parallel launcher's worker processes
        # resolve the sweep folder again, and must get the launching process's values from the
        # cache Hydra copies into each job's config.
        OmegaConf.register_new_resolver(
            "gradtrace.started",
            lambda pattern: datetime.fromtimestamp(launch().time).strftime(pattern),
            use_cache=True,
        )
        OmegaConf.register_new_resolver("gradtrace.pid", lambda: f"p{launch().pid}", use_cache=True)
        OmegaConf.register_new_resolver("gradtrace.suffix", folder_suffix)


register_resolvers()  # at import: see the module's docstring


def register() -> None:
    """Make the schemas and resolvers known to Hydra; call once before composing a config.

    Schemas are stored as `schema/<group>/<name>`, and each YAML option lists one in its defaults.
    """
    register_resolvers()
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            store.store(group=f"schema/{group}", name=name, node=node)
