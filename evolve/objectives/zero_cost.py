"""Zero-cost objectives `zc:<signal>`: a score of the untrained subnet (`hwnas.supernet.zero_cost`: synflow,
naswot, jacob_cov, grad_norm, snip, zico, live_params, live_flops) or a feature of the NB201 cell's graph (live_convs: the
convolutions that run; conv_depth: the most convolutions on one input-to-output path). Larger is predicted
better, so each is maximised. Signals are cached per canonical arch like the proxy."""
from __future__ import annotations

import numpy as np

from hwnas.core.errors import UsageError
from hwnas.supernet.zero_cost import SIGNALS

from .base import Cost, Direction, register_objective

#: features of an NB201 cell's graph, computed from the arch alone
PATH_FEATURES = ("live_convs", "conv_depth")


def _names(sources) -> list[str]:
    features = PATH_FEATURES if sources.space.name == "nb201" else ()
    return [f"zc:{s}" for s in (*SIGNALS, *features)]


def _check(signal: str) -> None:
    if signal not in SIGNALS and signal not in PATH_FEATURES:
        raise UsageError(f"unknown zero-cost signal '{signal}'; valid: {', '.join((*SIGNALS, *PATH_FEATURES))}")


@register_objective("zc:<signal>", unit="", cost=Cost.COUNTER, direction=Direction.MAXIMISE,
                    needs=("zero_cost",), names=_names, check=_check,
                    status=lambda sources: "computed on the untrained subnet (cached per canonical arch)",
                    doc="a zero-cost score of the untrained subnet, or a feature of the cell's graph")
def _zero_cost(signal, space, zero_cost):
    if signal in PATH_FEATURES:
        if space.name != "nb201":
            raise UsageError(f"'zc:{signal}' is a feature of NB201 cells; space '{space.name}' has none")
        from hwnas.supernet import nb201_net

        feature = getattr(nb201_net, signal)
        return (lambda archs: np.array([feature(a) for a in archs], dtype=float)), f"{signal} of the cell's graph"
    scorer = zero_cost.scorer(signal)
    return scorer, f"zero-cost {signal} ({zero_cost.settings.key()})"
