"""Search-space registry: `get_space(name, **options)`, `list_spaces()`, `register_space(name)`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from hwnas.core.config import option
from hwnas.core.registry import Registry

from .base import Arch, SearchSpace

SPACES: Registry[type[SearchSpace]] = Registry("space")


def register_space(name: str) -> Callable:
    """Class decorator adding a space to the registry under `name` (and setting its `name`)."""
    def wrap(cls):
        cls.name = name
        return SPACES.register(name, cls)
    return wrap


def list_spaces(pattern: str | None = None) -> list[str]:
    """Names accepted by `get_space`, sorted (those matching the shell-style `pattern` if given)."""
    return sorted(SPACES.list(pattern))


def get_space(name: str, **options) -> SearchSpace:
    """The search space registered as `name`, built with the space's own `options` (layer-wise spaces take
    e.g. `stages`; NB201 takes none); UsageError naming the valid names or options otherwise."""
    return SPACES.get(name)(**options)


@dataclass
class SpaceConfig:
    """The search space of a run or a network, as configs (training, retraining, a hardware command) name it:
    the registered space and its own options."""

    space: str = option("nb201", help="search space", choices=list_spaces)
    space_options: dict[str, Any] = option(
        default_factory=dict, flag="--space-option", kind="space_options",
        help="an option of the space, its value as JSON (repeatable), e.g. 'stages=[[1.5,2,1],[2,2,2]]'")


def space_from_config(config: dict) -> SearchSpace:
    """The space a run or export was made with: its `space` name and `space_options` (if any)."""
    return get_space(config["space"], **(config.get("space_options") or {}))


from . import mobilenet, nb201, resblock, shufflenet  # noqa: E402,F401  (each module registers its space)

__all__ = ["Arch", "SearchSpace", "SPACES", "SpaceConfig", "get_space", "list_spaces", "register_space", "space_from_config"]
