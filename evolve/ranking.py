"""How well a score ranks architectures against their real quality: the numbers a proxy is judged by
(`ranking_metrics`), and the uniform sample over isomorphism classes they are computed on (`sample_classes`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hwnas.core.stats import rank_correlation


def ranking_metrics(score: Sequence[float], true: Sequence[float]) -> dict:
    """How well `score` (higher = predicted better) ranks archs whose real quality is `true` (higher =
    better): Kendall tau-b, Spearman rho, tau inside the true top 10%, precision at top 5%, and the true
    value of the score's top-1 / best of top-10 / best of top-100."""
    s, t = np.asarray(score, dtype=float), np.asarray(true, dtype=float)
    if s.shape != t.shape or s.ndim != 1 or len(s) < 2:
        raise ValueError(f"need two equally long 1-d series of at least 2 values; got {s.shape} and {t.shape}")
    ok = np.isfinite(s) & np.isfinite(t)
    s, t = s[ok], t[ok]
    n = len(s)
    top10 = np.argsort(-t, kind="stable")[:max(2, int(np.ceil(0.10 * n)))]
    k5 = max(1, int(np.ceil(0.05 * n)))
    by_score = np.argsort(-s, kind="stable")
    true_top5 = set(np.argsort(-t, kind="stable")[:k5].tolist())
    overall = rank_correlation(s, t)
    return {
        "n": n,
        "kendall_tau": overall["kendall"],
        "spearman_rho": overall["spearman"],
        "kendall_top10pct": rank_correlation(s[top10], t[top10])["kendall"],
        "precision_at_5pct": len(true_top5 & set(by_score[:k5].tolist())) / k5,
        "top1_true": float(t[by_score[0]]),
        "best_of_top10_true": float(t[by_score[:10]].max()),
        "best_of_top100_true": float(t[by_score[:100]].max()),
        "oracle_best_true": float(t.max()),
    }


def sample_classes(space, k: int | None, seed: int = 0) -> list:
    """`k` canonical archs uniform over isomorphism classes (all of them for k=None), in class order."""
    classes = space.canonical_archs()
    if k is None or k >= len(classes):
        return classes
    rng = np.random.default_rng(seed)
    return [classes[i] for i in sorted(rng.choice(len(classes), size=k, replace=False))]


#: the latency budgets regret is averaged over: these quantiles of the archs' latencies
BUDGET_QUANTILES = tuple(np.round(np.linspace(0.05, 1.0, 20), 2))


def regret(score: Sequence[float], true: Sequence[float], cost: Sequence[float],
           quantiles: Sequence[float] = BUDGET_QUANTILES) -> dict:
    """What a user loses by trusting `score` (higher = predicted better) under a hardware budget: for each
    budget (a quantile of `cost`), the best `true` value among the archs within it minus the `true` value of
    the arch `score` ranks best within it (ties in score: the first). Mean and max over the budgets, in the
    units of `true` (accuracy points). Archs with a non-finite value anywhere are left out."""
    s, t, c = (np.asarray(v, dtype=float) for v in (score, true, cost))
    ok = np.isfinite(s) & np.isfinite(t) & np.isfinite(c)
    s, t, c = s[ok], t[ok], c[ok]
    if len(s) == 0:
        raise ValueError("regret needs at least one arch with finite score, truth and cost")
    losses = []
    for b in np.quantile(c, quantiles):
        within = np.flatnonzero(c <= b)
        pick = within[np.argmax(s[within])]
        losses.append(float(t[within].max() - t[pick]))
    return {"mean_regret": float(np.mean(losses)), "max_regret": float(np.max(losses)), "budgets": len(losses)}


def tau_within_classes(score: Sequence[float], true: Sequence[float], cost: Sequence[float]) -> float:
    """Kendall tau of `score` against `true` inside each group of archs with the same `cost` (on fpga and
    eyeriss a front point ties in latency with many cells), averaged over the groups of at least two archs with
    weights equal to their sizes; NaN when no group has two archs."""
    s, t, c = (np.asarray(v, dtype=float) for v in (score, true, cost))
    ok = np.isfinite(s) & np.isfinite(t) & np.isfinite(c)
    s, t, c = s[ok], t[ok], c[ok]
    total = weight = 0.0
    for value in np.unique(c):
        idx = np.flatnonzero(c == value)
        if len(idx) < 2 or np.ptp(s[idx]) == 0 or np.ptp(t[idx]) == 0:
            continue
        total += len(idx) * rank_correlation(s[idx], t[idx])["kendall"]
        weight += len(idx)
    return total / weight if weight else float("nan")


def front_regret(front_score: Sequence[float], front_true: Sequence[float], front_cost: Sequence[float],
                 space_true: Sequence[float], space_cost: Sequence[float],
                 quantiles: Sequence[float] = BUDGET_QUANTILES) -> dict:
    """What a user loses by picking from a searched front: for each budget (a quantile of `space_cost`, the cost
    of every arch of the space), the best `space_true` within it minus the `front_true` of the front arch with
    the best `front_score` (higher = predicted better) within it. Mean and max over the budgets some front arch
    fits; `uncovered` counts the budgets none fits."""
    fs, ft, fc = (np.asarray(v, dtype=float) for v in (front_score, front_true, front_cost))
    st, sc = np.asarray(space_true, dtype=float), np.asarray(space_cost, dtype=float)
    ok = np.isfinite(st) & np.isfinite(sc)
    st, sc = st[ok], sc[ok]
    fok = np.isfinite(fs) & np.isfinite(ft) & np.isfinite(fc)
    fs, ft, fc = fs[fok], ft[fok], fc[fok]
    losses, uncovered = [], 0
    for b in np.quantile(sc, quantiles):
        within = np.flatnonzero(fc <= b)
        if len(within) == 0:
            uncovered += 1
            continue
        pick = within[np.argmax(fs[within])]
        losses.append(float(st[sc <= b].max() - ft[pick]))
    return {"mean_regret": float(np.mean(losses)) if losses else float("nan"),
            "max_regret": float(np.max(losses)) if losses else float("nan"), "uncovered": uncovered}
