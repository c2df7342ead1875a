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


def get_space(name: str) -> SearchSpace:
    """The search space registered as `name`; ValueError naming the valid ones otherwise."""
    if name not in _SPACES:
        raise ValueError(f"unknown space '{name}'; valid: {', '.join(list_spaces())}")
    return _SPACES[name]()


from . import nb201  # noqa: E402,F401  (registers "nb201")

__all__ = ["Arch", "SearchSpace", "get_space", "list_spaces", "register_space"]
