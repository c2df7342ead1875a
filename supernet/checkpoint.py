"""Atomic files and exact-resume checkpoints (model, optimizers, schedulers, mode state, every RNG)."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.core.files import atomic_write

from hwnas.core.errors import CorruptFileError


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """`torch.save` that never leaves a half-written file behind."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def rng_states() -> dict[str, Any]:
    """Every global RNG state a training step may touch."""
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what `rng_states` captured."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by the trainer; one-line errors for missing or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at '{path}'")
    try:
        # Our checkpoints hold RNG states (numpy arrays, tuples), so the full unpickler is needed:
        # only load checkpoints you trust.
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise CorruptFileError(f"checkpoint '{path}' is corrupt or not a hwnas checkpoint ({type(exc).__name__})") from exc
    if not isinstance(ckpt, dict) or "config" not in ckpt or "model" not in ckpt:
        raise CorruptFileError(f"'{path}' is not a hwnas supernet checkpoint")
    return ckpt
