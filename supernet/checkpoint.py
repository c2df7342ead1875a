"""Atomic files and exact-resume checkpoints (model, optimizers, schedulers, mode state, every RNG)."""
from __future__ import annotations

import os
import pickle
import random
import re
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


def _safe_globals() -> list:
    """The only non-tensor objects a hwnas checkpoint holds beyond builtins: numpy arrays (numpy's legacy RNG
    state), rebuilt by numpy's array constructor. Everything else a pickle may name is refused."""
    core = getattr(np, "_core", None) or np.core
    return [core.multiarray._reconstruct, np.ndarray, np.dtype, *{type(np.dtype(t)) for t in ("uint32", "float64",
                                                                                          "int64")}]


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by the trainer, without running code: `torch.load(weights_only=True)` with
    numpy's array constructor allow-listed (`_safe_globals`), so a crafted pickle that names anything else
    (`os.system`, a class with its own `__reduce__`) is refused before it runs. One-line errors for missing,
    corrupt or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at '{path}'")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if not found:  # not a refusal: bytes that are no pickle at all
            raise CorruptFileError(f"checkpoint '{path}' is corrupt or not a hwnas checkpoint "
                                   f"({type(exc).__name__})") from exc
        raise CorruptFileError(f"checkpoint '{path}' names '{found.group(1)}'; refused without running it "
                               "(hwnas checkpoints hold only tensors, numbers, strings and numpy arrays)") from None
    except Exception as exc:  # noqa: BLE001 - any other unpickling failure means a corrupt file
        raise CorruptFileError(f"checkpoint '{path}' is corrupt or not a hwnas checkpoint ({type(exc).__name__})") from exc
    if not isinstance(ckpt, dict) or "config" not in ckpt or "model" not in ckpt:
        raise CorruptFileError(f"'{path}' is not a hwnas supernet checkpoint")
    return ckpt
