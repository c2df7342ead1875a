"""Accuracy-side objectives: the supernet's proxy error and NAS-Bench-201's ground-truth error."""
from __future__ import annotations

from .base import Cost, register_objective


def _proxy_status(sources) -> str:
    return f"supernet {sources.supernet}" if sources.supernet else "needs a trained supernet (--supernet runs/NAME)"


@register_objective("proxy_err", unit="%", cost=Cost.SUPERNET, needs=("proxy",), status=_proxy_status,
                    doc="held-out error of the subnet with inherited supernet weights, BN recalibrated")
def _proxy_err(arg, space, proxy):
    return proxy.error, f"supernet {proxy.checkpoint}"


def _truth_status(sources) -> str:
    try:
        truth = sources.get("truth")
    except (FileNotFoundError, ValueError) as exc:
        return f"unavailable: {exc}"
    dataset = sources.dataset
    return f"NAS-Bench-201 {truth.source}" if dataset in truth.datasets() else f"no {dataset} column in {truth.source}"


@register_objective("true_err", unit="%", cost=Cost.TABLE, needs=("truth", "dataset"), spaces=("nb201",),
                    status=_truth_status, doc="NAS-Bench-201 200-epoch test error (ground truth)")
def _true_err(arg, space, truth, dataset):
    def fn(archs):
        return truth.error([space.to_str(a) for a in archs], dataset)
    return fn, f"NAS-Bench-201 {dataset} (200 epochs)"
