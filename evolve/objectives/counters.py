"""Objectives counted on the standalone network: parameters, FLOPs, fp32 and int8 size, peak activation
memory (`hwnas.hardware.counters`). The network is built at the search's deploy size (`net`)."""
from __future__ import annotations

import numpy as np

from hwnas.core.datasets import dataset_info
from hwnas.hardware import counters

from .base import Cost, register_objective


def _counter(name: str, unit: str, doc: str, count):
    @register_objective(name, unit=unit, cost=Cost.COUNTER, needs=("net", "dataset"),
                        status=lambda sources: "counted on the standalone network", doc=doc)
    def build(arg, space, net, dataset):
        shape = dataset_info(dataset).input_shape()

        def fn(archs):
            return np.array([count(space.build_subnet(a, **net), shape) for a in archs], dtype=float)
        return fn, "counted on the standalone network"
    return build


_counter("params", "M", "parameters of the standalone network", lambda m, shape: counters.params_m(m))
_counter("flops", "M", "forward FLOPs for one image (torch's FlopCounterMode)", counters.flops_m)
_counter("size_mb", "MB", "fp32 parameter size", lambda m, shape: counters.size_mb(m))
_counter("size_int8_mb", "MB", "size after int8 post-training quantisation (BN folded)",
         lambda m, shape: counters.size_int8_mb(m))
_counter("peak_mem_mb", "MB", "peak activation memory of one forward pass", counters.peak_activation_mb)
