"""HW-NAS-Bench hardware costs for the NAS-Bench-201 space, one table per dataset.

Reads the official ``HW-NAS-Bench-v1_0.pickle`` (https://github.com/GATECH-EIC/HW-NAS-Bench), whose
layout is ``d["nasbench201"][dataset][metric]`` = 15625 numbers indexed by the NB201 arch index and
``d["nasbench201"][dataset]["config"]`` = one dict per arch holding its ``arch_str``. Metrics are
``{device}_{latency|energy}`` (latency in ms, energy in mJ per image) plus
``eyeriss_arithmetic_intensity`` (a dimensionless ratio). Missing values become NaN: NaN in the file,
and any negative value (the official file marks missing edgetpu latencies with -1).

Security: the file is a Python pickle, and unpickling can run arbitrary code. It is read with a restricted
unpickler (`_TableUnpickler`) that builds only plain data (dicts, lists, numbers, strings) and numpy arrays,
and refuses in one line a pickle that names anything else (`os.system`, any class), before it runs.

Must not import ``evolve``.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from hwnas.core.download import download as fetch
from hwnas.core.errors import CorruptFileError, UsageError
from hwnas.core.paths import HWNASBENCH_FILE, data_root

HW_DEVICES = ("edgegpu", "raspi4", "edgetpu", "pixel3", "eyeriss", "fpga")
HW_METRICS = {
    "edgegpu": ("latency", "energy"),
    "raspi4": ("latency",),
    "edgetpu": ("latency",),
    "pixel3": ("latency",),
    "eyeriss": ("latency", "energy"),
    "fpga": ("latency", "energy"),
}
# Also in the file (and in frame()/lookup()), but not a cost to minimise: not listed in HW_METRICS.
EXTRA_METRICS = ("eyeriss_arithmetic_intensity",)
UNITS = {"latency": "ms", "energy": "mJ"}
HWNASBENCH_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
# The file at commit 393bb8a (the repository's main branch) and its git blob id, which a download is checked
# against: git names a file by the SHA-1 of "blob <size>\0" + its bytes.
HWNASBENCH_URL = ("https://raw.githubusercontent.com/GATECH-EIC/HW-NAS-Bench/"
                  "393bb8a02554dcd28e091fbbdb4d7aefe590018a/HW-NAS-Bench-v1_0.pickle")
HWNASBENCH_BLOB = "b0634cb7f6e7be07192c77833df9eafa4baf705e"
_SEARCH_SPACE = "nasbench201"
_METRIC_ORDER = tuple(f"{d}_{m}" for d in HW_DEVICES for m in HW_METRICS[d]) + EXTRA_METRICS


class _TableUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays only: any other global a pickle names (a function to call, a
    class to build) is refused before anything runs."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("collections", "OrderedDict")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"names '{module}.{name}'; refused without running it (an HW-NAS-Bench "
                                         "table holds only numbers, strings, lists, dicts and numpy arrays)")
        return super().find_class(module, name)


def _default_pickle() -> Path:
    return data_root() / HWNASBENCH_FILE


def _as_list(arch_strs: Sequence[str] | str) -> list[str]:
    if isinstance(arch_strs, str):
        return [arch_strs.strip()]
    return [str(s).strip() for s in arch_strs]


def download_pickle(dest: str | os.PathLike, url: str = HWNASBENCH_URL, git_blob_sha1: str = HWNASBENCH_BLOB,
                    progress: bool = True) -> Path:
    """Fetch the official HW-NAS-Bench pickle to `dest` (resumable, checked against the git blob id of the
    file in the GATECH-EIC/HW-NAS-Bench repository; see `hwnas.core.download`)."""
    return fetch(url, dest, git_blob_sha1=git_blob_sha1, progress=progress)


class HWNASBench:
    """HW-NAS-Bench hardware metrics for NAS-Bench-201, keyed by arch index and arch string.

    ``frame(dataset)`` has index ``arch_index`` and columns ``arch_str`` plus one float column per
    metric ``f"{device}_{metric}"`` (latency ms, energy mJ), NaN where HW-NAS-Bench has no value.
    """

    def __init__(self, tables: Mapping[str, pd.DataFrame], source: str = "") -> None:
        if not tables:
            raise CorruptFileError(f"HW-NAS-Bench data from {source or 'dict'} has no dataset")
        self._tables = dict(tables)
        self._rows = {ds: pd.Index(t["arch_str"]) for ds, t in self._tables.items()}
        self.source = source

    def __repr__(self) -> str:
        return f"HWNASBench(datasets={self.datasets()}, source={self.source!r})"

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "") -> "HWNASBench":
        """Build from the unpickled official structure ``{"nasbench201": {dataset: {metric: values,
        "config": [{"arch_str": ...}, ...]}}}`` (other search spaces, e.g. ``fbnet``, are ignored)."""
        where = source or "dict"
        if not isinstance(data, Mapping) or _SEARCH_SPACE not in data:
            raise CorruptFileError(f"{where} is not an HW-NAS-Bench file: no {_SEARCH_SPACE!r} entry")
        tables = {}
        for ds, entry in data[_SEARCH_SPACE].items():
            configs = entry.get("config")
            if configs is None:
                raise CorruptFileError(f"{where}: dataset {ds!r} has no 'config' list with arch strings")
            n = len(configs)
            columns = {"arch_str": [str(c["arch_str"]).strip() for c in configs]}
            names = [m for m in _METRIC_ORDER if m in entry]
            names += sorted(m for m in entry if m != "config" and m not in _METRIC_ORDER)
            for name in names:
                try:
                    values = np.asarray(entry[name], dtype=float).reshape(-1)
                except (TypeError, ValueError):
                    continue  # not a per-arch numeric list
                if len(values) != n:
                    raise CorruptFileError(f"{where}: {ds}/{name} has {len(values)} values for {n} archs")
                columns[name] = np.where(values < 0, np.nan, values)  # negative = missing (edgetpu -1)
            frame = pd.DataFrame(columns, index=pd.RangeIndex(n, name="arch_index"))
            dup = frame["arch_str"].duplicated()
            if dup.any():
                raise CorruptFileError(f"{where}: {ds} has duplicate arch_str {frame['arch_str'][dup].iloc[0]!r}")
            tables[str(ds)] = frame
        order = [d for d in HWNASBENCH_DATASETS if d in tables] + sorted(set(tables) - set(HWNASBENCH_DATASETS))
        return cls({d: tables[d] for d in order}, source=source)

    @classmethod
    def from_pickle(cls, path: str | os.PathLike) -> "HWNASBench":
        """Read an HW-NAS-Bench pickle without running code from it (`_TableUnpickler`)."""
        path = Path(path).expanduser()
        try:
            with open(path, "rb") as f:
                data = _TableUnpickler(f).load()
        except pickle.UnpicklingError as exc:
            raise CorruptFileError(f"HW-NAS-Bench pickle '{path}': {exc}") from None
        except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, RecursionError) as exc:
            raise CorruptFileError(f"HW-NAS-Bench pickle '{path}' is corrupt ({type(exc).__name__})") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, download: bool = False) -> "HWNASBench":
        """Load ``path`` (``None`` -> ``$HWNAS_DATA/HW-NAS-Bench-v1_0.pickle``).

        With ``download=True`` a missing file is fetched from ``HWNASBENCH_URL`` first; otherwise a
        missing file raises ``FileNotFoundError`` (one line). Only load trusted pickles.
        """
        path = _default_pickle() if path is None else Path(path).expanduser()
        if not path.is_file():
            if not download:
                raise FileNotFoundError(
                    f"HW-NAS-Bench pickle not found: {path}; get it with `hwnas data download` (or "
                    f"HWNASBench.load(download=True)), `hwnas data prepare --from MIRROR`, or from {HWNASBENCH_URL}"
                )
            download_pickle(path)
        return cls.from_pickle(path)

    # ------------------------------------------------------------------ queries
    def datasets(self) -> list[str]:
        """Datasets in this file (the official one has cifar10, cifar100, ImageNet16-120)."""
        return list(self._tables)

    def _table(self, dataset: str) -> pd.DataFrame:
        if dataset not in self._tables:
            raise UsageError(f"unknown HW-NAS-Bench dataset {dataset!r}; valid: {', '.join(self._tables)}")
        return self._tables[dataset]

    def frame(self, dataset: str = "cifar10") -> pd.DataFrame:
        """A copy of the dataset's table: index ``arch_index``; ``arch_str`` + metric columns (NaN = missing)."""
        return self._table(dataset).copy()

    def metrics(self, dataset: str = "cifar10") -> list[str]:
        """Metric columns with at least one value, e.g. ``edgegpu_latency`` (ms), ``fpga_energy`` (mJ)."""
        t = self._table(dataset)
        return [c for c in t.columns if c != "arch_str" and t[c].notna().any()]

    def coverage(self, dataset: str = "cifar10") -> pd.Series:
        """Fraction of archs (0..1) with a value, per metric column."""
        t = self._table(dataset).drop(columns="arch_str")
        return t.notna().mean().rename("coverage")

    def lookup(self, arch_strs: Sequence[str] | str, metric: str, dataset: str = "cifar10") -> np.ndarray:
        """Metric values (float64; latency ms, energy mJ) for the given arch strings, NaN where
        HW-NAS-Bench has none. Unknown metric/dataset -> ``ValueError``; an arch string outside the
        NAS-Bench-201 space -> ``KeyError``."""
        t = self._table(dataset)
        if metric == "arch_str" or metric not in t.columns:
            raise UsageError(
                f"unknown HW-NAS-Bench metric {metric!r} for {dataset}; "
                f"valid: {', '.join(c for c in t.columns if c != 'arch_str')}"
            )
        keys = _as_list(arch_strs)
        pos = self._rows[dataset].get_indexer(keys)
        if (pos < 0).any():
            missing = [k for k, p in zip(keys, pos) if p < 0]
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise KeyError(f"arch_str not in HW-NAS-Bench {dataset} table: {missing[0]!r}{more}")
        return t[metric].to_numpy(dtype=float)[pos]


