"""`search(...)`: NSGA-II over a space's integer encoding (pymoo), and the baselines at the same budget:
weighted-sum GA, epsilon-constraint GA and random search. Returns a `Front`.

The problem evaluates cheap objectives (tables, counters) first and skips expensive ones (supernet,
device) for archs that already break a hard constraint or lack a table value; such archs are infeasible
(pymoo's constraint domination puts them behind every feasible one) and are counted in `meta`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.callback import Callback
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.problem import Problem
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.optimize import minimize
from tqdm.auto import tqdm

from supernet.spaces.base import Arch, SearchSpace

from .front import Front, default_meta
from .objectives import Objective

ALGORITHMS = ("nsga2", "wsea", "cea", "random")
_BIG = 1e12  # stands in for a missing value inside pymoo; such rows are infeasible anyway


@dataclass
class Bound:
    """Hard constraint `objective <= limit` (e.g. edgegpu_latency <= 5 ms)."""

    objective: str
    limit: float


def parse_bounds(texts: Sequence[str]) -> list[Bound]:
    """`["edgegpu_latency=5", "size_mb=2"]` -> bounds; ValueError naming a malformed one."""
    out = []
    for t in texts:
        name, sep, value = t.rpartition("=")
        try:
            out.append(Bound(name.strip(), float(value)))
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"bad bound '{t}'; expected OBJECTIVE=LIMIT, e.g. edgegpu_latency=5")
    return out


class _Archive:
    """Every distinct arch evaluated, its objective values and the generation it was first seen."""

    def __init__(self, space: SearchSpace, objectives: list[Objective], bounds: list[Bound]):
        self.space, self.objectives, self.bounds = space, objectives, bounds
        self.rows: dict[str, dict] = {}
        self.generation = 0
        self.evaluations = 0
        self.skipped_expensive = 0

    def evaluate(self, archs: list[Arch]) -> tuple[np.ndarray, np.ndarray]:
        """(values (n, m) with NaN where unknown, feasible (n,))."""
        n, m = len(archs), len(self.objectives)
        self.evaluations += n
        values = np.full((n, m), np.nan)
        feasible = np.ones(n, dtype=bool)
        order = sorted(range(m), key=lambda j: self.objectives[j].cost)
        for j in order:
            obj = self.objectives[j]
            rows = np.flatnonzero(feasible)
            if obj.cost >= 2:
                self.skipped_expensive += n - len(rows)
            if len(rows):
                values[rows, j] = obj([archs[i] for i in rows])
            feasible &= ~np.isnan(values[:, j])
            for b in self.bounds:
                if b.objective == obj.name:
                    feasible &= ~(values[:, j] > b.limit)
        for i, a in enumerate(archs):
            key = self.space.to_str(a)
            if key not in self.rows:
                self.rows[key] = {"arch_str": key, "encoding": ",".join(map(str, a)),
                                  **{o.column: values[i, j] for j, o in enumerate(self.objectives)},
                                  "feasible": bool(feasible[i]), "generation": self.generation}
        return values, feasible

    def table(self) -> pd.DataFrame:
        cols = ["arch_str", "encoding", *[o.column for o in self.objectives], "feasible", "generation"]
        return pd.DataFrame(list(self.rows.values()), columns=cols)


class ArchProblem(Problem):
    """pymoo problem over integer encodings; `scalarize` turns it single-objective (weighted sum or
    epsilon-constraint), `bounds` add hard constraints."""

    def __init__(self, space: SearchSpace, archive: _Archive, scalarize=None, epsilon: np.ndarray | None = None):
        self.space, self.archive, self.scalarize, self.epsilon = space, archive, scalarize, epsilon
        m = len(archive.objectives)
        n_obj = 1 if scalarize is not None else m
        n_constr = 1 + (m - 1 if epsilon is not None else 0)
        xu = np.array(space.num_choices) - 1
        super().__init__(n_var=len(xu), n_obj=n_obj, n_ieq_constr=n_constr, xl=np.zeros_like(xu), xu=xu, vtype=int)

    def _evaluate(self, X, out, *args, **kwargs):
        archs = [self.space.decode(x) for x in X]
        values, feasible = self.archive.evaluate(archs)
        filled = np.where(np.isnan(values), _BIG, values)
        G = [np.where(feasible, -1.0, 1.0)]
        if self.epsilon is not None:
            G += [filled[:, j] - self.epsilon[j - 1] for j in range(1, filled.shape[1])]
        out["G"] = np.column_stack(G)
        out["F"] = self.scalarize(filled) if self.scalarize is not None else filled


class CanonicalDuplicates(DuplicateElimination):
    """Treat isomorphic archs as duplicates, so a generation never pays twice for one cell."""

    def __init__(self, space: SearchSpace):
        super().__init__()
        self.space = space

    def _key(self, ind) -> Arch:
        return self.space.canonical(self.space.decode(ind.X))

    def _do(self, pop, other, is_duplicate):
        seen = {self._key(o) for o in other} if other is not None else set()
        for i, ind in enumerate(pop):
            k = self._key(ind)
            if k in seen:
                is_duplicate[i] = True
            else:
                seen.add(k)
        return is_duplicate


class _History(Callback):
    """Per generation: the population (for plots), progress bar, archive generation counter."""

    def __init__(self, archive: _Archive, generations: int, progress: bool, desc: str):
        super().__init__()
        self.archive, self.rows = archive, []
        self.bar = tqdm(total=generations, desc=desc, unit="gen", disable=not progress, leave=False)

    def notify(self, algorithm):
        gen = algorithm.n_gen
        cols = [o.column for o in self.archive.objectives]
        for x in algorithm.pop.get("X"):
            row = self.archive.rows[self.archive.space.to_str(self.archive.space.decode(x))]
            self.rows.append({"generation": gen, "arch_str": row["arch_str"], **{c: row[c] for c in cols}})
        self.archive.generation = gen + 1
        self.bar.update(1)
        self.bar.set_postfix(evals=self.archive.evaluations, archs=len(self.archive.rows))


def _random_stats(space: SearchSpace, objectives: list[Objective], n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 7919)
    archs = [space.sample(rng) for _ in range(n)]
    return np.column_stack([o(archs) for o in objectives])


def search(space: SearchSpace, objectives: Sequence[Objective], algorithm: str = "nsga2", pop_size: int = 50,
           generations: int = 20, seed: int = 0, bounds: Sequence[Bound] = (), stats_samples: int = 1000,
           cea_percentile: float = 60.0, progress: bool = True, meta: dict | None = None) -> Front:
    """Search `space` for archs minimising `objectives`; the first objective is the accuracy side.

    Budget: `pop_size * generations` evaluations for every algorithm. `wsea` minimises the sum of the
    objectives standardised by mean/std over `stats_samples` random archs; `cea` minimises the first
    objective with the others bounded by their `cea_percentile`-th percentile over those archs.
    Returns a Front of every arch evaluated, Pareto rows marked, with per-generation history.
    """
    objectives = list(objectives)
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm '{algorithm}'; valid: {', '.join(ALGORITHMS)}")
    names = {o.name for o in objectives}
    for b in bounds:
        if b.objective not in names:
            raise ValueError(f"bound on '{b.objective}', which is not an objective here; objectives: "
                             f"{', '.join(sorted(names))}")
    if pop_size < 2 or generations < 1:
        raise ValueError(f"need pop_size >= 2 and generations >= 1, got {pop_size} and {generations}")
    archive = _Archive(space, objectives, list(bounds))
    info: dict = {}
    history = _History(archive, generations, progress, desc=f"{algorithm} {objectives[-1].name}")
    if algorithm == "random":
        rng = np.random.default_rng(seed)
        for g in range(generations):
            archive.generation = g + 1
            archs = [space.sample(rng) for _ in range(pop_size)]
            archive.evaluate(archs)
            history.rows += [{"generation": g + 1, **{k: archive.rows[space.to_str(a)][k]
                              for k in ["arch_str", *[o.column for o in objectives]]}} for a in archs]
            history.bar.update(1)
    else:
        scalarize = epsilon = None
        if algorithm in ("wsea", "cea"):
            stats = _random_stats(space, objectives, stats_samples, seed)
            if algorithm == "wsea":
                mu, sd = np.nanmean(stats, axis=0), np.nanstd(stats, axis=0) + 1e-12
                info.update(wsea_mean=mu.tolist(), wsea_std=sd.tolist())
                scalarize = lambda F: ((F - mu) / sd).sum(axis=1, keepdims=True)  # noqa: E731
            else:
                epsilon = np.nanpercentile(stats[:, 1:], cea_percentile, axis=0)
                info.update(cea_bounds=dict(zip([o.column for o in objectives[1:]], epsilon.tolist())))
                scalarize = lambda F: F[:, :1]  # noqa: E731
        problem = ArchProblem(space, archive, scalarize, epsilon)
        ops = dict(sampling=IntegerRandomSampling(),
                   crossover=SBX(prob=0.9, eta=3.0, vtype=float, repair=RoundingRepair()),
                   mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
                   eliminate_duplicates=CanonicalDuplicates(space))
        algo = NSGA2(pop_size=pop_size, **ops) if algorithm == "nsga2" else GA(pop_size=pop_size, **ops)
        archive.generation = 1
        res = minimize(problem, algo, ("n_gen", generations), seed=seed, callback=history, verbose=False)
        if algorithm in ("wsea", "cea") and res.X is not None:
            info["picked"] = space.to_str(space.decode(np.atleast_2d(res.X)[0]))
    history.bar.close()
    table = archive.table()
    cols = [o.column for o in objectives]
    meta = default_meta(**(meta or {}), algorithm=algorithm, pop_size=pop_size, generations=generations,
                        seed=seed, space=space.name, evaluations=archive.evaluations, distinct_archs=len(table),
                        missing_values={c: int(table[c].isna().sum()) for c in cols},
                        infeasible=int((~table["feasible"]).sum()),
                        bounds={b.objective: b.limit for b in bounds},
                        sources={o.column: o.source for o in objectives}, **info)
    if archive.skipped_expensive:
        meta["expensive_evaluations_skipped"] = archive.skipped_expensive
    return Front.from_evaluations(table, cols, meta, pd.DataFrame(history.rows, columns=["generation", "arch_str",
                                                                                           *cols]))
