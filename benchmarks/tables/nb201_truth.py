"""NAS-Bench-201 ground-truth accuracy (%), one row per arch index 0..15624.

Two sources give the same table:

- a compact CSV (``NB201Truth.from_csv``), e.g. the prepared ``$HWNAS_DATA/nb201_accuracy.csv``;
- the official NATS-Bench topology ("tss") benchmark file or directory, read through ``nats_bench``
  (``NB201Truth.from_nats``); the extracted table is cached as a CSV in the cache folder.

Accuracy is the 200-epoch test accuracy averaged over seeds (``hp='200', is_random=False``): cifar10 is
trained on train+valid and tested on the CIFAR-10 test set; cifar100 and ImageNet16-120 report ``x-test``.
Lookups are by arch string exactly as stored (surrounding whitespace ignored); isomorphic cells are *not*
merged here (``supernet.spaces`` does that).

Must not import ``evolve``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from hwnas.core.files import atomic_write
from hwnas.core.paths import NB201_ACCURACY_FILE, cache_dir, data_root

from hwnas.core.errors import CorruptFileError, UsageError

TRUTH_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")

# Accepted CSV column names -> column name in NB201Truth.frame.
# 200-epoch test accuracy: plain dataset names, the prepared nb201_accuracy.csv names, the names of
# shared/data/nb201_hw_merged.csv and of the NATS export nats_bench_tss_test_acc_200ep.csv.
# 12-epoch accuracies keep the prepared names ("cifar10_valid_12", ..., "imagenet16_120_test_12").
_COLUMN_ALIASES = {
    "arch_str": "arch_str",
    "ArchitectureString": "arch_str",
    "arch_index": "arch_index",
    "cifar10": "cifar10",
    "cifar10_test_200": "cifar10",
    "c10_test_200": "cifar10",
    "CIFAR10TestAccuracy200Epochs": "cifar10",
    "cifar100": "cifar100",
    "cifar100_test_200": "cifar100",
    "c100_test_200": "cifar100",
    "CIFAR100TestAccuracy200Epochs": "cifar100",
    "ImageNet16-120": "ImageNet16-120",
    "imagenet16_120_test_200": "ImageNet16-120",
    "in16_test_200": "ImageNet16-120",
    "ImageNetTestAccuracy200Epochs": "ImageNet16-120",
    "cifar10_valid_12": "cifar10_valid_12",
    "c10valid_val_12": "cifar10_valid_12",
    "cifar10_test_12": "cifar10_test_12",
    "c10_test_12": "cifar10_test_12",
    "cifar100_valid_12": "cifar100_valid_12",
    "c100_val_12": "cifar100_valid_12",
    "cifar100_test_12": "cifar100_test_12",
    "c100_test_12": "cifar100_test_12",
    "imagenet16_120_valid_12": "imagenet16_120_valid_12",
    "in16_val_12": "imagenet16_120_valid_12",
    "imagenet16_120_test_12": "imagenet16_120_test_12",
    "in16_test_12": "imagenet16_120_test_12",
}
_EPOCH12_COLUMNS = (
    "cifar10_valid_12", "cifar10_test_12", "cifar100_valid_12", "cifar100_test_12",
    "imagenet16_120_valid_12", "imagenet16_120_test_12",
)
# 12-epoch column -> (nats_bench dataset name, key of get_more_info(..., hp='12'))
_NATS_EPOCH12 = {
    "cifar10_valid_12": ("cifar10-valid", "valid-accuracy"),
    "cifar10_test_12": ("cifar10", "test-accuracy"),
    "cifar100_valid_12": ("cifar100", "valid-accuracy"),
    "cifar100_test_12": ("cifar100", "test-accuracy"),
    "imagenet16_120_valid_12": ("ImageNet16-120", "valid-accuracy"),
    "imagenet16_120_test_12": ("ImageNet16-120", "test-accuracy"),
}
_CSV_NAME = NB201_ACCURACY_FILE
_HOW_TO_GET = (
    "set HWNAS_DATA to the folder holding nb201_accuracy.csv (`hwnas data download` or `hwnas data prepare`), "
    "or pass the NATS-Bench tss file/dir NATS-tss-v1_0-3ffb9-simple (https://github.com/D-X-Y/NATS-Bench)"
)
_NATS_CACHE_VERSION = 1


def _default_csv() -> Path:
    return data_root() / _CSV_NAME


def _nats_cache_file(path: Path) -> Path:
    """Cache CSV for one NATS file/dir, keyed by its resolved path, size and modification time."""
    st = path.stat()
    key = f"v{_NATS_CACHE_VERSION}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return cache_dir() / f"nats_tss_{path.name}_{digest}.csv"


def _as_list(arch_strs: Sequence[str] | str) -> list[str]:
    if isinstance(arch_strs, str):
        return [arch_strs.strip()]
    return [str(s).strip() for s in arch_strs]


class NB201Truth:
    """NAS-Bench-201 ground-truth accuracy, one row per arch index (0..15624).

    ``frame`` has index ``arch_index`` and columns ``arch_str`` plus one accuracy column (%) per
    dataset: ``cifar10``, ``cifar100``, ``ImageNet16-120`` (200-epoch test accuracy, mean over seeds),
    and, where the source has them, 12-epoch columns ``cifar10_valid_12``, ``cifar10_test_12``,
    ``cifar100_valid_12``, ``cifar100_test_12``, ``imagenet16_120_valid_12``, ``imagenet16_120_test_12``.
    ``source`` says where the table came from. Treat ``frame`` as read-only.
    """

    def __init__(self, frame: pd.DataFrame, source: str = "") -> None:
        if "arch_str" not in frame.columns:
            raise CorruptFileError(f"NB201 table from {source or 'frame'} has no arch_str column")
        acc_cols = [c for c in frame.columns if c != "arch_str"]
        if not acc_cols:
            raise CorruptFileError(
                f"NB201 table from {source or 'frame'} has no accuracy column; "
                f"expected one of {', '.join(TRUTH_DATASETS + _EPOCH12_COLUMNS)}"
            )
        frame = frame.copy()
        frame["arch_str"] = frame["arch_str"].astype(str).str.strip()
        frame.index.name = "arch_index"
        for col in acc_cols:
            numeric = pd.to_numeric(frame[col], errors="coerce")
            if numeric.isna().sum() > frame[col].isna().sum():
                raise CorruptFileError(f"NB201 table from {source or 'frame'}: column {col!r} is not numeric")
            frame[col] = numeric.astype(float)
        dup = frame["arch_str"].duplicated()
        if dup.any():
            raise CorruptFileError(
                f"NB201 table from {source or 'frame'}: duplicate arch_str {frame['arch_str'][dup].iloc[0]!r}"
            )
        self.frame = frame
        self.source = source
        self._rows = pd.Index(frame["arch_str"])

    def __repr__(self) -> str:
        return f"NB201Truth({len(self.frame)} archs, {self.accuracy_columns()}, source={self.source!r})"

    def __len__(self) -> int:
        return len(self.frame)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> "NB201Truth":
        """Read a CSV with an ``arch_str`` column and accuracy columns in %.

        Accepted column names (others are ignored):

        - arch string: ``arch_str`` or ``ArchitectureString``;
        - arch index: ``arch_index``; without it row i is arch index i;
        - 200-epoch test accuracy: ``cifar10`` / ``cifar10_test_200`` / ``c10_test_200`` /
          ``CIFAR10TestAccuracy200Epochs``; ``cifar100`` / ``cifar100_test_200`` / ``c100_test_200`` /
          ``CIFAR100TestAccuracy200Epochs``; ``ImageNet16-120`` / ``imagenet16_120_test_200`` /
          ``in16_test_200`` / ``ImageNetTestAccuracy200Epochs``;
        - 12-epoch accuracy: ``{cifar10,cifar100,imagenet16_120}_{valid,test}_12`` (or the
          ``nb201_hw_merged.csv`` names ``c10valid_val_12``, ``c10_test_12``, ``c100_val_12``, ...).
        """
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"NB201 accuracy CSV not found: {path}; {_HOW_TO_GET}")
        raw = pd.read_csv(path)
        columns = {}
        for col in raw.columns:
            target = _COLUMN_ALIASES.get(str(col).strip())
            if target is not None and target not in columns.values():
                columns[col] = target
        if "arch_str" not in columns.values():
            raise CorruptFileError(
                f"{path}: no arch_str column (accepted: arch_str, ArchitectureString); got {list(raw.columns)}"
            )
        frame = raw[list(columns)].rename(columns=columns)
        if "arch_index" in frame.columns:
            frame = frame.set_index(frame["arch_index"].astype(int)).drop(columns="arch_index")
        order = ["arch_str"] + [c for c in TRUTH_DATASETS + _EPOCH12_COLUMNS if c in frame.columns]
        return cls(frame[order].sort_index(), source=str(path))

    @classmethod
    def from_nats(cls, path: str | os.PathLike, cache: bool = True) -> "NB201Truth":
        """Extract the table from the official NATS-Bench tss benchmark through ``nats_bench``.

        ``path`` is the tss file or directory (e.g. ``NATS-tss-v1_0-3ffb9-simple``). Reads every arch
        (a few minutes, with a tqdm bar): 200-epoch test accuracy averaged over seeds for the three
        datasets, plus the 12-epoch columns where the benchmark has them. With ``cache`` the table is
        written once, atomically, to the cache folder (``$HWNAS_CACHE``, else ``~/.cache/hwnas``) and read from there
        on later calls for the same unchanged file.
        """
        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"NATS-Bench tss benchmark not found: {path}; {_HOW_TO_GET}")
        cache_file = _nats_cache_file(path)
        if cache and cache_file.is_file():
            table = cls.from_csv(cache_file)
            table.source = f"{path} (cached in {cache_file})"
            return table

        import nats_bench
        from tqdm.auto import tqdm

        api = nats_bench.create(str(path), "tss", fast_mode=True, verbose=False)
        rows = []
        for i in tqdm(range(len(api)), desc="NATS-Bench tss", unit="arch"):
            row = {"arch_index": i, "arch_str": api.arch(i)}
            for ds in TRUTH_DATASETS:
                row[ds] = float(api.get_more_info(i, ds, hp="200", is_random=False)["test-accuracy"])
            for col, (ds, key) in _NATS_EPOCH12.items():
                try:  # optional: not every benchmark copy carries every 12-epoch split
                    row[col] = float(api.get_more_info(i, ds, hp="12", is_random=False)[key])
                except Exception:  # noqa: BLE001 - nats_bench raises assorted errors for missing data
                    row[col] = np.nan
            rows.append(row)
            infos = getattr(api, "arch2infos_dict", None)
            if isinstance(infos, dict):  # fast mode keeps every loaded arch; drop it to bound memory
                infos.pop(i, None)
        frame = pd.DataFrame(rows).set_index("arch_index")
        frame = frame.dropna(axis=1, how="all")
        table = cls(frame, source=str(path))
        if cache:
            atomic_write(cache_file, lambda tmp: table.frame.to_csv(tmp))
        return table

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "NB201Truth":
        """Load the table: ``None`` -> ``$HWNAS_DATA/nb201_accuracy.csv``; a ``.csv`` (or a folder holding
        ``nb201_accuracy.csv``) -> ``from_csv``; anything else -> ``from_nats``. A missing file raises
        ``FileNotFoundError`` (one line)."""
        path = _default_csv() if path is None else Path(path).expanduser()
        if path.is_dir() and (path / _CSV_NAME).is_file():
            path = path / _CSV_NAME
        if path.suffix.lower() == ".csv":
            return cls.from_csv(path)
        return cls.from_nats(path)

    # ------------------------------------------------------------------ queries
    def datasets(self) -> list[str]:
        """The datasets with 200-epoch test accuracy in this table (a subset of ``TRUTH_DATASETS``)."""
        return [d for d in TRUTH_DATASETS if d in self.frame.columns]

    def accuracy_columns(self) -> list[str]:
        """Every accuracy column: ``datasets()`` plus any 12-epoch columns (``cifar10_valid_12``, ...)."""
        return [c for c in self.frame.columns if c != "arch_str"]

    def index_of(self, arch_strs: Sequence[str] | str) -> np.ndarray:
        """NB201 arch indices (int64) of the given arch strings; unknown string -> ``KeyError``."""
        keys = _as_list(arch_strs)
        pos = self._rows.get_indexer(keys)
        if (pos < 0).any():
            missing = [k for k, p in zip(keys, pos) if p < 0]
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise KeyError(f"arch_str not in NAS-Bench-201 table: {missing[0]!r}{more}")
        return self.frame.index.to_numpy()[pos].astype(np.int64)

    def accuracy(self, arch_strs: Sequence[str] | str, dataset: str = "cifar10") -> np.ndarray:
        """Ground-truth accuracy in % (float64, one per arch string).

        ``dataset`` is one of ``datasets()`` (200-epoch test accuracy) or a 12-epoch column from
        ``accuracy_columns()``. Unknown dataset -> ``ValueError``; unknown arch string -> ``KeyError``.
        """
        valid = self.accuracy_columns()
        if dataset not in valid:
            raise UsageError(f"unknown NB201 dataset {dataset!r}; valid: {', '.join(valid)}")
        keys = _as_list(arch_strs)
        pos = self._rows.get_indexer(keys)
        if (pos < 0).any():
            self.index_of(keys)  # raises the KeyError naming the first unknown arch
        return self.frame[dataset].to_numpy(dtype=float)[pos]

    def error(self, arch_strs: Sequence[str] | str, dataset: str = "cifar10") -> np.ndarray:
        """Ground-truth error in % (``100 - accuracy``)."""
        return 100.0 - self.accuracy(arch_strs, dataset)
