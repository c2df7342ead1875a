"""Rank correlation between two series, the one helper behind every "does A order things like B" number
(proxy vs ground truth, lookup table vs measured latency, this machine vs an HW-NAS-Bench device).

Imports nothing of ours.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats


def rank_correlation(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Kendall tau-b and Spearman rho of `a` against `b` over the pairs where both are finite:
    {"kendall", "spearman", "n"}. ValueError for series of different lengths or fewer than 2 usable pairs."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"need two equally long 1-d series; got shapes {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        raise ValueError(f"need at least 2 pairs of finite values; got {int(ok.sum())}")
    x, y = x[ok], y[ok]
    return {"kendall": float(stats.kendalltau(x, y).statistic), "spearman": float(stats.spearmanr(x, y).statistic),
            "n": int(ok.sum())}
