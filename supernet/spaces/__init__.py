"""Search-space registry: `get_space(name)`, `list_spaces()`, `register_space`."""
from __future__ import annotations

from typing import Callable

from .base import Arch, SearchSpace

_SPACES: dict[str, Callable[[], SearchSpace]] = {}


def register_space(name: str) -> Callable:
    """Class decorator adding a space to the registry under `name`."""
    def wrap(cls):
        cls.name = name
        _SPACES[name] = cls
        return cls
    return wrap


def list_spaces() -> list[str]:
    """Names accepted by `get_space`."""
    return sorted(_SPACES)


def get_space(name: str, **options) -> SearchSpace:
    """The search space registered as `name`, built with the space's own `options` (layer-wise spaces take
    e.g. `stages`; NB201 takes none); ValueError naming the valid names or options otherwise."""
    if name not in _SPACES:
        raise ValueError(f"unknown space '{name}'; valid: {', '.join(list_spaces())}")
    return _SPACES[name](**options)


def space_from_config(config: dict) -> SearchSpace:
    """The space a run or export was made with: its `space` name and `space_options` (if any)."""
    return get_space(config["space"], **(config.get("space_options") or {}))


from . import mobilenet, nb201, resblock, shufflenet  # noqa: E402,F401  (each module registers its space)

__all__ = ["Arch", "SearchSpace", "get_space", "list_spaces", "register_space", "space_from_config"]
