"""Combining accuracy predictors, measured on a scored sample of canonical cells (`benchmarks.ranking`'s frame):

- `select_ensembles`: every label-free ensemble (`ensemble:<a>+<b>+...`, log percentiles among the fixed
  reference sample) of up to `max_members` signals, scored on one random half of the cells (the *selection*
  half) and on the other (the *test* half). Choosing members by their NB201 truth is itself a use of labels,
  so the choice is made on the selection half only and the test half says whether it holds.
- `label_sweep`: the few-label ranker (`hwnas.evolve.ranker`) trained on n cells drawn at random with their
  NB201 accuracy, for each n and seed, judged on the cells it was not trained on.

Both judge a score by the two numbers of issue 14's targets: Kendall tau, and the worst device's mean regret
over 20 latency budgets (`hwnas.evolve.ranking.regret`).
"""
from __future__ import annotations

from itertools import combinations
from typing import Sequence

import numpy as np
import pandas as pd

from hwnas.evolve.objectives.ensemble import ensemble_score
from hwnas.evolve.ranking import ranking_metrics, regret


def judge(score: np.ndarray, true: np.ndarray, latency: dict[str, np.ndarray], rows: np.ndarray) -> dict:
    """Kendall tau, Spearman rho and per-device mean regret of `score` over `rows` (a boolean mask or indices);
    `worst_regret` is the largest device mean."""
    m = ranking_metrics(score[rows], true[rows])
    out = {"kendall_tau": m["kendall_tau"], "spearman_rho": m["spearman_rho"]}
    regrets = {d: regret(score[rows], true[rows], lat[rows])["mean_regret"] for d, lat in latency.items()}
    out.update({f"regret_{d}": r for d, r in regrets.items()})
    out["worst_regret"] = max(regrets.values()) if regrets else float("nan")
    return out


def halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(selection mask, test mask): a seeded random split of n rows into two halves."""
    rng = np.random.default_rng(seed)
    select = np.zeros(n, dtype=bool)
    select[rng.permutation(n)[: n // 2]] = True
    return select, ~select


def ensemble_values(columns: dict[str, np.ndarray], references: dict[str, np.ndarray],
                    members: Sequence[str]) -> np.ndarray:
    """The ensemble score of every row: `ensemble_score` over the members' columns (higher = better) against
    their values on the reference sample, the same computation as the `ensemble:` objective."""
    return ensemble_score([columns[m] for m in members], [references[m] for m in members])


def select_ensembles(columns: dict[str, np.ndarray], references: dict[str, np.ndarray], true: np.ndarray,
                     latency: dict[str, np.ndarray], select: np.ndarray, max_members: int = 4) -> pd.DataFrame:
    """Every combination of 1..max_members signals, judged on the selection and on the test half; one row
    per combination (`members` joined by '+'), columns suffixed `_select` / `_test`."""
    rows = []
    names = list(columns)
    for k in range(1, max_members + 1):
        for members in combinations(names, k):
            score = ensemble_values(columns, references, members)
            row = {"members": "+".join(members), "size": k}
            for label, mask in (("select", select), ("test", ~select)):
                row.update({f"{key}_{label}": v for key, v in judge(score, true, latency, mask).items()})
            rows.append(row)
    return pd.DataFrame(rows)


def choose(table: pd.DataFrame, tau_target: float, regret_target: float) -> pd.Series:
    """The combination to make the default, by the selection half only: the one meeting both targets with
    the highest tau if any does; else the one with the lowest worst-device regret among those within 0.02 of
    the best tau reached with a worst-device regret at most `regret_target` + 0.5; else the highest tau.
    Regret is what a user of a front feels, so it decides between ensembles that rank about equally well."""
    t = table
    both = t[(t.kendall_tau_select >= tau_target) & (t.worst_regret_select <= regret_target)]
    if len(both):
        return both.sort_values(["kendall_tau_select", "size"], ascending=[False, True]).iloc[0]
    near = t[t.worst_regret_select <= regret_target + 0.5]
    if len(near):
        best_tau = near.kendall_tau_select.max()
        near = near[near.kendall_tau_select >= best_tau - 0.02]
        return near.sort_values(["worst_regret_select", "size"]).iloc[0]
    return t.sort_values(["kendall_tau_select", "size"], ascending=[False, True]).iloc[0]


def label_sweep(space, arch_strs: Sequence[str], features: dict[str, np.ndarray], true: np.ndarray,
                latency: dict[str, np.ndarray], counts: Sequence[int], seeds: Sequence[int],
                prior: np.ndarray | None = None, prior_scale: float | None = None) -> pd.DataFrame:
    """For each label count n and seed: draw n cells at random, train the ranker on their `true` accuracy with
    `features` (per-row predictors, higher = better) and the encoding, boosted from `prior` (per-row, higher =
    better; None: from zero), and judge its score on the other cells. One row per (n, seed), with the score of
    every row in `score`."""
    from hwnas.evolve.ranker import PRIOR_SCALE

    from hwnas.evolve.objectives import Cost, Direction, Objective
    from hwnas.evolve.ranker import FewLabelRanker, Labels

    index = {s: i for i, s in enumerate(arch_strs)}
    archs = [space.from_str(s) for s in arch_strs]

    def column(name: str, values: np.ndarray) -> Objective:
        def fn(batch):
            return values[[index[space.to_str(space.canonical(a))] for a in batch]]
        return Objective(name, "", fn, "benchmark column", Cost.TABLE, space, Direction.MAXIMISE)

    objectives = [column(n, v) for n, v in features.items()]
    prior_objective = column("prior", np.asarray(prior, dtype=float)) if prior is not None else None
    rows = []
    n_all = len(arch_strs)
    for n in counts:
        for seed in seeds:
            rng = np.random.default_rng(seed)
            train = np.zeros(n_all, dtype=bool)
            train[rng.choice(n_all, size=n, replace=False)] = True
            ranker = FewLabelRanker(space, objectives, prior=prior_objective, seed=seed,
                                    prior_scale=PRIOR_SCALE if prior_scale is None else prior_scale)
            ranker.fit(Labels([archs[i] for i in np.flatnonzero(train)], true[train], "NB201"))
            score = ranker.score(archs)
            rows.append({"labels": n, "seed": seed, **judge(score, true, latency, ~train), "score": score})
    return pd.DataFrame(rows)
