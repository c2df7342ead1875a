"""Training-mode registry: `get_mode(name)`, `list_modes()`; each mode module registers its class."""
from __future__ import annotations

from .base import MODES, ArchParameterMode, TrainingMode


def list_modes(pattern: str | None = None) -> list[str]:
    """Names accepted by `get_mode`, in registration order."""
    return MODES.list(pattern)


def get_mode(name: str) -> type[TrainingMode]:
    """The training-mode class registered as `name`; UsageError naming the valid ones otherwise."""
    return MODES.get(name)


from .spos import SPOS  # noqa: E402  (each mode module registers its class)
from .darts import DARTS  # noqa: E402
from .gdas import GDAS  # noqa: E402
from .fbnet import FBNet  # noqa: E402
from .enas import CANAS, ENAS  # noqa: E402
from .htas import HTAS  # noqa: E402

__all__ = ["ArchParameterMode", "TrainingMode", "MODES", "get_mode", "list_modes", "SPOS", "DARTS", "GDAS", "FBNet", "ENAS", "CANAS", "HTAS"]
