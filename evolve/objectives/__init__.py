"""Objectives: registered, named metrics over archs, each with its unit, direction and cost class.

`get_objective(name, sources)` builds one; `list_objectives(sources)` names what `sources` can provide;
`OBJECTIVES` is the registry (one `ObjectiveSpec` per kind). Names and units (the Front column is
`<name>_<unit>`):
  proxy_err                   %   held-out error of the subnet with inherited supernet weights
  true_err                    %   NAS-Bench-201 200-epoch test error (ground truth; nb201 only)
  <device>_latency / _energy  ms / mJ  HW-NAS-Bench (edgegpu, raspi4, edgetpu, pixel3, eyeriss, fpga; nb201 only)
  <table>_<column>                a user's per-arch CSV (`--device-table FILE.csv`; table = file stem)
  params, flops               M   counted on the standalone network
  size_mb, size_int8_mb       MB  fp32 size; int8 size after post-training quantisation
  peak_mem_mb                 MB  peak activation memory of one forward pass
  measured_latency:<target>   ms  timed on this machine (cpu, cuda, onnxruntime, onnxruntime-cuda)
  remote_latency:<url>        ms  timed on a remote device by `hwnas agent serve`
  lut_latency                 ms  sum of per-block latencies from a lookup table (--lut FILE)
  zc:<signal>                     a zero-cost score of the untrained subnet (synflow, naswot, jacob_cov,
                                  grad_norm, snip, zico, live_params) or a cell feature (live_convs,
                                  conv_depth); maximised
  ensemble:<a>+<b>+...            a label-free combination of accuracy predictors (AZ-NAS-style log percentiles
                                  among a fixed reference sample); maximised
  ranker                          a LightGBM LambdaRank model trained on a few labelled archs (--labels
                                  FILE.csv) over the encoding and the label-free predictors; maximised

A new kind of objective is one `@register_objective` in one module (imported below, or by the user's code
before searching).
"""
from __future__ import annotations

from . import accuracy, counters, ensemble, measured, ranked, tables, zero_cost  # noqa: F401  (each registers its objectives)
from .base import (
    OBJECTIVES,
    Cost,
    Direction,
    Objective,
    ObjectiveSpec,
    get_objective,
    list_objectives,
    register_objective,
    resolve,
)
from .measured import MeasureSettings

__all__ = ["OBJECTIVES", "Cost", "Direction", "MeasureSettings", "Objective", "ObjectiveSpec", "get_objective",
           "list_objectives", "register_objective", "resolve"]
