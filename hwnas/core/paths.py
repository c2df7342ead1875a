"""Where hwnas reads data and keeps caches: one place, one environment variable each.

- data root: `$HWNAS_DATA`, else `./data` (CIFAR folders, the HW-NAS-Bench pickle, the NB201 accuracy table);
- cache folder: `$HWNAS_CACHE`, else `~/.cache/hwnas` (measured latencies, proxy scores of read-only
  supernets, tables extracted from NATS-Bench).

Imports nothing of ours.
"""
from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "HWNAS_DATA"
CACHE_ENV = "HWNAS_CACHE"

#: File names inside the data root.
HWNASBENCH_FILE = "HW-NAS-Bench-v1_0.pickle"
NB201_ACCURACY_FILE = "nb201_accuracy.csv"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder holding the data sets and tables: `root` if given, else `$HWNAS_DATA`, else `./data`.
    The folder may not exist yet."""
    if root is None:
        root = os.environ.get(DATA_ENV) or "data"
    return Path(root).expanduser()


def cache_dir() -> Path:
    """The cache folder: `$HWNAS_CACHE`, else `~/.cache/hwnas` (may not exist yet)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "hwnas").expanduser()
