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
