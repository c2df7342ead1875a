"""The main job as functions: one supernet (or the ground-truth oracle), a Pareto front per device,
re-scored with ground truth and measured against the exact front where NAS-Bench-201 knows the answer.

Shared by the CLI (`hwnas search`, `hwnas quickstart`), `benchmarks.fronts` and the notebooks.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .front import Front
from .objectives import ObjectiveContext, device_objective, get_objective
from .pareto import hv_ratio, igd, non_dominated_mask
from .search import Bound, search

TRUE_COL = "true_err_pct"


@dataclass
class DeviceResult:
    """One device's search: its front, and how close it is to the exact front when truth exists."""

    device: str
    front: Front
    hw_column: str
    exact: pd.DataFrame | None = None          # the exact (true error, hw) front over the whole space
    hv: float | None = None                    # normalised HV ratio of the front re-scored with truth
    igd: float | None = None
    files: list[Path] = field(default_factory=list)

    def row(self) -> dict:
        m = self.front.meta
        return {"device": self.device, "objective": self.hw_column, "front_size": int(self.front.table.is_pareto.sum()),
                "evaluated": m.get("distinct_archs"), "infeasible": m.get("infeasible"),
                **({"proxy_evals": m["proxy"]["evaluations"], "cache_hits": m["proxy"]["cache_hits"]}
                   if "proxy" in m else {}),
                "hv_ratio": self.hv, "igd": self.igd}


def has_truth(ctx: ObjectiveContext) -> bool:
    """Whether NAS-Bench-201 ground truth is available for the context's space and data set."""
    if ctx.space.name != "nb201":
        return False
    try:
        return ctx.dataset in ctx.truth.datasets()
    except (FileNotFoundError, ValueError):
        return False


def exact_front(ctx: ObjectiveContext, hw_objective: str) -> pd.DataFrame:
    """The exact (true_err, hw) Pareto front by enumerating every arch of the space (NB201: 15,625)."""
    archs = ctx.space.all_archs()
    true = get_objective("true_err", ctx)
    hw = get_objective(hw_objective, ctx)
    table = pd.DataFrame({"arch_str": [ctx.space.to_str(a) for a in archs], TRUE_COL: true(archs),
                          hw.column: hw(archs)})
    table = table.dropna()
    mask = non_dominated_mask(table[[TRUE_COL, hw.column]].to_numpy())
    return table[mask].sort_values(hw.column).reset_index(drop=True)


def rescore_with_truth(front: Front, ctx: ObjectiveContext) -> Front:
    """Add the ground-truth error column to a front (proxy fronts are always re-scored where truth exists)."""
    archs = [ctx.space.from_str(s) for s in front.table["arch_str"]]
    return front.rescore(TRUE_COL, get_objective("true_err", ctx)(archs))


def quality(front: Front, exact: pd.DataFrame, hw_column: str) -> tuple[float, float]:
    """(HV ratio, IGD) of the front's Pareto rows, re-scored with truth, against the exact front."""
    found = front.table[front.table["is_pareto"]][[TRUE_COL, hw_column]].to_numpy(float)
    ex = exact[[TRUE_COL, hw_column]].to_numpy(float)
    return hv_ratio(found, ex), igd(found, ex)


def search_device(ctx: ObjectiveContext, device: str, oracle: bool = False, algorithm: str = "nsga2",
                  objectives: Sequence[str] | None = None, bounds: Sequence[Bound] = (), pop_size: int = 50,
                  generations: int = 20, seed: int = 0, progress: bool = True) -> DeviceResult:
    """Search one device's front: (proxy_err or true_err, the device's hardware objective), or the
    explicit `objectives` list. Re-scores with truth and compares with the exact front when possible."""
    names = list(objectives) if objectives else ["true_err" if oracle else "proxy_err",
                                                 device_objective(device, ctx)]
    objs = [get_objective(n, ctx) for n in names]
    meta = {"device": device, "dataset": ctx.dataset, "supernet": ctx.supernet_path, "oracle": oracle,
            "accuracy": names[0]}
    ev = ctx.evaluator if "proxy_err" in names else None
    before = (ev.hits, ev.misses, ev.seconds) if ev else None
    front = search(ctx.space, objs, algorithm=algorithm, pop_size=pop_size, generations=generations, seed=seed,
                   bounds=bounds, progress=progress, meta=meta)
    if ev is not None:  # this search's own cache statistics
        front.meta["proxy"] = {"bn_mode": ev.settings.bn_mode, "settings": ev.settings.key(),
                               "cache": str(ev.cache.path), "cache_hits": ev.hits - before[0],
                               "evaluations": ev.misses - before[1], "seconds": ev.seconds - before[2]}
    result = DeviceResult(device, front, objs[1].column)
    if has_truth(ctx) and objs[1].cost == 0 and len(objs) == 2:
        result.front = rescore_with_truth(front, ctx)
        result.exact = exact_front(ctx, names[1])
        result.hv, result.igd = quality(result.front, result.exact, objs[1].column)
        result.front.meta.update(hv_ratio=result.hv, igd=result.igd, hv_against="exact true_err front")
    return result


def save_result(result: DeviceResult, out: str | Path, stem: str | None = None) -> list[Path]:
    """Write `<out>/<stem>.csv|.parquet|.json|.png` (stem defaults to the device name)."""
    from . import plot

    stem_path = Path(out) / (stem or re.sub(r"[^A-Za-z0-9_-]+", "_", result.device).strip("_"))
    files = result.front.save(stem_path)
    acc = result.front.objectives[0]
    png = stem_path.with_suffix(".png")
    if acc != TRUE_COL and TRUE_COL in result.front.table:
        fig = plot.plot_proxy_vs_true(result.front, acc, TRUE_COL, result.hw_column, exact=result.exact, path=png)
    else:
        fig = plot.plot_front_2d(result.front, result.hw_column, acc, exact=result.exact, title=result.device,
                                 path=png)
    _close(fig)
    result.files = files + [png]
    return result.files


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def summary_table(results: dict[str, DeviceResult], oracle: dict[str, DeviceResult] | None = None) -> pd.DataFrame:
    """One row per device: front size, evaluations, HV ratio of the proxy front (and of the oracle front)."""
    rows = []
    for dev, r in results.items():
        row = r.row()
        if oracle is not None:
            row["hv_ratio_proxy"] = row.pop("hv_ratio")
            row["hv_ratio_oracle"] = oracle[dev].hv if dev in oracle else None
        rows.append(row)
    return pd.DataFrame(rows)


def format_table(df: pd.DataFrame) -> str:
    """Plain-text table for the terminal (NaN/None as '-')."""
    def fmt(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "-"
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    cols = list(df.columns)
    cells = [[fmt(v) for v in row] for row in df.itertuples(index=False)]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
