"""`search(space, objectives, algorithm=...)`: our `pymoo.minimize`. It returns a `Front`.

The algorithm is a pymoo `Algorithm` object, or the name of a registered factory (`ALGORITHMS`):
`nsga2` (NSGA-II with an initial population spread over the hardware cost's range and a Pareto local
search, gap-filling neighbours first, over the last share of the budget), `nsga2-plain` (textbook NSGA-II:
random initial population, no local search), the single-objective baselines at the same budget, `wsea`
(weighted-sum GA) and `cea` (epsilon-constraint GA), and `random` (pymoo's `RandomSearch`). All of them run
through the same problem, callback and budget (`pop_size * generations` evaluations).

The problem evaluates cheap objectives (tables, counters) first and skips expensive ones (supernet,
device) for archs that already break a hard constraint or lack a table value; such archs are infeasible
(pymoo's constraint domination puts them behind every feasible one) and are counted in `meta`. Maximised
objectives are negated for pymoo; the Front keeps their natural values.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.algorithms.soo.nonconvex.random_search import RandomSearch
from pymoo.core.algorithm import Algorithm
from pymoo.core.callback import Callback
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.problem import Problem
from pymoo.core.sampling import Sampling
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.optimize import minimize
from tqdm.auto import tqdm

from hwnas.core.errors import UsageError
from hwnas.core.registry import Registry
from hwnas.supernet.spaces.base import Arch, SearchSpace

from .front import Front, default_meta
from .objectives import Cost, Objective
from .pareto import non_dominated_mask

log = logging.getLogger(__name__)
_BIG = 1e12  # stands in for a missing value inside pymoo; such rows are infeasible anyway


@dataclass
class Bound:
    """Hard constraint `objective <= limit` (e.g. edgegpu_latency <= 5 ms)."""

    objective: str
    limit: float


def parse_bounds(texts: Sequence[str]) -> list[Bound]:
    """`["edgegpu_latency=5", "size_mb=2"]` -> bounds; UsageError naming a malformed one."""
    out = []
    for t in texts:
        name, sep, value = t.rpartition("=")
        try:
            limit = float(value)
        except ValueError:
            limit = math.nan
        if not sep or not name.strip() or not math.isfinite(limit):
            raise UsageError(f"bad bound '{t}'; expected OBJECTIVE=LIMIT with a finite LIMIT, e.g. edgegpu_latency=5")
        out.append(Bound(name.strip(), limit))
    return out


class _Archive:
    """Every distinct arch evaluated, its objective values and the generation it was first seen."""

    def __init__(self, space: SearchSpace, objectives: list[Objective], bounds: list[Bound]):
        self.space, self.objectives, self.bounds = space, objectives, bounds
        self.rows: dict[str, dict] = {}
        self.evaluations = 0
        self.skipped_expensive = 0

    def evaluate(self, archs: list[Arch], generation: int) -> tuple[np.ndarray, np.ndarray]:
        """(natural values (n, m) with NaN where unknown, feasible (n,)); new archs are recorded as first seen
        in `generation`."""
        n, m = len(archs), len(self.objectives)
        self.evaluations += n
        values = np.full((n, m), np.nan)
        feasible = np.ones(n, dtype=bool)
        order = sorted(range(m), key=lambda j: self.objectives[j].cost)
        for j in order:
            obj = self.objectives[j]
            rows = np.flatnonzero(feasible)
            if obj.cost.expensive:
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
                                  "feasible": bool(feasible[i]), "generation": generation}
        return values, feasible

    def table(self) -> pd.DataFrame:
        cols = ["arch_str", "encoding", *[o.column for o in self.objectives], "feasible", "generation"]
        return pd.DataFrame(list(self.rows.values()), columns=cols)


class ArchProblem(Problem):
    """pymoo problem over a space's integer encodings; every objective minimised (maximised ones negated).
    `scalarize` turns it single-objective (weighted sum), `epsilon` adds the epsilon-constraints of the
    other objectives, and one constraint marks infeasible archs (a broken bound or a missing table value).
    The generation an arch is first seen in comes from the algorithm that asks for the evaluation."""

    def __init__(self, space: SearchSpace, archive: _Archive, scalarize: Callable | None = None,
                 epsilon: np.ndarray | None = None):
        self.space, self.archive, self.scalarize, self.epsilon = space, archive, scalarize, epsilon
        self.signs = np.array([o.direction.sign for o in archive.objectives])
        m = len(archive.objectives)
        n_obj = 1 if scalarize is not None else m
        n_constr = 1 + (m - 1 if epsilon is not None else 0)
        xu = np.array(space.num_choices) - 1
        super().__init__(n_var=len(xu), n_obj=n_obj, n_ieq_constr=n_constr, xl=np.zeros_like(xu), xu=xu, vtype=int,
                         requires_kwargs=True)  # pymoo drops the evaluator's `algorithm` otherwise

    def _evaluate(self, X, out, *args, algorithm: Algorithm | None = None, **kwargs):
        archs = [self.space.decode(x) for x in X]
        generation = int(algorithm.n_iter) if algorithm is not None and algorithm.n_iter is not None else 0
        values, feasible = self.archive.evaluate(archs, generation)
        filled = np.where(np.isnan(values), _BIG, values * self.signs)
        G = [np.where(feasible, -1.0, 1.0)]
        if self.epsilon is not None:
            G += [filled[:, j] - self.epsilon[j - 1] for j in range(1, filled.shape[1])]
        out["G"] = np.column_stack(G)
        out["F"] = self.scalarize(filled) if self.scalarize is not None else filled


def duplicate_key(space: SearchSpace, objectives: Sequence[Objective]) -> Callable[[Arch], str]:
    """How a search tells two archs apart. By canonical form when every objective gives isomorphic archs one
    value (the proxy, zero-cost signals and counters score a cell, not a string), so no cell is paid for twice;
    by string as soon as one objective is read from a per-string table (NB201's accuracies, HW-NAS-Bench's
    latencies: each of the 15,625 strings was trained and measured on its own, so isomorphic strings differ,
    and the exact front over all strings holds some that a canonical search could never evaluate)."""
    if any(o.cost == Cost.TABLE for o in objectives):
        return space.to_str
    return lambda arch: space.to_str(space.canonical(arch))


class ArchDuplicates(DuplicateElimination):
    """Treat archs with the same `key` (`duplicate_key`) as duplicates, so a generation never pays twice for one.

    Written as a `DuplicateElimination` rather than pymoo's `HashDuplicateElimination(func=...)`: that class
    applies its `func` twice (`h = func(func(ind))`), so a function from an individual to its canonical arch
    would be called again on the arch it returned.
    """

    def __init__(self, space: SearchSpace, key: Callable[[Arch], str]):
        super().__init__()
        self.space, self.key = space, key

    def _key(self, ind) -> str:
        return self.key(self.space.decode(ind.X))

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
    """Per generation: the population (for plots and `Front.history`) and the progress bar."""

    def __init__(self, archive: _Archive, generations: int, progress: bool, desc: str):
        super().__init__()
        self.archive, self.rows = archive, []
        self.bar = tqdm(total=generations, desc=desc, unit="gen", disable=not progress, leave=False)

    def notify(self, algorithm):
        space = self.archive.space
        self.record(int(algorithm.n_iter), [space.decode(x) for x in algorithm.pop.get("X")])

    def record(self, gen: int, archs: list[Arch], advance: bool = True) -> None:
        """Log one generation's population (for a local-search step: the archs it evaluated); `advance` moves
        the progress bar on by one generation."""
        cols = [o.column for o in self.archive.objectives]
        for a in archs:
            row = self.archive.rows[self.archive.space.to_str(a)]
            self.rows.append({"generation": gen, "arch_str": row["arch_str"], **{c: row[c] for c in cols}})
        self.bar.update(1 if advance else 0)
        self.bar.set_postfix(evals=self.archive.evaluations, archs=len(self.archive.rows))
        log.debug("generation %d: %d evaluations, %d distinct archs", gen, self.archive.evaluations,
                  len(self.archive.rows))


class CostSpreadSampling(Sampling):
    """An initial population spread over the whole range of a cheap hardware objective (a table lookup): a
    pool of `pool` x n random encodings is looked up (not counted as evaluations, it costs no accuracy score),
    the range from its cheapest to its dearest arch is cut into n equal bins, one random arch is taken from
    each non-empty bin and the rest is filled at random. A random population samples the cost's quantiles,
    so the cheap end of a front (NB201 on edgegpu: a few cells far faster than the rest) is often missed, and
    the front's hypervolume with it."""

    def __init__(self, space: SearchSpace, cost: Objective, pool: int = 20):
        super().__init__()
        self.space, self.cost, self.pool = space, cost, pool

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        k = np.array(self.space.num_choices)
        X = random_state.integers(0, k, (n_samples * self.pool, len(k)))
        cost = self.cost([self.space.decode(x) for x in X])
        ok = np.flatnonzero(np.isfinite(cost))
        if len(ok) == 0:
            return X[:n_samples]
        edges = np.linspace(cost[ok].min(), cost[ok].max(), n_samples + 1)
        bins = np.clip(np.searchsorted(edges, cost[ok], side="right") - 1, 0, n_samples - 1)
        picked = [ok[random_state.choice(np.flatnonzero(bins == b))] for b in range(n_samples) if (bins == b).any()]
        taken = set(picked)
        rest = [i for i in random_state.permutation(len(X)) if i not in taken]
        return X[picked + rest[: n_samples - len(picked)]]


def _neighbours(space: SearchSpace, arch: Arch) -> list[Arch]:
    """Every arch that differs from `arch` in one decision."""
    out = []
    for i, k in enumerate(space.num_choices):
        for v in range(k):
            if v != arch[i]:
                out.append(space.decode([*arch[:i], v, *arch[i + 1:]]))
    return out


def pareto_local_search(archive: _Archive, evaluations: int, batch: int, generation: int,
                        rng: np.random.Generator, history: "_History", key: Callable[[Arch], str] | None = None,
                        generation_size: int | None = None) -> int:
    """Spend `evaluations` on archs one decision away from the archive's non-dominated feasible archs, `batch`
    at a time, the front updated after each batch; unevaluated neighbours only (by `key`, `duplicate_key`'s
    rule; default canonical: isomorphic ones count as evaluated). NSGA-II finds the front's region quickly but
    refines its points slowly; at NB201's scale the best cells of a latency class are usually a swap of one
    op away from a front point. Evaluations are numbered in generations of `generation_size` (default
    `batch`) from `generation` on, as the algorithm's were. Returns the evaluations spent (fewer when no
    unevaluated neighbour is left).

    With two objectives whose second (the hardware side) is a table lookup, a batch is drawn first from the
    *gap-filling* neighbours: those cheaper than the next front point up from their parent (for the most
    accurate point: than the dearest candidate). Such a neighbour enters the front as soon as it beats its
    parent's accuracy or undercuts its cost; a dearer one would have to beat a more accurate front point. They
    are drawn with probability proportional to that room (next point's cost minus theirs), so wide gaps of the
    front are filled first. The lookups are free, as in `CostSpreadSampling`, and are not counted as
    evaluations. Random neighbours fill the rest of a batch. With ground truth at 500 evaluations (40 tuning
    seeds) this lifted fpga's mean HV ratio from 0.986 to 0.990 (`LOCAL_SEARCH_SHARE`)."""
    space, objectives = archive.space, archive.objectives
    key = key or (lambda arch: space.to_str(space.canonical(arch)))
    cost = objectives[1] if len(objectives) == 2 and objectives[1].cost == Cost.TABLE else None
    seen = {key(space.from_str(k)) for k in archive.rows}
    spent = 0
    while spent < evaluations:
        table = archive.table()
        table = table[table["feasible"]]
        F = np.column_stack([o.direction.sign * table[o.column].to_numpy(float) for o in objectives])
        front = table[non_dominated_mask(F)] if len(table) else table
        if cost is not None:
            front = front.sort_values(cost.column)
            ceilings = np.append(front[cost.column].to_numpy(float)[1:], np.inf)
        else:
            ceilings = np.full(len(front), np.inf)
        candidates: dict[str, Arch] = {}
        ceiling: dict[str, float] = {}
        for text, top in zip(front["arch_str"], ceilings):
            for b in _neighbours(space, space.from_str(text)):
                k = key(b)
                if k not in seen:
                    candidates.setdefault(k, b)
                    ceiling[k] = max(ceiling.get(k, -np.inf), top)
        if not candidates:
            break
        keys = sorted(candidates)
        size = generation_size or batch
        # a batch never crosses a generation boundary, so each evaluated arch carries its own generation
        want = min(batch, evaluations - spent, len(keys), size - spent % size)
        if cost is not None:
            values = np.asarray(cost([candidates[k] for k in keys]), float)
            tops = np.array([ceiling[k] for k in keys])
            dearest = np.nanmax(values) if np.isfinite(values).any() else 0.0
            room = np.nan_to_num(np.where(np.isinf(tops), dearest, tops) - values, nan=0.0).clip(min=0.0)
            fills = np.flatnonzero(room > 0)
            n = min(want, len(fills))
            take = [*rng.choice(fills, size=n, replace=False, p=room[fills] / room[fills].sum())] if n else []
            take += [*rng.permutation(np.setdiff1d(np.arange(len(keys)), take))[: want - n]]
        else:
            take = rng.choice(len(keys), size=want, replace=False)
        archs = [candidates[keys[i]] for i in take]
        seen.update(keys[i] for i in take)
        gen = generation + spent // size
        archive.evaluate(archs, gen)
        history.record(gen, archs, advance=(spent + len(archs)) // size > spent // size)
        spent += len(archs)
    return spent


# ------------------------------------------------------------------------------------------ algorithms
@dataclass
class Plan:
    """What an algorithm factory returns: the pymoo algorithm, and how the problem is posed to it (a
    weighted sum, epsilon-constraints), with what the factory learnt on the way (`info`, into `meta`)."""

    algorithm: Algorithm
    scalarize: Callable[[np.ndarray], np.ndarray] | None = None
    epsilon: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    local_search: float = 0.0  # share of the budget spent by `pareto_local_search` after the algorithm


@dataclass
class SearchSetup:
    """What an algorithm factory may use: the space, the objectives, the population size, the seed, and the
    baselines' settings (random archs for statistics; CEA's percentile)."""

    space: SearchSpace
    objectives: list[Objective]
    pop_size: int
    seed: int
    stats_samples: int = 1000
    cea_percentile: float = 60.0

    def operators(self) -> dict[str, Any]:
        """The variation operators every GA here uses: integer sampling, SBX and polynomial mutation with
        rounding, and duplicate elimination by `duplicate_key`."""
        return dict(sampling=IntegerRandomSampling(),
                    crossover=SBX(prob=0.9, eta=3.0, vtype=float, repair=RoundingRepair()),
                    mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
                    eliminate_duplicates=ArchDuplicates(self.space, duplicate_key(self.space, self.objectives)))

    def spread_sampling(self) -> Sampling:
        """`CostSpreadSampling` over the first hardware-side objective that is a table lookup; integer random
        sampling when there is none (a counter or a measurement would cost a pool of evaluations)."""
        cheap = [o for o in self.objectives[1:] if o.cost == Cost.TABLE]
        return CostSpreadSampling(self.space, cheap[0]) if cheap else IntegerRandomSampling()

    def random_stats(self) -> np.ndarray:
        """The (minimised) objective values of `stats_samples` random archs (a seeded stream of their own)."""
        rng = np.random.default_rng(self.seed + 7919)
        archs = [self.space.sample(rng) for _ in range(self.stats_samples)]
        return np.column_stack([o.direction.sign * o(archs) for o in self.objectives])


ALGORITHMS: Registry[Callable[[SearchSetup], Plan]] = Registry("algorithm")


#: share of an `nsga2` search's budget spent on Pareto local search, and archs per local-search batch (the
#: front is updated after each). Tuned with ground truth at 500 evaluations on seeds 10-49, not the
#: benchmark's (0-4); mean HV ratio (standard error 0.0005) on fpga, the weakest device:
#: random neighbours, share 0.4 / batch 10: 0.9858; gap-filling first, uniformly, 0.6 / 20: 0.9894;
#: gap-filling by room, 0.6 / 20: 0.9906, 0.7 / 20: 0.9905, 0.6 / 10: 0.9904 (batches then crossed generation
#: boundaries; cut at them, as now, 0.6 / 20: 0.9897).
LOCAL_SEARCH_SHARE = 0.6
LOCAL_SEARCH_BATCH = 20


@ALGORITHMS.register("nsga2")
def _nsga2(setup: SearchSetup) -> Plan:
    """NSGA-II (Deb et al., 2002) from an initial population spread over the hardware cost's range, then a
    Pareto local search (one-decision neighbours of the front) over the last 60% of the budget (LOCAL_SEARCH_SHARE), gap-filling neighbours first."""
    ops = {**setup.operators(), "sampling": setup.spread_sampling()}
    return Plan(NSGA2(pop_size=setup.pop_size, **ops), local_search=LOCAL_SEARCH_SHARE)


@ALGORITHMS.register("nsga2-plain")
def _nsga2_plain(setup: SearchSetup) -> Plan:
    """Textbook NSGA-II over the objectives: random initial population, no local search."""
    return Plan(NSGA2(pop_size=setup.pop_size, **setup.operators()))


@ALGORITHMS.register("wsea")
def _wsea(setup: SearchSetup) -> Plan:
    """A GA on the sum of the objectives standardised by their mean and std over random archs."""
    stats = setup.random_stats()
    mu, sd = np.nanmean(stats, axis=0), np.nanstd(stats, axis=0) + 1e-12
    return Plan(GA(pop_size=setup.pop_size, **setup.operators()),
                scalarize=lambda F: ((F - mu) / sd).sum(axis=1, keepdims=True),
                info={"wsea_mean": mu.tolist(), "wsea_std": sd.tolist()})


@ALGORITHMS.register("cea")
def _cea(setup: SearchSetup) -> Plan:
    """A GA on the first objective with the others bounded by their `cea_percentile`-th percentile over
    random archs (epsilon-constraint)."""
    stats = setup.random_stats()
    epsilon = np.nanpercentile(stats[:, 1:], setup.cea_percentile, axis=0)
    return Plan(GA(pop_size=setup.pop_size, **setup.operators()), scalarize=lambda F: F[:, :1], epsilon=epsilon,
                info={"cea_bounds": dict(zip([o.column for o in setup.objectives[1:]], epsilon.tolist()))})


@ALGORITHMS.register("random")
def _random(setup: SearchSetup) -> Plan:
    """pymoo's RandomSearch: `pop_size` uniformly random encodings per generation."""
    return Plan(RandomSearch(n_points_per_iteration=setup.pop_size, sampling=IntegerRandomSampling()))


def list_algorithms(pattern: str | None = None) -> list[str]:
    """Names of the registered search algorithms."""
    return ALGORITHMS.list(pattern)


# ------------------------------------------------------------------------------------------ search
def search(space: SearchSpace, objectives: Sequence[Objective], algorithm: str | Algorithm = "nsga2",
           pop_size: int = 50, generations: int = 20, seed: int = 0, bounds: Sequence[Bound] = (),
           stats_samples: int = 1000, cea_percentile: float = 60.0, progress: bool = True,
           meta: dict | None = None) -> Front:
    """Search `space` for archs optimising `objectives`; the first objective is the accuracy side.

    `algorithm` is a registered name (`list_algorithms()`) or a pymoo `Algorithm` posed the multi-objective
    problem as it is. Budget: `generations` generations of `pop_size` (`pop_size * generations` evaluations)
    for every algorithm. `wsea` minimises the sum of the objectives standardised by mean/std over
    `stats_samples` random archs; `cea` minimises the first objective with the others bounded by their
    `cea_percentile`-th percentile over those archs. Returns a Front of every arch evaluated, Pareto rows
    marked, with per-generation history.
    """
    objectives = list(objectives)
    names = {o.name for o in objectives}
    for b in bounds:
        if b.objective not in names:
            raise UsageError(f"bound on '{b.objective}', which is not an objective here; objectives: "
                             f"{', '.join(sorted(names))}")
    if pop_size < 2 or generations < 1:
        raise UsageError(f"need pop_size >= 2 and generations >= 1, got {pop_size} and {generations}")
    if isinstance(algorithm, Algorithm):
        plan, label = Plan(algorithm), type(algorithm).__name__
    else:
        factory = ALGORITHMS.get(algorithm)
        plan, label = factory(SearchSetup(space, objectives, pop_size, seed, stats_samples, cea_percentile)), algorithm
    archive = _Archive(space, objectives, list(bounds))
    history = _History(archive, generations, progress, desc=f"{label} {objectives[-1].name}")
    problem = ArchProblem(space, archive, plan.scalarize, plan.epsilon)
    # The algorithm gets the first generations; a local search spends what is left of pop_size * generations.
    own = generations if not plan.local_search else max(1, round(generations * (1 - plan.local_search)))
    try:
        res = minimize(problem, plan.algorithm, ("n_gen", own), seed=seed, callback=history, verbose=False)
        local = 0
        if own < generations:
            local = pareto_local_search(archive, pop_size * generations - archive.evaluations, LOCAL_SEARCH_BATCH,
                                        own + 1, np.random.default_rng([seed, 1]), history,
                                        duplicate_key(space, objectives), generation_size=pop_size)
    finally:
        history.bar.close()
    info = dict(plan.info)
    if plan.local_search:
        info.update(local_search_evaluations=local, algorithm_generations=own)
    if plan.scalarize is not None and res.X is not None:
        info["picked"] = space.to_str(space.decode(np.atleast_2d(res.X)[0]))
    table = archive.table()
    cols = [o.column for o in objectives]
    meta = default_meta(**(meta or {}), algorithm=label, pop_size=pop_size, generations=generations,
                        seed=seed, space=space.name, evaluations=archive.evaluations, distinct_archs=len(table),
                        missing_values={c: int(table[c].isna().sum()) for c in cols},
                        infeasible=int((~table["feasible"]).sum()),
                        bounds={b.objective: b.limit for b in bounds},
                        sources={o.column: o.source for o in objectives}, **info)
    if archive.skipped_expensive:
        meta["expensive_evaluations_skipped"] = archive.skipped_expensive
    directions = {o.column: o.direction.value for o in objectives}
    log.info("%s: %d evaluations, %d distinct archs, %d infeasible", label, archive.evaluations, len(table),
             meta["infeasible"])
    if len(table) and meta["infeasible"] == len(table):
        meta["empty_front"] = ("no evaluated arch is feasible: every one breaks a bound "
                               f"({meta['bounds'] or 'none given'}) or lacks a value ({meta['missing_values']})")
        log.warning("%s: the front is empty: %s", label, meta["empty_front"])
    return Front.from_evaluations(table, cols, meta, pd.DataFrame(history.rows, columns=["generation", "arch_str",
                                                                                           *cols]),
                                  directions=directions)
