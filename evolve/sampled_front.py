"""The front of a controller-driven training run (`--mode enas` / `canas`): every path its controller was
rewarded for, as a `Front` like a search's.

A path sampled several times keeps the mean of its held-out batch accuracies (each from one batch, so
noisy: a proxy, not an evaluation) and the epoch it was first sampled in as its 'generation'.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .front import Front


def front_from_sampled(path: str | Path, meta: dict | None = None) -> Front:
    """A `Front` over (batch error %, cost) from a run's `sampled.csv`."""
    table = pd.read_csv(path)
    cost = next(c for c in table.columns if c.startswith("cost"))
    grouped = table.groupby("arch_str", sort=False).agg(encoding=("encoding", "first"), batch_acc=("batch_acc", "mean"),
                                                         cost=(cost, "first"), generation=("epoch", "min"),
                                                         samples=("epoch", "size")).reset_index()
    grouped["batch_err_pct"] = 100.0 * (1.0 - grouped.pop("batch_acc"))
    grouped = grouped.rename(columns={"cost": cost})
    return Front.from_evaluations(grouped, ["batch_err_pct", cost],
                                  meta={"algorithm": "controller samples", "source": str(path), **(meta or {})})
