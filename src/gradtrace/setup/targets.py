"""A config group's object: the class or function its `_target_` names, called with its other keys.

The one path that builds every model, data set, loss, optimiser and logger, gradtrace's own and a
user's alike. `Target.from_config` checks before anything is built that the target imports, that
every key is an argument it takes and that it gets every argument it needs, and runs the range
checks gradtrace knows for it (`CHECKS`); `Target.build` calls it, passing the run's values
(`in_features`, `seed`, ...) to targets that take them, and turns anything the call raises into a
one-line ConfigError naming the group, the target and the message.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from hydra.utils import instantiate

from gradtrace.errors import ConfigError, failure, one_line

# Hydra's instantiate keys. `_partial_: true` is usual in optimiser configs; gradtrace passes the
# parameters itself, so it is accepted and has no effect.
HYDRA_KEYS = ("_target_", "_partial_", "_convert_", "_recursive_")

Check = Callable[[Mapping[str, Any]], None]  # gets every argument, defaults included


@dataclass
class Target:
    group: str  # "model", "data", "loss", "optim", "logger"
    path: str  # the `_target_`, e.g. "torch.optim.RMSprop"
    factory: Callable[..., Any]
    kwargs: dict[str, Any]  # the other keys of the group, plain Python values
    takes_any: bool  # the factory has **kwargs (or no signature Python can read)
    arguments: list[str]  # the names it takes as keywords

    @classmethod
    def from_config(
        cls,
        group: str,
        node: Mapping[str, Any],
        *,
        positional: int = 0,
        given: Sequence[str] = (),
        optional: Sequence[str] = (),
        checks: Mapping[str, Check] | None = None,
    ) -> Target:
        """Locate `node["_target_"]` and check `node`'s keys against its signature.

        positional: how many leading arguments gradtrace passes itself (the optimiser's params);
        given: keywords gradtrace always passes (a logger's run_dir); optional: keywords passed
        only to targets that take them (a model's in_features, a data set's seed).
        """
        path = node.get("_target_")
        if not isinstance(path, str) or not path:
            raise ConfigError(
                f"{group}._target_ must name a class or function, e.g. mypackage.MyModel, "
                f"got {path!r}"
            )
        factory = locate(f"{group}._target_", path)
        if not callable(factory):
            raise ConfigError(f"{group}._target_={path} is not a class or function")
        kwargs = {k: v for k, v in node.items() if k not in HYDRA_KEYS}
        parameters = _parameters(factory)
        keywords = [
            p.name
            for p in (parameters or [])[positional:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        takes_any = parameters is None or any(p.kind == p.VAR_KEYWORD for p in parameters)
        target = cls(group, path, factory, kwargs, takes_any, keywords)
        target._check_keys(given, optional)
        if parameters is not None:
            target._check_required(parameters[positional:], given, optional)
        check = (checks or {}).get(path)
        if check is not None:
            check(target._arguments(parameters or []))
        return target

    def takes(self, name: str) -> bool:
        return self.takes_any or name in self.arguments

    def _arguments(self, parameters: list[inspect.Parameter]) -> dict[str, Any]:
        """Every argument the call will get from the config, defaults included (for CHECKS)."""
        out = {p.name: p.default for p in parameters if p.default is not p.empty}
        out.update(self.kwargs)
        return out

    def build(self, *args: Any, **run_values: Any) -> Any:
        """Call the target with `args`, its keys, and each of `run_values` it takes (a key the
        user set wins over a run value of the same name)."""
        kwargs = dict(self.kwargs)
        for name, value in run_values.items():
            if self.takes(name) and name not in kwargs:
                kwargs[name] = value
        try:
            if _has_target(kwargs):  # nested objects, e.g. an activation: {_target_: ...}
                kwargs = instantiate(kwargs, _convert_="all")
            return self.factory(*args, **kwargs)
        except ConfigError:
            raise  # gradtrace's own classes name the key themselves
        except Exception as error:
            raise failure(self.group, self.path, error) from error

    def _check_keys(self, given: Sequence[str], optional: Sequence[str]) -> None:
        clash = [k for k in self.kwargs if k in given]
        if clash:
            raise ConfigError(
                f"{self.group}.{clash[0]} is set by gradtrace itself: drop it with "
                f"~{self.group}.{clash[0]}"
            )
        if self.takes_any:
            return
        unknown = [k for k in self.kwargs if k not in self.arguments]
        if not unknown:
            return
        takes = [a for a in self.arguments if a not in given and a not in optional]
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, takes, n=1)
            hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
        drop = " ".join(f"~{self.group}.{k}" for k in unknown)
        raise ConfigError(
            f"{self.group}: {self.path} takes no argument {', '.join(hints)}; it takes "
            f"{', '.join(takes) or 'none'}: drop {'it' if len(unknown) == 1 else 'them'} "
            f"with {drop}"
        )

    def _check_required(
        self, parameters: list[inspect.Parameter], given: Sequence[str], optional: Sequence[str]
    ) -> None:
        for p in parameters:
            required = p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            if required and p.name not in self.kwargs and p.name not in (*given, *optional):
                raise ConfigError(
                    f"{self.group}: {self.path} needs the argument {p.name}: set "
                    f"{self.group}.{p.name}=... (+{self.group}.{p.name}=... if your option has "
                    f"no such key)"
                )


# Modules that moved into subpackages, under their old names: a user's YAML that says
# `_target_: gradtrace.models.Linear` keeps working.
MOVED = {
    "gradtrace.models.": "gradtrace.components.models.",
    "gradtrace.data.": "gradtrace.components.data.",
    "gradtrace.files.": "gradtrace.components.files.",
    "gradtrace.optim.": "gradtrace.components.optim.",
}


def locate(key: str, path: str) -> Any:
    """The object at the dotted `path` (module.Class, package.module.function, ...); a
    ConfigError naming `key` when it cannot be imported."""
    for old, new in MOVED.items():
        if path.startswith(old):
            path = new + path[len(old):]
    parts = path.split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"{key} must be a dotted path such as mypackage.MyModel, got {path!r}")
    for split in range(len(parts) - 1, 0, -1):  # the longest prefix that is a module
        module_name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except Exception as error:  # no such module, or the user's module failed to import
            missing = error.name if isinstance(error, ModuleNotFoundError) else None
            if missing is not None and module_name.startswith(missing):
                continue  # this prefix is no module: try a shorter one
            raise ConfigError(f"{key}={path} cannot be imported: importing {module_name} raised "
                              f"{type(error).__name__}: {one_line(error)}") from None
        for name in parts[split:]:
            if not hasattr(obj, name):
                raise ConfigError(f"{key}={path} cannot be imported: {obj.__name__} has no "
                                  f"attribute {name}")
            obj = getattr(obj, name)
        return obj
    raise ConfigError(
        f"{key}={path} cannot be imported: there is no module {parts[0]!r} (install the package "
        f"that holds it, or run from the folder that holds it)"
    )


def _parameters(factory: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """The factory's parameters (a class's __init__ without self), None when Python cannot
    tell (some built-in functions)."""
    try:
        return list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return None


def _has_target(value: Any) -> bool:
    if isinstance(value, Mapping):
        return "_target_" in value or any(_has_target(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_target(v) for v in value)
    return False

