"""A user's own per-architecture table for a device HW-NAS-Bench never measured.

The CSV has an ``arch_str`` column (NB201 ``|op~0|+|op~0|op~1|+...`` strings, matched as written apart
from surrounding whitespace; isomorphic cells are not merged here) and one numeric column per metric.
Name the columns with their unit, e.g. ``latency_ms``, ``energy_mJ``: values are returned unchanged.
An optional ``arch_index`` column is kept as an identifier, not as a metric. Empty cells are NaN, and so are
non-finite values (``inf``, ``-inf``, ``nan``): an arch without a finite value counts as missing from the table
(a search treats it as unmeasured, never as the fastest or the slowest), with a warning naming how many.

Must not import ``evolve``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from hwnas.core.errors import CorruptFileError, UsageError

_ID_COLUMNS = ("arch_str", "arch_index")
log = logging.getLogger(__name__)


class DeviceTable:
    """Per-arch metrics of one device. ``frame``: index ``arch_str``, one float column per metric."""

    def __init__(self, frame: pd.DataFrame, name: str, source: str = "") -> None:
        self.frame = frame
        self.name = name
        self.source = source

    def __repr__(self) -> str:
        return f"DeviceTable({self.name!r}, {len(self.frame)} archs, metrics={self.metrics()})"

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def from_csv(cls, path: str | os.PathLike, name: str | None = None) -> "DeviceTable":
        """Read the CSV; ``name`` defaults to the file stem. A missing ``arch_str`` column, a
        non-numeric metric column, an empty or repeated arch string, a file that is not UTF-8 CSV ->
        ``ValueError`` (one line). Non-finite values become NaN (missing), logged as a warning."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"device table not found: {path}")
        try:
            raw = pd.read_csv(path, encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptFileError(f"{path}: not UTF-8 text (byte {exc.start}); save the table as UTF-8 CSV") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise CorruptFileError(f"{path}: not a CSV table ({str(exc).strip().splitlines()[0]})") from None
        raw.columns = [str(c).strip() for c in raw.columns]
        if "arch_str" not in raw.columns:
            raise CorruptFileError(f"{path}: no arch_str column; columns are {', '.join(raw.columns)}")
        arch = raw["arch_str"].astype("string").str.strip()
        if arch.isna().any() or (arch == "").any():
            row = int(np.flatnonzero((arch.isna() | (arch == "")).to_numpy())[0])
            raise CorruptFileError(f"{path}: empty arch_str in data row {row + 1}")
        if arch.duplicated().any():
            raise CorruptFileError(f"{path}: arch_str {arch[arch.duplicated()].iloc[0]!r} appears more than once")
        metric_cols = [c for c in raw.columns if c not in _ID_COLUMNS]
        if not metric_cols:
            raise CorruptFileError(f"{path}: no metric column besides arch_str")
        columns = {}
        for col in metric_cols:
            values = pd.to_numeric(raw[col], errors="coerce")
            bad = values.isna() & raw[col].notna()
            if bad.any():
                raise CorruptFileError(f"{path}: column {col!r} is not numeric (e.g. {raw[col][bad].iloc[0]!r})")
            values = np.array(values, dtype=float)  # a copy: pandas may hand out a read-only view
            infinite = np.isinf(values)
            if infinite.any():
                log.warning("%s: column %r has %d non-finite value(s) (e.g. %r); those archs count as missing",
                            path, col, int(infinite.sum()), arch.iloc[int(np.flatnonzero(infinite)[0])])
                values[infinite] = np.nan
            columns[col] = values
        frame = pd.DataFrame(columns, index=pd.Index(arch.astype(str).to_numpy(), name="arch_str"))
        return cls(frame, name=name if name is not None else path.stem, source=str(path))

    def metrics(self) -> list[str]:
        """Metric column names, as written in the CSV."""
        return list(self.frame.columns)

    def lookup(self, arch_strs: Sequence[str] | str, metric: str) -> np.ndarray:
        """Values of ``metric`` (float64, the CSV's unit), NaN for archs the table lacks.
        Unknown metric -> ``ValueError``."""
        if metric not in self.frame.columns:
            raise UsageError(
                f"unknown metric {metric!r} for device table {self.name!r}; valid: {', '.join(self.metrics())}"
            )
        keys = [arch_strs.strip()] if isinstance(arch_strs, str) else [str(s).strip() for s in arch_strs]
        pos = self.frame.index.get_indexer(keys)
        values = self.frame[metric].to_numpy(dtype=float)
        out = np.full(len(keys), np.nan)
        hit = pos >= 0
        out[hit] = values[pos[hit]]
        return out
