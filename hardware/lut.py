"""Per-block latency lookup tables (LUTs): time every candidate block once, predict a network as the sum.

This is the FBNet / LuffyNet assumption: a network's latency is the sum of its blocks' latencies, each
timed alone on the target with the input shape it sees at its position. It ignores what happens between
blocks (caching, fusion, framework overhead per call), so `rank_agreement` reports how well the sum ranks
real whole-network measurements (Spearman's rho and Kendall's tau-b) and how far off it is in absolute
terms. Which blocks exist and which ones an arch uses is the search space's business (its
`latency_blocks` / `arch_blocks`); this module only times modules and adds numbers.

A table is saved as JSON (everything) or CSV (one row per block; the target description and settings
go to a `#`-comment header), always atomically.

Imports nothing of ours but `hwnas.core`.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch.nn as nn

from hwnas.core.errors import CorruptFileError, UsageError, brief
from hwnas.core.files import atomic_write_text, read_json
from hwnas.core.stats import rank_correlation

from .measure import describe_target, measure

LUT_FIELDS = ("block", "median_ms", "iqr_ms", "cv", "input_shape")


@dataclass
class LatencyTable:
    """Block name -> measured latency on one target, plus what it was measured on and how."""

    target: dict
    settings: dict
    entries: dict[str, dict]
    meta: dict = field(default_factory=dict)

    def latency(self, block: str) -> float:
        """Median latency (ms) of one block; ValueError naming it if the table lacks it."""
        if block not in self.entries:
            raise UsageError(f"block '{block}' is not in this lookup table ({len(self.entries)} blocks, built "
                             f"for {self.meta or 'another network'}); rebuild it with `hwnas lut build`")
        return float(self.entries[block]["median_ms"])

    def predict(self, blocks: Iterable[str]) -> float:
        """Predicted latency (ms) of a network made of `blocks` (repeats count again): their sum."""
        return float(sum(self.latency(b) for b in blocks))

    # ---------------------------------------------------------------------------------------- files
    def to_json(self) -> str:
        return json.dumps({"target": self.target, "settings": self.settings, "meta": self.meta,
                           "entries": self.entries}, indent=1)

    def to_csv(self) -> str:
        buf = io.StringIO()
        for key, value in (("target", self.target), ("settings", self.settings), ("meta", self.meta)):
            buf.write(f"# {key}: {json.dumps(value)}\n")
        w = csv.writer(buf)
        w.writerow(LUT_FIELDS)
        for name, e in self.entries.items():
            w.writerow([name, e["median_ms"], e["iqr_ms"], e["cv"], "x".join(map(str, e["input_shape"]))])
        return buf.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write JSON or CSV by the file's suffix, atomically (temp file + rename)."""
        path = Path(path)
        if path.suffix not in (".json", ".csv"):
            raise UsageError(f"lookup table file '{path}' must end in .json or .csv")
        return atomic_write_text(path, self.to_json() if path.suffix == ".json" else self.to_csv())

    @classmethod
    def load(cls, path: str | Path) -> "LatencyTable":
        """Read a table written by `save`; ValueError naming the file if it is not one."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"lookup table '{path}' not found (build one with `hwnas lut build`)")
        try:
            if path.suffix == ".json":
                d = read_json(path, "lookup table")
                if not isinstance(d, dict):
                    raise ValueError(f"it holds a {type(d).__name__}, not an object")
                table = cls(d["target"], d["settings"], d["entries"], d.get("meta", {}))
            else:
                table = cls._from_csv(path.read_text(encoding="utf-8"))
            return table._checked()
        except (KeyError, ValueError, IndexError, TypeError, AttributeError, RecursionError) as exc:
            raise CorruptFileError(f"'{path}' is not a latency lookup table ({type(exc).__name__}: "
                                   f"{brief(exc)})") from None

    def _checked(self) -> "LatencyTable":
        """This table if every part has the type `save` writes (finite, non-negative times); ValueError."""
        for key in ("target", "settings", "meta"):
            if not isinstance(getattr(self, key), dict):
                raise ValueError(f"'{key}' must be an object, got {type(getattr(self, key)).__name__}")
        if not isinstance(self.entries, dict):
            raise ValueError(f"'entries' must be an object, got {type(self.entries).__name__}")
        for name, e in self.entries.items():
            times = [e.get(k) for k in ("median_ms", "iqr_ms", "cv")] if isinstance(e, dict) else [None]
            if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and np.isfinite(t) and t >= 0
                       for t in times):
                raise ValueError(f"block {name!r} needs finite, non-negative median_ms, iqr_ms and cv")
            shape = e.get("input_shape")
            if not isinstance(shape, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape):
                raise ValueError(f"block {name!r} needs input_shape as a list of integers")
        return self

    @classmethod
    def _from_csv(cls, text: str) -> "LatencyTable":
        header, rows = {}, []
        for line in text.splitlines():
            if line.startswith("# "):
                key, _, value = line[2:].partition(": ")
                header[key] = json.loads(value)
            elif line.strip():
                rows.append(line)
        reader = csv.DictReader(rows)
        if tuple(reader.fieldnames or ()) != LUT_FIELDS:
            raise UsageError(f"columns {reader.fieldnames}, expected {list(LUT_FIELDS)}")
        entries = {r["block"]: {"median_ms": float(r["median_ms"]), "iqr_ms": float(r["iqr_ms"]),
                                "cv": float(r["cv"]), "input_shape": [int(s) for s in r["input_shape"].split("x")]}
                   for r in reader}
        return cls(header["target"], header["settings"], entries, header.get("meta", {}))


def build_table(blocks: Mapping[str, tuple[nn.Module, Sequence[int]]], target: str = "cpu", warmup: int = 10,
                repeats: int = 50, threads: int | None = None, meta: dict | None = None,
                progress: bool = False) -> LatencyTable:
    """Time each `name -> (module, input_shape)` on `target` with `hardware.measure.measure`."""
    items = list(blocks.items())
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc=f"LUT on {target}", unit="block")
    entries = {}
    for name, (module, shape) in items:
        t = measure(module, target, shape, warmup=warmup, repeats=repeats, threads=threads)
        entries[name] = {"median_ms": t.median_ms, "iqr_ms": t.iqr_ms, "cv": t.cv, "input_shape": list(t.input_shape)}
    settings = {"warmup": warmup, "repeats": repeats, "threads": threads}
    return LatencyTable(describe_target(target, threads), settings, entries, dict(meta or {}))


def rank_agreement(predicted: Sequence[float], measured: Sequence[float]) -> dict:
    """How well `predicted` latencies match `measured` ones: Spearman rho, Kendall tau-b, the median
    ratio predicted / measured and the mean absolute percentage error."""
    p, m = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    if p.shape != m.shape or len(p) < 3:
        raise UsageError(f"need two equally long series of at least 3 values; got {len(p)} and {len(m)}")
    corr = rank_correlation(p, m)
    return {"n": len(p), "spearman": corr["spearman"], "kendall": corr["kendall"],
            "median_ratio": float(np.median(p / m)), "mape_pct": float(np.mean(np.abs(p - m) / m) * 100)}
