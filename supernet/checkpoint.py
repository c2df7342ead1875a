"""Atomic files and exact-resume checkpoints (model, optimizers, schedulers, mode state, every RNG).

Checkpoints (and state_dict exports) carry a SHA-256 digest of their contents under `CHECKSUM_KEY`, checked
on load: a flipped byte in the weights, which torch's zip reader does not notice, is one line naming the file.
"""
from __future__ import annotations

import hashlib
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


CHECKSUM_KEY = "sha256"


def content_digest(obj: Any) -> str:
    """SHA-256 of a checkpoint's contents: every tensor's dtype, shape and bytes, every number, string and
    numpy array, and the nesting of dicts (keys in order), lists and tuples around them; the same for the
    same contents whatever the file's zip layout."""
    h = hashlib.sha256()

    def feed(tag: str, data: bytes = b"") -> None:
        h.update(f"{tag}:{len(data)}:".encode())
        h.update(data)

    def walk(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous().reshape(-1)
            feed(f"tensor {t.dtype} {tuple(x.shape)}", t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, np.ndarray):
            feed(f"ndarray {x.dtype} {x.shape}", np.ascontiguousarray(x).tobytes())
        elif isinstance(x, dict):
            feed(f"dict {len(x)}")
            for k, v in x.items():
                walk(k)
                walk(v)
        elif isinstance(x, (list, tuple)):
            feed(f"{type(x).__name__} {len(x)}")
            for v in x:
                walk(v)
        elif isinstance(x, str):
            feed("str", x.encode("utf-8", "surrogatepass"))
        elif isinstance(x, bytes):
            feed("bytes", x)
        else:  # numbers, None, dtypes, numpy scalars
            feed(type(x).__name__, repr(x).encode())

    walk(obj)
    return h.hexdigest()


def save_checkpoint(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """`atomic_torch_save` of `obj` plus its `content_digest` under `CHECKSUM_KEY`."""
    return atomic_torch_save({**obj, CHECKSUM_KEY: content_digest(obj)}, path)


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


def load_torch_file(path: str | os.PathLike, what: str = "checkpoint") -> dict[str, Any]:
    """A dict saved by `save_checkpoint`, loaded without running code: `torch.load(weights_only=True)` with
    numpy's array constructor allow-listed (`_safe_globals`), so a crafted pickle that names anything else
    (`os.system`, a class with its own `__reduce__`) is refused before it runs; its `CHECKSUM_KEY` (when it
    has one: files from before checksums load unchecked) is checked and removed. One-line errors for
    missing, corrupt, tampered or foreign files, `what` naming the kind of file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at '{path}'")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if not found:  # not a refusal: bytes that are no pickle at all
            raise CorruptFileError(f"{what} '{path}' is corrupt or not a hwnas {what} "
                                   f"({type(exc).__name__})") from exc
        raise CorruptFileError(f"{what} '{path}' names '{found.group(1)}'; refused without running it "
                               "(hwnas files hold only tensors, numbers, strings and numpy arrays)") from None
    except Exception as exc:  # noqa: BLE001 - any other unpickling failure means a corrupt file
        raise CorruptFileError(f"{what} '{path}' is corrupt or not a hwnas {what} ({type(exc).__name__})") from exc
    if not isinstance(ckpt, dict):
        raise CorruptFileError(f"'{path}' is not a hwnas {what} (it holds a {type(ckpt).__name__})")
    stored = ckpt.pop(CHECKSUM_KEY, None)
    if stored is not None and stored != content_digest(ckpt):
        raise CorruptFileError(f"{what} '{path}' fails its checksum: its contents changed after hwnas wrote it "
                               "(a damaged copy or an edited file); copy it again or retrain")
    return ckpt


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by the trainer (`load_torch_file`: no code run, checksum checked)."""
    ckpt = load_torch_file(path, "checkpoint")
    if "config" not in ckpt or "model" not in ckpt:
        raise CorruptFileError(f"'{path}' is not a hwnas supernet checkpoint")
    return ckpt
