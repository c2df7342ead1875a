"""Pareto dominance and front-quality indicators over objective matrices (all objectives minimised).

`F` is always an (n, m) float array: n points, m objectives. Rows holding a NaN are never on a front and
are left out of every indicator. Non-dominated sorting, hypervolume, IGD and their zero-to-one
normalisation are pymoo's own; this module only fixes which normalisation, so numbers are comparable across
searches: each objective is scaled by the ideal and nadir point of the *exact* front (e.g. over all 15,625
NB201 cells), so the exact front spans [0, 1]^m.

Pure numpy + pymoo: must not import torch or anything of ours.
"""
from __future__ import annotations

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.indicators.igd import IGD
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

#: Reference point, per normalised objective, for the hypervolume. The exact front spans [0, 1]^m after
#: normalisation; 1.1 gives its boundary points (the best-accuracy and the fastest arch) a non-zero share of
#: 0.1 x their extent instead of none. The "1 + 1/H" rule of Ishibuchi et al. (2017) ties the reference to
#: the population size H; we compare fronts of different sizes (a 50-arch population, a random-search
#: archive, the exact front of all archs) against one another, so a fixed 1.1 keeps every number on one
#: scale. Points at or beyond the reference in any objective add nothing (pymoo/moocore semantics).
HV_REFERENCE = 1.1


def _as_matrix(F: np.ndarray) -> np.ndarray:
    F = np.asarray(F, dtype=float)
    if F.ndim == 1:  # one objective
        F = F[:, None]
    if F.ndim != 2:
        raise ValueError(f"objective matrix must be 2-D (n points, m objectives), got shape {F.shape}")
    return F


def _finite_rows(F: np.ndarray) -> np.ndarray:
    return F[~np.isnan(F).any(axis=1)]


def non_dominated_mask(F: np.ndarray) -> np.ndarray:
    """Boolean mask (n,): True for the rows on the first (non-dominated) front.

    A row dominates another if it is no worse in every objective and better in at least one. Duplicates of a
    front point are all True (none dominates the other); rows containing NaN are False.
    """
    F = _as_matrix(F)
    mask = np.zeros(len(F), dtype=bool)
    valid = np.flatnonzero(~np.isnan(F).any(axis=1))
    if len(valid) == 0:
        return mask
    first = NonDominatedSorting().do(F[valid], only_non_dominated_front=True)
    mask[valid[np.asarray(first, dtype=int)]] = True
    return mask


def exact_front(F: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the non-dominated rows of `F`, e.g. of all archs of a search space."""
    return np.flatnonzero(non_dominated_mask(F))


def _ideal_nadir(exact_F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    exact_F = _as_matrix(exact_F)
    front = exact_F[non_dominated_mask(exact_F)]
    if len(front) == 0:
        raise ValueError("the exact front is empty (every row holds a NaN)")
    return front.min(axis=0), front.max(axis=0)


def normalized_hypervolume(
    F: np.ndarray, ideal: np.ndarray, nadir: np.ndarray, ref: float = HV_REFERENCE
) -> float:
    """Hypervolume of `F` in pymoo's zero-to-one normalisation by `ideal` and `nadir` (an objective with a zero
    range is only shifted), w.r.t. the normalised point (ref, ..., ref), divided by ref**m so that 1.0 is the
    whole (unreachable) box [0, ref]^m. Dimensionless, in [0, 1] for points no better than `ideal`. NaN rows
    are left out; an empty set scores 0.0.
    """
    F = _finite_rows(_as_matrix(F))
    m = F.shape[1]
    if len(F) == 0:
        return 0.0
    hv = HV(ref_point=np.full(m, float(ref)), norm_ref_point=False, ideal=np.asarray(ideal, dtype=float),
            nadir=np.asarray(nadir, dtype=float), zero_to_one=True)
    return float(hv(F)) / float(ref) ** m


def hv_ratio(F: np.ndarray, exact_F: np.ndarray, ref: float = HV_REFERENCE) -> float:
    """Normalised hypervolume of `F` over that of the exact front, both normalised by the ideal and nadir
    of the non-dominated rows of `exact_F`; the exact front scores 1.0, a worse set less.
    """
    ideal, nadir = _ideal_nadir(exact_F)
    exact_hv = normalized_hypervolume(_as_matrix(exact_F), ideal, nadir, ref)
    return normalized_hypervolume(F, ideal, nadir, ref) / exact_hv


def igd(F: np.ndarray, exact_F: np.ndarray) -> float:
    """Inverted generational distance of `F` to the exact front (mean distance from each exact-front point to
    its nearest point of `F`), in the normalisation of `hv_ratio`. 0.0 when `F` covers the exact front;
    inf for an empty set.
    """
    exact_F = _as_matrix(exact_F)
    ideal, nadir = _ideal_nadir(exact_F)
    F = _finite_rows(_as_matrix(F))
    if len(F) == 0:
        return float("inf")
    indicator = IGD(exact_F[non_dominated_mask(exact_F)], zero_to_one=True, ideal=ideal, nadir=nadir)
    return float(indicator(F))
