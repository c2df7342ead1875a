"""Training-mode registry: `get_mode(name)`, `list_modes()`."""
from __future__ import annotations

from .base import ArchParameterMode, TrainingMode
from .darts import DARTS
from .gdas import GDAS
from .spos import SPOS

_MODES: dict[str, type[TrainingMode]] = {m.name: m for m in (SPOS, DARTS, GDAS)}


def list_modes() -> list[str]:
    """Names accepted by `get_mode`."""
    return list(_MODES)


def get_mode(name: str) -> type[TrainingMode]:
    """The training-mode class registered as `name`; ValueError naming the valid ones otherwise."""
    if name not in _MODES:
        raise ValueError(f"unknown mode '{name}'; valid: {', '.join(_MODES)}")
    return _MODES[name]


__all__ = ["ArchParameterMode", "TrainingMode", "get_mode", "list_modes", "SPOS", "DARTS", "GDAS"]
