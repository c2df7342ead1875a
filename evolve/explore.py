"""The main job as functions: one supernet (or the ground-truth oracle), a Pareto front per target, re-scored
with ground truth and measured against the exact front where NAS-Bench-201 knows the answer.

`SearchConfig` is everything `hwnas search` takes (one flag per field); `search_fronts(config)` runs it and
returns {target: Front}; `save_fronts` writes a search folder (the fronts, `config.yaml`, a log).
Shared by the CLI, the facade (`hwnas.search_fronts`), the experiments and the notebooks.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from hwnas.core.config import option
from hwnas.core.errors import UsageError
from hwnas.core.workers import check_workers
from hwnas.supernet.evaluate import ProxySettings
from hwnas.supernet.trainer import check_torch_device
from hwnas.supernet.zero_cost import ZeroCostSettings

from .front import Front
from .objectives import Cost, get_objective
from .objectives.ensemble import DEFAULT_PROXY, without_supernet
from .objectives.measured import MeasureSettings
from .pareto import hv_ratio, igd, non_dominated_mask
from .search import list_algorithms, parse_bounds, search
from .sources import Sources

log = logging.getLogger(__name__)

TRUE_COL = "true_err_pct"


def _algorithms() -> list[str]:
    return list_algorithms()


@dataclass
class SearchConfig:
    """Everything that defines a search for fronts (`hwnas search`; one flag per field)."""

    supernet: str | None = option(None, help="trained run folder (runs/NAME) for proxy accuracy")
    targets: list[str] = option(default_factory=list, flag="--target", metavar="TARGET",
                                help="target hardware (repeat for several): an HW-NAS-Bench device (fpga, ...), a "
                                     "--device-table name, measured_latency:<target>, remote_latency:<url> or "
                                     "lut_latency; see `hwnas list targets`")
    all_targets: bool = option(False, help="every HW-NAS-Bench device that has data, and every --device-table")
    objectives: list[str] | None = option(None, nargs="+", help="an explicit objective list for one search "
                                          "instead of a front per target (first = accuracy side); see "
                                          "`hwnas list objectives`")
    accuracy: str | None = option(None, help="the accuracy side of every target's front, an objective (default: "
                                             f"{DEFAULT_PROXY} with a supernet, ranker with --labels, true_err "
                                             "with --oracle); e.g. proxy_err for the supernet alone")
    labels: str | None = option(None, help="labelled archs (CSV: arch_str,accuracy, e.g. from hwnas retrain): "
                                           "a ranker trained on them becomes the accuracy side (objective ranker)")
    algorithm: str = option("nsga2", help="search algorithm", choices=_algorithms)
    oracle: bool = option(False, help="search with NB201 ground-truth error instead of the supernet (checks the "
                                      "optimiser)")
    bounds: list[str] = option(default_factory=list, flag="--max", metavar="OBJECTIVE=LIMIT",
                               help="hard constraint, e.g. --max edgegpu_latency=5 --max size_mb=2")
    pop_size: int = option(50, help="population size")
    generations: int = option(20, help="generations (budget: pop-size x generations evaluations)")
    seed: int = option(0, help="seed of the search")
    proxy: ProxySettings = option(default_factory=ProxySettings, help="how the proxy scores a subnet")
    measure: MeasureSettings = option(default_factory=MeasureSettings, prefix="measure_",
                                      help="how measured latency is timed")
    zero_cost: ZeroCostSettings = option(default_factory=ZeroCostSettings, help="where zero-cost signals are computed")
    dataset: str | None = option(None, help="data set of the tables (default: the supernet's, else cifar10)")
    channels: int = option(16, help="C of the standalone subnets that are counted and timed (NB201: 16)")
    cells: int = option(5, help="N of the standalone subnets that are counted and timed (NB201: 5)")
    data: str | None = option(None, help="data folder (default: $HWNAS_DATA, else ./data)")
    truth: str | None = option(None, help="NB201 ground truth: a CSV with arch_str + accuracy columns or the "
                                          "NATS-Bench tss file (default: $HWNAS_DATA/nb201_accuracy.csv)")
    hwnasbench: str | None = option(None, help="HW-NAS-Bench pickle (default: $HWNAS_DATA/HW-NAS-Bench-v1_0.pickle)")
    device_tables: list[str] = option(default_factory=list, flag="--device-table", metavar="FILE.csv",
                                      help="your own per-arch metrics (arch_str + numeric columns); its file stem "
                                           "is a target name")
    lut: str | None = option(None, help="per-block latency table for lut_latency (from `hwnas lut build`)")
    agent_token_file: str | None = option(None, help="token for remote_latency:<url> agents (default: "
                                                     "$HWNAS_AGENT_TOKEN)")
    latency_cache: str | None = option(None, help="SQLite cache of measured latencies (default: "
                                                  "$HWNAS_CACHE/latency.sqlite)")
    device: str = option("cpu", help="torch device the proxy scores subnets on: cpu or cuda")
    workers: str | None = option(None, help="score the proxy on Dask workers: local:N (N one-thread processes "
                                            "here) or dask://HOST:PORT (a running scheduler); scores come back "
                                            "into this machine's cache (pip install \"hwnas[dist]\")")
    out: str | None = option(None, help="search folder for the fronts, config.yaml and search.log (default: "
                                        "fronts/<supernet name>, or fronts/oracle)")
    overwrite: bool = option(False, help="write into an --out folder that already holds a search")
    progress: bool = option(True, help="progress bars", cli=False)

    def validate(self) -> "SearchConfig":
        """UsageError naming the first bad value or option combination."""
        if self.oracle and self.supernet:
            raise UsageError("give either --supernet (proxy fronts) or --oracle (ground truth), not both")
        if self.oracle and (self.accuracy or self.labels):
            raise UsageError("--oracle searches with ground truth; it takes no --accuracy or --labels")
        accuracy = self.objectives[:1] if self.objectives else [self.accuracy or ("ranker" if self.labels else
                                                                                  DEFAULT_PROXY)]
        if not self.oracle and not self.supernet and any("proxy_err" in a for a in accuracy):
            raise UsageError("a proxy search needs --supernet runs/NAME (or --oracle for ground truth, --labels "
                             f"FILE.csv for a ranker, or an --accuracy objective without proxy_err, e.g. "
                             f"{without_supernet(DEFAULT_PROXY)})")
        if self.objectives and (self.targets or self.all_targets):
            raise UsageError("give either --objectives or --target/--all-targets, not both")
        if not self.objectives and not self.targets and not self.all_targets:
            raise UsageError("no target given; use --target NAME (see `hwnas list targets`) or --all-targets")
        if self.algorithm not in list_algorithms():
            raise UsageError(f"unknown algorithm '{self.algorithm}'; valid: {', '.join(list_algorithms())}")
        for name in ("pop_size", "generations", "channels", "cells"):
            if getattr(self, name) < (2 if name == "pop_size" else 1):
                raise UsageError(f"--{name.replace('_', '-')} must be >= {2 if name == 'pop_size' else 1}, "
                                 f"got {getattr(self, name)}")
        parse_bounds(self.bounds)
        check_workers(self.workers)
        try:
            check_torch_device(self.device)
        except UsageError as exc:
            hint = "" if self.device.startswith("cuda") else f"; for target hardware use --target {self.device}"
            raise UsageError(f"--device is the torch device the proxy runs on: {exc}{hint}") from None
        return self

    def default_out(self) -> str:
        """fronts/<supernet folder name>, or fronts/oracle."""
        return str(Path("fronts") / (Path(self.supernet).name if self.supernet else "oracle"))


def sources_for(cfg: SearchConfig) -> Sources:
    """The `Sources` a search config describes (nothing is loaded until an objective needs it)."""
    return Sources(dataset=cfg.dataset, supernet=None if cfg.oracle else cfg.supernet, proxy_settings=cfg.proxy,
                   truth=cfg.truth, hwnasbench=cfg.hwnasbench, device_tables=cfg.device_tables, data=cfg.data,
                   device=cfg.device, net={"channels": cfg.channels, "cells": cfg.cells}, measure=cfg.measure,
                   latency_cache=cfg.latency_cache, lut=cfg.lut, agent_token_file=cfg.agent_token_file,
                   zero_cost=cfg.zero_cost, labels=cfg.labels, progress=cfg.progress, workers=cfg.workers)


def targets_of(cfg: SearchConfig, sources: Sources) -> list[str]:
    """The targets a config asks for (`--all-targets` adds every HW-NAS-Bench device with data and every
    device table); for an explicit `--objectives` list, one pseudo-target named after its hardware side."""
    if cfg.objectives:
        return ["_".join(cfg.objectives[1:]) or cfg.objectives[0]]
    targets = list(dict.fromkeys(cfg.targets))
    if cfg.all_targets:
        targets += [t for t in sources.hw_devices() + list(sources.device_tables) if t not in targets]
    if not targets:
        raise UsageError("--all-targets found no HW-NAS-Bench device with data and no --device-table; prepare the "
                         "data (`hwnas data download`) or pass --target")
    return targets


def exact_front(sources: Sources, hw_objective: str) -> pd.DataFrame:
    """The exact (true_err, hw) Pareto front by enumerating every arch of the space (NB201: 15,625)."""
    return _exact_front(sources, hw_objective).copy()


@lru_cache(maxsize=32)
def _space_table(sources: Sources, hw_objective: str) -> pd.DataFrame:
    """Every arch of the space with its true error and hardware cost (archs missing either left out)."""
    archs = sources.space.all_archs()
    true = get_objective("true_err", sources)
    hw = get_objective(hw_objective, sources)
    table = pd.DataFrame({"arch_str": [sources.space.to_str(a) for a in archs], TRUE_COL: true(archs),
                          hw.column: hw(archs)})
    return table.dropna().reset_index(drop=True)


@lru_cache(maxsize=32)
def _exact_front(sources: Sources, hw_objective: str) -> pd.DataFrame:
    table = _space_table(sources, hw_objective)
    hw_col = table.columns[-1]
    mask = non_dominated_mask(table[[TRUE_COL, hw_col]].to_numpy())
    return table[mask].sort_values(hw_col).reset_index(drop=True)


def front_regret(front: Front, sources: Sources, hw_objective: str) -> dict:
    """Regret of a front re-scored with truth (`hwnas.evolve.ranking.front_regret`): under 20 latency budgets
    (quantiles over the whole space), the best true accuracy within the budget minus the true accuracy of the
    front arch the search's own accuracy side ranks best within it, in points."""
    from .ranking import front_regret as regret_of

    space = _space_table(sources, hw_objective)
    hw_col = space.columns[-1]
    acc = front.objectives[0]
    rows = front.table[front.table["is_pareto"]]
    sign = -1.0 if front.directions.get(acc, "min") == "min" else 1.0
    return regret_of(sign * rows[acc].to_numpy(float), 100 - rows[TRUE_COL].to_numpy(float),
                     rows[hw_col].to_numpy(float), 100 - space[TRUE_COL].to_numpy(float),
                     space[hw_col].to_numpy(float))


def rescore_with_truth(front: Front, sources: Sources) -> Front:
    """Add the ground-truth error column to a front (proxy fronts are always re-scored where truth exists)."""
    archs = [sources.space.from_str(s) for s in front.table["arch_str"]]
    return front.rescore(TRUE_COL, get_objective("true_err", sources)(archs))


def quality(front: Front, exact: pd.DataFrame, hw_column: str) -> tuple[float, float]:
    """(HV ratio, IGD) of the front's Pareto rows, re-scored with truth, against the exact front."""
    found = front.table[front.table["is_pareto"]][[TRUE_COL, hw_column]].to_numpy(float)
    ex = exact[[TRUE_COL, hw_column]].to_numpy(float)
    return hv_ratio(found, ex), igd(found, ex)


def default_accuracy(sources: Sources, oracle: bool = False) -> str:
    """The accuracy side of a search when none is named: true_err for the oracle, the few-label ranker when the
    sources have labels, else DEFAULT_PROXY (the label-free ensemble with the supernet proxy)."""
    if oracle:
        return "true_err"
    return "ranker" if sources.labels_path else DEFAULT_PROXY


def objective_names(sources: Sources, target: str, oracle: bool = False,
                    objectives: Sequence[str] | None = None, accuracy: str | None = None) -> list[str]:
    """What one target's search optimises: (the accuracy side, the target's hardware objective), or the
    explicit `objectives` list. The accuracy side is `accuracy`, else `default_accuracy`."""
    if objectives:
        return list(objectives)
    return [accuracy or default_accuracy(sources, oracle), sources.target_objective(target)]


def search_target(sources: Sources, target: str, oracle: bool = False, algorithm: str = "nsga2",
                  objectives: Sequence[str] | None = None, bounds: Sequence[str] = (), pop_size: int = 50,
                  generations: int = 20, seed: int = 0, progress: bool = True, accuracy: str | None = None) -> Front:
    """Search one target's front (`objective_names`). Where ground truth exists and the hardware side is a
    table, the front is re-scored with it and its HV ratio / IGD against the exact front go into `meta`
    (`hv_ratio`, `igd`)."""
    names = objective_names(sources, target, oracle, objectives, accuracy)
    objs = [get_objective(n, sources) for n in names]
    meta = {"target": target, "device": target, "dataset": sources.dataset, "supernet": sources.supernet,
            "oracle": oracle, "accuracy": names[0], "hw_column": objs[1].column if len(objs) > 1 else None}
    ev = sources.get("proxy") if any("proxy_err" in n for n in names) else None
    before = (ev.hits, ev.misses, ev.seconds) if ev else None
    log.info("searching %s: %s", target, ", ".join(names))
    front = search(sources.space, objs, algorithm=algorithm, pop_size=pop_size, generations=generations, seed=seed,
                   bounds=parse_bounds(bounds), progress=progress, meta=meta)
    if ev is not None:  # this search's own cache statistics
        front.meta["proxy"] = {"bn_mode": ev.settings.bn_mode, "settings": ev.settings.key(),
                               "cache": str(ev.cache.path), "cache_hits": ev.hits - before[0],
                               "evaluations": ev.misses - before[1], "seconds": ev.seconds - before[2]}
    if sources.has_truth() and len(objs) == 2 and objs[1].cost == Cost.TABLE:
        front = rescore_with_truth(front, sources)
        exact = exact_front(sources, names[1])
        hv, ig = quality(front, exact, objs[1].column)
        r = front_regret(front, sources, names[1])
        front.meta.update(hv_ratio=hv, igd=ig, hv_against="exact true_err front", regret=r["mean_regret"],
                          max_regret=r["max_regret"])
    return front


def search_fronts(cfg: SearchConfig, sources: Sources | None = None,
                  each: Callable[[str, Front], None] | None = None) -> dict[str, Front]:
    """Every target's front for a search config: {target: Front}, proxy scores cached once for all targets;
    `each(target, front)` is called as each front is found."""
    cfg.validate()
    own = sources is None
    sources = sources or sources_for(cfg)
    fronts = {}
    try:
        for target in targets_of(cfg, sources):
            fronts[target] = search_target(sources, target, oracle=cfg.oracle, algorithm=cfg.algorithm,
                                           objectives=cfg.objectives, bounds=cfg.bounds, pop_size=cfg.pop_size,
                                           generations=cfg.generations, seed=cfg.seed, progress=cfg.progress,
                                           accuracy=cfg.accuracy)
            if each is not None:
                each(target, fronts[target])
    finally:
        if own:
            sources.close()
    return fronts


def file_stem(target: str) -> str:
    """A target's file name stem: characters other than letters, digits, '_' and '-' become '_'."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", target).strip("_")


def save_front(front: Front, out: str | Path, sources: Sources | None = None, stem: str | None = None) -> list[Path]:
    """Write `<out>/<stem>.csv|.parquet|.json|.png` (stem: the target's name), the plot with the exact front
    when `sources` has ground truth for it. Returns the paths written."""
    import matplotlib.pyplot as plt

    from . import plot

    target = front.meta.get("target") or "front"
    stem_path = Path(out) / (stem or file_stem(target))
    acc, hw = front.objectives[0], front.meta.get("hw_column") or front.objectives[-1]
    exact = exact_front(sources, sources.target_objective(target)) if (
        sources is not None and "hv_ratio" in front.meta) else None
    if acc != TRUE_COL and TRUE_COL in front.table:
        fig = plot.plot_proxy_vs_true(front, acc, TRUE_COL, hw, exact=exact)
    else:
        fig = plot.plot_front_2d(front, hw, acc, exact=exact, title=target)
    try:  # the plot is part of the front's file set: written and replaced together with it
        return front.save(stem_path, extra={"png": lambda tmp: plot.write_figure(fig, tmp, "png")})
    finally:
        plt.close(fig)


def summary_table(fronts: dict[str, Front], oracle: dict[str, Front] | None = None) -> pd.DataFrame:
    """One row per target: front size, evaluations, HV ratio and regret of the front (and of the oracle front);
    regret = mean over 20 latency budgets of the accuracy points lost by picking the front arch its accuracy
    side ranks best within the budget, against the best arch of the whole space within it."""
    rows = []
    for target, front in fronts.items():
        m = front.meta
        row = {"device": target, "objective": m.get("hw_column"), "front_size": int(front.table.is_pareto.sum()),
               "evaluated": m.get("distinct_archs"), "infeasible": m.get("infeasible"),
               **({"proxy_evals": m["proxy"]["evaluations"], "cache_hits": m["proxy"]["cache_hits"]}
                  if "proxy" in m else {}),
               "hv_ratio": m.get("hv_ratio"), "igd": m.get("igd"), "regret": m.get("regret")}
        if oracle is not None:
            row["hv_ratio_proxy"] = row.pop("hv_ratio")
            row["regret_proxy"] = row.pop("regret")
            row["hv_ratio_oracle"] = oracle[target].meta.get("hv_ratio") if target in oracle else None
            row["regret_oracle"] = oracle[target].meta.get("regret") if target in oracle else None
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


# ------------------------------------------------------------------------------------------ search folders
SEARCH_CONFIG = "config.yaml"
SEARCH_LOG = "search.log"


def open_search_folder(out: str | Path, overwrite: bool = False) -> Path:
    """A folder to hold one search: created when missing; one that already holds files is refused unless
    `overwrite`, which removes the files an earlier search wrote there (its fronts, config and log) and
    nothing else."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out '{out}' is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UsageError(f"'{out}' already holds a search; pass --overwrite to replace it or choose another --out")
        for path in list(out.glob("*.json")):
            try:
                Front.load(path)
            except (ValueError, OSError):
                continue
            for ext in (".csv", ".parquet", ".json", ".png"):
                path.with_suffix(ext).unlink(missing_ok=True)
        for name in (SEARCH_CONFIG, SEARCH_LOG):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_search(cfg: SearchConfig, sources: Sources | None = None) -> dict[str, Front]:
    """`hwnas search`: every target's front saved into the search folder `cfg.out` (default
    `cfg.default_out()`) with the resolved options (`config.yaml`, readable back with `--config`) and the
    search's log (`search.log`). Returns {target: Front}."""
    import dataclasses

    import yaml

    from hwnas.core.config import flatten_config
    from hwnas.core.files import atomic_write_text
    from hwnas.core.logs import log_to_file

    cfg.validate()
    cfg = dataclasses.replace(cfg, out=cfg.out or cfg.default_out())
    sources = sources or sources_for(cfg)
    targets = targets_of(cfg, sources)
    for target in targets:  # every name checked (and every table loaded) before anything is written
        for name in objective_names(sources, target, cfg.oracle, cfg.objectives, cfg.accuracy):
            get_objective(name, sources)
    out = open_search_folder(cfg.out, cfg.overwrite)
    resolved = {k: v for k, v in flatten_config(cfg).items() if k not in ("progress", "overwrite")}
    atomic_write_text(out / SEARCH_CONFIG, "# the resolved options of this search (hwnas search --config this file)\n"
                      + yaml.safe_dump(resolved, sort_keys=False))

    def save(target: str, front: Front) -> None:
        front.meta["files"] = [str(p) for p in save_front(front, out, sources)]
        log.info("%s: %d Pareto archs of %d evaluated -> %s", target, int(front.table.is_pareto.sum()),
                 len(front.table), front.meta["files"][0])

    with log_to_file(out / SEARCH_LOG):
        log.info("search into %s: targets %s", out, ", ".join(targets))
        return search_fronts(cfg, sources, each=save)
