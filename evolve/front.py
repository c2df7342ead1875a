"""`Front`: a search result as a pandas table (every evaluated arch, its objectives, which are
Pareto-optimal), the per-generation history, and the run's metadata; saved and loaded as CSV, Parquet
and JSON.

JSON is the complete format (table, objectives, meta, history, dtypes). CSV is the table alone; Parquet is
the table with the objectives and meta in the schema metadata. Pure numpy/pandas (pyarrow optional):
must not import torch or any other part of hwnas except `evolve.pareto` and `hwnas.core`.
"""
from __future__ import annotations

import json
import math
import platform
import warnings
from dataclasses import dataclass, field
from importlib import metadata as _importlib_metadata
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from hwnas.core.files import atomic_write_set, read_json

from hwnas.core.errors import CorruptFileError, UsageError, brief

from .pareto import non_dominated_mask

FORMATS = ("csv", "parquet", "json")
JSON_FORMAT = "hwnas.front/1"
PARQUET_META_KEY = b"hwnas.front"
#: Other files of a front's set (its plot): replaced together with the formats
SET_EXTRAS = ("png",)

#: Column-name endings that mark an objective column when a CSV/Parquet file carries no objective list
#: (matched case-insensitively): error in percent, time, energy, power, size, params in millions, FLOPs.
UNIT_SUFFIXES = (
    "_pct", "_ms", "_us", "_s", "_mj", "_j", "_mw", "_w", "_mb", "_kb", "_m", "_mflops", "_gflops",
)


def _version(dist: str) -> str | None:
    try:
        return _importlib_metadata.version(dist)
    except _importlib_metadata.PackageNotFoundError:
        return None


def default_meta(**fields: Any) -> dict:
    """A metadata dict with `versions` (python, numpy, pandas, pymoo, and torch/hwnas where installed, read
    from package metadata without importing them) plus the given fields (space, supernet, device, ...).
    """
    versions = {"python": platform.python_version()}
    for dist in ("numpy", "pandas", "pymoo", "torch", "hwnas"):
        v = _version(dist)
        if v is not None:
            versions[dist] = v
    return {"versions": versions, **fields}


def _encoding_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    return ",".join(str(int(v)) for v in np.asarray(value).ravel())


def _empty_history(objectives: list[str]) -> pd.DataFrame:
    cols = {"generation": pd.Series(dtype="int64"), "arch_str": pd.Series(dtype=str)}
    cols.update({o: pd.Series(dtype="float64") for o in objectives})
    return pd.DataFrame(cols)


@dataclass
class Front:
    """A search result: every evaluated arch, which are Pareto-optimal, and how the search got there.

    table: one row per distinct arch evaluated: 'arch_str', 'encoding' (e.g. "3,1,0,2,4,4"), one float
        column per objective (named with its unit, e.g. 'proxy_err_pct', 'fpga_latency_ms'), 'generation'
        (first generation the arch was seen) and 'is_pareto'; extra columns (e.g. 'true_err_pct') allowed.
    objectives: the objective columns in order (the first is the accuracy-side objective); each minimised
        unless `meta["directions"]` says "max" for it.
    meta: JSON-able description of the run (space, supernet, device, dataset, objectives, seed, algorithm,
        versions, ...).
    history: one row per (generation, arch in that generation's population): 'generation', 'arch_str'
        and the objective columns.
    """

    table: pd.DataFrame
    objectives: list[str]
    meta: dict = field(default_factory=dict)
    history: pd.DataFrame | None = None

    @classmethod
    def from_evaluations(
        cls,
        table: pd.DataFrame,
        objectives: Iterable[str],
        meta: dict | None = None,
        history: pd.DataFrame | None = None,
        directions: dict[str, str] | None = None,
    ) -> "Front":
        """Build a Front from evaluated archs, normalising dtypes (arch_str/encoding str, generation int64,
        objectives float64) and recomputing 'is_pareto' over the objective columns (NaN rows: False).
        A missing 'generation' column is filled with 0 (e.g. random search). `directions` maps an objective
        column to "min" or "max" (default "min", or what `meta["directions"]` says).
        """
        objectives = list(objectives)
        meta = dict(meta or {})
        directions = {**meta.get("directions", {}), **(directions or {})}
        bad = {c: d for c, d in directions.items() if d not in ("min", "max")}
        if bad:
            raise ValueError(f"objective directions must be 'min' or 'max', got {bad}")
        meta["directions"] = {o: directions.get(o, "min") for o in objectives}
        if not objectives:
            raise ValueError("a Front needs at least one objective column")
        table = table.reset_index(drop=True).copy()
        missing = [c for c in ["arch_str", *objectives] if c not in table.columns]
        if missing:
            raise ValueError(f"table lacks column(s) {missing}; it has {list(table.columns)}")
        if "encoding" not in table.columns:
            raise ValueError(f"table lacks column 'encoding'; it has {list(table.columns)}")
        table["arch_str"] = table["arch_str"].astype(str)
        table["encoding"] = table["encoding"].map(_encoding_str).astype(str)
        for o in objectives:
            table[o] = pd.to_numeric(table[o], errors="raise").astype("float64")
        if "generation" not in table.columns:
            table["generation"] = 0
        table["generation"] = table["generation"].astype("int64")
        F = table[objectives].to_numpy(dtype=float) * _signs(objectives, meta["directions"])
        if "feasible" in table.columns:  # archs that break a hard constraint are never Pareto-optimal
            table["feasible"] = table["feasible"].astype(bool)
            F[~table["feasible"].to_numpy()] = np.nan
        table["is_pareto"] = non_dominated_mask(F)
        first = ["arch_str", "encoding", *objectives, "generation", "is_pareto"]
        table = table[first + [c for c in table.columns if c not in first]]

        if history is None:
            history = _empty_history(objectives)
        else:
            history = history.reset_index(drop=True).copy()
            missing = [c for c in ["generation", "arch_str", *objectives] if c not in history.columns]
            if missing:
                raise ValueError(f"history lacks column(s) {missing}; it has {list(history.columns)}")
            history["generation"] = history["generation"].astype("int64")
            history["arch_str"] = history["arch_str"].astype(str)
            for o in objectives:
                history[o] = pd.to_numeric(history[o], errors="raise").astype("float64")

        meta["objectives"] = list(objectives)
        if "versions" not in meta:
            meta["versions"] = default_meta()["versions"]
        return cls(table=table, objectives=objectives, meta=meta, history=history)

    def __post_init__(self) -> None:
        self.objectives = list(self.objectives)
        if self.history is None:
            self.history = _empty_history(self.objectives)

    # ------------------------------------------------------------------ views
    @property
    def directions(self) -> dict[str, str]:
        """"min" or "max" per objective column."""
        given = self.meta.get("directions", {})
        return {o: given.get(o, "min") for o in self.objectives}

    def pareto(self) -> pd.DataFrame:
        """The Pareto-optimal rows, best first by the first objective (ties by the next ones), index reset."""
        front = self.table[self.table["is_pareto"]]
        ascending = [d == "min" for d in self.directions.values()]
        return front.sort_values(self.objectives, ascending=ascending, kind="stable").reset_index(drop=True)

    def pick(self, by: str | None = None, **limits: float) -> pd.Series:
        """The Pareto arch a user deploys under limits: the best by `by` (default: the first objective) among
        the Pareto rows within every limit. Limits are `max_<column>=v` (column <= v) or `min_<column>=v`
        (column >= v); a column may be named with or without its unit, `max_fpga_latency=3` or
        `max_fpga_latency_ms=3`. ValueError naming the tightest limit when no Pareto arch fits."""
        rows = self.pareto()
        for key, value in limits.items():
            kind, _, name = key.partition("_")
            if kind not in ("max", "min") or not name:
                raise UsageError(f"limit '{key}' must be max_<objective> or min_<objective>")
            col = self._column(name)
            inside = rows[col] <= value if kind == "max" else rows[col] >= value
            if not inside.any():
                have = rows[col].min() if kind == "max" else rows[col].max()
                raise UsageError(f"no Pareto arch has {col} {'<=' if kind == 'max' else '>='} {value:g} "
                                 f"(the front's {'lowest' if kind == 'max' else 'highest'} is {have:g})")
            rows = rows[inside]
        col = self._column(by) if by else self.objectives[0]
        best = rows[col].idxmin() if self.directions.get(col, "min") == "min" else rows[col].idxmax()
        return rows.loc[best]

    def _column(self, name: str) -> str:
        """The table column called `name`, or the objective column `name` plus a unit suffix."""
        if name in self.table.columns:
            return name
        matches = [c for c in self.table.columns if c.startswith(name + "_") and c[len(name) + 1:]
                   in {s.lstrip("_") for s in UNIT_SUFFIXES}]
        if len(matches) == 1:
            return matches[0]
        raise UsageError(f"front has no column '{name}'; objectives: {', '.join(self.objectives)}")

    def rescore(self, column: str, values: np.ndarray) -> "Front":
        """A copy with `column` set to `values` (one per table row, in table order), e.g. 'true_err_pct'
        from ground truth. The objectives stay the same (is_pareto is recomputed, so overwriting an
        objective column moves the front consistently).
        """
        values = np.asarray(values)
        if values.shape != (len(self.table),):
            raise ValueError(f"rescore({column!r}) needs {len(self.table)} values, got shape {values.shape}")
        table = self.table.copy()
        table[column] = values
        meta = json.loads(json.dumps(self.meta, default=_json_default))
        if column not in meta.setdefault("rescored", []):
            meta["rescored"].append(column)
        return Front.from_evaluations(table, self.objectives, meta, self.history.copy())

    def __len__(self) -> int:
        return len(self.table)

    # ------------------------------------------------------------------ files
    def save(self, stem: str | Path, formats: Iterable[str] = FORMATS,
             extra: dict[str, Callable[[str], Any]] | None = None) -> list[Path]:
        """Write `stem.csv`, `stem.parquet`, `stem.json` (those in `formats`) and `stem.<ext>` for each
        `extra[ext](tmp_path)` writer (e.g. the plot, "png") as one set (`atomic_write_set`): the old set's
        files of this stem (every format and `SET_EXTRAS`, also those not written now) are removed only once
        every new file is ready, so a kill never leaves files of two runs side by side. A known extension on
        `stem` is dropped. Parquet is skipped with a warning when pyarrow is missing. Returns the paths
        written.
        """
        formats = list(formats)
        bad = [f for f in formats if f not in FORMATS]
        if bad:
            raise UsageError(f"unknown front format(s) {bad}; valid: {list(FORMATS)}")
        stem = Path(stem)
        if stem.suffix.lower() in {"." + f for f in FORMATS}:
            stem = stem.with_suffix("")
        stem.parent.mkdir(parents=True, exist_ok=True)
        at = lambda ext: stem.with_name(f"{stem.name}.{ext}")  # noqa: E731
        writers: dict[Path, Callable[[str], Any]] = {}
        for fmt in formats:
            if fmt == "csv":
                writers[at(fmt)] = lambda tmp: self.table.to_csv(tmp, index=False)
            elif fmt == "json":
                doc = {
                    "format": JSON_FORMAT,
                    "objectives": self.objectives,
                    "meta": _json_safe(self.meta),
                    "table": _frame_to_json(self.table),
                    "history": _frame_to_json(self.history),
                }
                text = json.dumps(doc, indent=1, allow_nan=False, default=_json_default)
                writers[at(fmt)] = lambda tmp, text=text: Path(tmp).write_text(text, encoding="utf-8")
            else:
                try:
                    import pyarrow as pa
                    import pyarrow.parquet as pq
                except ImportError:
                    warnings.warn(f"pyarrow is not installed: {at(fmt)} not written (pip install pyarrow)")
                    continue
                arrow = pa.Table.from_pandas(self.table, preserve_index=False)
                extra_meta = json.dumps(
                    {"objectives": self.objectives, "meta": _json_safe(self.meta)}, allow_nan=False,
                    default=_json_default
                )
                arrow = arrow.replace_schema_metadata(
                    {**(arrow.schema.metadata or {}), PARQUET_META_KEY: extra_meta.encode("utf-8")}
                )
                writers[at(fmt)] = lambda tmp, arrow=arrow: pq.write_table(arrow, tmp)
        for ext, write in (extra or {}).items():
            writers[at(ext.lstrip("."))] = write
        old = [at(ext) for ext in (*FORMATS, *SET_EXTRAS)]
        return atomic_write_set(writers, replaces=old)

    @classmethod
    def load(cls, path: str | Path) -> "Front":
        """Read a Front from `.json` (everything), `.parquet` (table, objectives and meta) or `.csv` (table).

        For a CSV, the objectives and meta come from a sibling `.json` of the same stem when there is one
        whose objectives are all columns of the CSV; otherwise the objectives are the columns whose names end
        in a unit suffix (`UNIT_SUFFIXES`: _pct, _ms, _mj, _m, _mb, _mflops, ...), in column order. The
        history is restored from JSON only (empty otherwise).
        """
        path = Path(path)
        ext = path.suffix.lower().lstrip(".")
        if ext not in FORMATS:
            raise UsageError(
                f"cannot load a front from {str(path)!r}: extension must be one of {list(FORMATS)}"
            )
        if not path.exists():
            raise FileNotFoundError(f"no front file at {path}")
        if ext == "json":
            try:
                doc = read_json(path, "front file")
                if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
                    found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
                    raise CorruptFileError(f"format is {found!r}, expected {JSON_FORMAT!r}")
                table = _frame_from_json(doc["table"])
                history = _frame_from_json(doc["history"])
                if not isinstance(doc["meta"], dict) or not isinstance(doc["objectives"], list):
                    raise TypeError("'meta' must be an object and 'objectives' a list")
                return cls(table=table, objectives=list(doc["objectives"]), meta=doc["meta"], history=history)
            except CorruptFileError as e:
                if str(path) in str(e):
                    raise
                raise CorruptFileError(f"{path} is not a valid hwnas front JSON: {e}") from None
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
                raise CorruptFileError(f"{path} is not a valid hwnas front JSON ({type(e).__name__}: "
                                       f"{brief(e)})") from None
        if ext == "parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise ImportError(f"reading {path} needs pyarrow (pip install pyarrow)") from None
            try:
                arrow = pq.read_table(path)
                table = arrow.to_pandas()
                raw = (arrow.schema.metadata or {}).get(PARQUET_META_KEY)
                extra = json.loads(raw.decode("utf-8")) if raw else {}
                if not isinstance(extra, dict):
                    raise TypeError("its hwnas metadata is not an object")
            except (ValueError, TypeError, OSError, RecursionError) as e:
                raise CorruptFileError(f"{path} is not a valid hwnas front Parquet file ({type(e).__name__}: "
                                       f"{brief(e)})") from None
            objectives = extra.get("objectives") or _infer_objectives(table.columns)
            return cls(table=table, objectives=objectives, meta=extra.get("meta", {}))
        # csv
        objectives, meta = None, {}
        sibling = path.with_suffix(".json")
        try:
            header = pd.read_csv(path, nrows=0, encoding="utf-8").columns
        except (ValueError, pd.errors.EmptyDataError) as e:  # not UTF-8, not CSV, empty
            raise CorruptFileError(f"{path} is not a front CSV ({type(e).__name__}: "
                                   f"{brief(e)})") from None
        if sibling.exists():
            try:
                doc = read_json(sibling, "front file")
                if doc.get("format") == JSON_FORMAT and set(doc["objectives"]) <= set(header):
                    objectives, meta = list(doc["objectives"]), doc["meta"]
            except (ValueError, KeyError, TypeError, AttributeError):
                pass
        objectives = objectives or _infer_objectives(header)
        dtypes = {"arch_str": str, "encoding": str, "generation": "int64", "is_pareto": bool}
        dtypes.update({o: "float64" for o in objectives})
        # pandas < 3 parses floats to the nearest-but-one ulp unless asked; pandas 3 round-trips by default
        exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
        try:
            table = pd.read_csv(path, dtype={c: t for c, t in dtypes.items() if c in header}, **exact)
        except (ValueError, TypeError) as e:
            raise CorruptFileError(f"{path} is not a front CSV ({type(e).__name__}: "
                                   f"{brief(e)})") from None
        return cls(table=table, objectives=objectives, meta=meta)


def _signs(objectives: list[str], directions: dict[str, str]) -> np.ndarray:
    """+1 per minimised objective, -1 per maximised one."""
    return np.array([-1.0 if directions.get(o) == "max" else 1.0 for o in objectives])


def _infer_objectives(columns: Iterable[str]) -> list[str]:
    objectives = [c for c in columns if str(c).lower().endswith(UNIT_SUFFIXES)]
    if not objectives:
        raise UsageError(
            f"cannot tell the objective columns among {list(columns)}: "
            f"none ends in a unit suffix {UNIT_SUFFIXES}"
        )
    return objectives


def _json_value(v: Any) -> Any:
    """A table cell as strict JSON: NaN/None -> null, +-inf -> "inf"/"-inf" (restored by astype float)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    return v


def _json_safe(obj: Any) -> Any:
    """`obj` (the meta dict) with every non-finite float made strict JSON as in tables: NaN -> null,
    +-inf -> "inf"/"-inf" (e.g. the HV ratio of a search in which no arch was feasible)."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return _json_value(obj)
    return obj


def _json_default(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.generic,)):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"{type(v).__name__} {v!r} is not JSON-serialisable")


def _frame_to_json(df: pd.DataFrame) -> dict:
    return {
        "columns": [str(c) for c in df.columns],
        "dtypes": [str(t) for t in df.dtypes],
        "data": [[_json_value(v) for v in row] for row in df.itertuples(index=False, name=None)],
    }


def _frame_from_json(doc: dict) -> pd.DataFrame:
    columns, dtypes, data = doc["columns"], doc["dtypes"], doc["data"]
    df = pd.DataFrame(data, columns=columns, dtype=object) if data else pd.DataFrame(columns=columns)
    for c, t in zip(columns, dtypes):
        df[c] = df[c].astype(t)
    return df
