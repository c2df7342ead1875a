"""`ensemble:<a>+<b>+...`: a label-free combination of accuracy predictors (the supernet proxy, zero-cost
signals, ...), in the manner of AZ-NAS (Lee & Ham, CVPR 2024): each member's value is turned into its
percentile among a fixed reference sample of canonical archs (so an arch's score never depends on which other
archs a search happens to evaluate), and the score is the sum over members of the log percentile. Maximised.

A member is any objective; its direction says which way is better (`proxy_err` lower, `zc:synflow` higher).
The reference sample is `Sources.reference_archs` (NB201: 128 canonical cells drawn uniformly over the
isomorphism classes, seed 0), scored once per member through the member's own cache.
"""
from __future__ import annotations

import numpy as np

from hwnas.core.errors import UsageError

from .base import Cost, Direction, Objective, register_objective

#: the accuracy side of a proxy search unless another is asked for: the best label-free combination measured
#: over the 6,466 canonical NB201 cells, chosen on one random half of them (benchmarks/results/ranking.md)
DEFAULT_PROXY = "ensemble:proxy_err+zc:naswot+zc:jacob_cov+zc:live_flops"


def members_of(name: str) -> list[str]:
    """The member objectives of an `ensemble:<a>+<b>+...` name, in order; `[name]` for any other objective."""
    return _members(name.removeprefix("ensemble:")) if name.startswith("ensemble:") else [name]


def without_supernet(name: str) -> str:
    """An ensemble's name without its `proxy_err` member (what is left when there is no supernet); other names
    unchanged."""
    if not name.startswith("ensemble:"):
        return name
    return "ensemble:" + "+".join(m for m in members_of(name) if m != "proxy_err")


def _members(arg: str) -> list[str]:
    names = [n.strip() for n in arg.split("+")]
    if len(names) < 1 or not all(names):
        raise UsageError(f"ensemble:'{arg}' must name its members joined by '+', e.g. "
                         "ensemble:proxy_err+zc:synflow+zc:naswot")
    if len(set(names)) != len(names):
        raise UsageError(f"ensemble:'{arg}' names a member twice")
    return names


def percentiles(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each value's mid-rank percentile among `reference` (higher = better values), in (0, 1):
    (#reference below + half the ties + 1/2) / (len(reference) + 1); NaN stays NaN."""
    ref = np.sort(np.asarray(reference, dtype=float)[~np.isnan(reference)])
    v = np.asarray(values, dtype=float)
    below = np.searchsorted(ref, v, side="left")
    ties = np.searchsorted(ref, v, side="right") - below
    out = (below + 0.5 * ties + 0.5) / (len(ref) + 1)
    return np.where(np.isnan(v), np.nan, out)


def ensemble_score(member_values: list[np.ndarray], member_references: list[np.ndarray]) -> np.ndarray:
    """Sum over members of log(percentile among that member's reference values); values oriented so that
    higher is better."""
    return np.sum([np.log(percentiles(v, r)) for v, r in zip(member_values, member_references)], axis=0)


@register_objective("ensemble:<a>+<b>+...", unit="", cost=Cost.COUNTER, direction=Direction.MAXIMISE,
                    needs=("objective", "reference_archs"), check=lambda arg: _members(arg) and None,
                    names=lambda sources: ["ensemble:<a>+<b>+..."],
                    status=lambda sources: "log percentiles among a fixed reference sample, summed (label-free; costs "
                                           "what its dearest member does)",
                    doc="a label-free combination of accuracy predictors, e.g. ensemble:proxy_err+zc:synflow")
def _ensemble(arg, space, objective, reference_archs):
    members: list[Objective] = [objective(name) for name in _members(arg)]
    refs = [-m.direction.sign * m(reference_archs) for m in members]  # higher = better

    def fn(archs):
        return ensemble_score([-m.direction.sign * m(archs) for m in members], refs)
    source = f"ensemble of {', '.join(m.name for m in members)} over {len(reference_archs)} reference archs"
    return fn, source, max(m.cost for m in members)
