"""Objectives: named, minimised metrics over a batch of archs, each with its unit and source.

`get_objective(name, ctx)` builds one from a name; `list_objectives(ctx)` tells what a context offers.
Names and units (the Front column is `<name>_<unit>`):
  proxy_err             %   held-out error of the subnet with inherited supernet weights (supernet run)
  true_err              %   NAS-Bench-201 200-epoch test error on the context's data set (ground truth)
  <device>_latency      ms  HW-NAS-Bench, device in edgegpu, raspi4, edgetpu, pixel3, eyeriss, fpga
  <device>_energy       mJ  HW-NAS-Bench, device in edgegpu, eyeriss, fpga
  <table>_<column>          a user's per-arch CSV (`--device-table FILE.csv`; table = file stem)
  params                M   parameters of the standalone network
  flops                 M   forward FLOPs for one image (torch's FlopCounterMode)
  size_mb               MB  fp32 parameter size
  size_int8_mb          MB  size after int8 post-training quantisation (BN folded)
  peak_mem_mb           MB  peak activation memory of one forward pass
  measured_latency:<t>  ms  timed on this machine, t in cpu, cuda, onnxruntime, onnxruntime-cuda
  remote_latency:<url>  ms  timed on a remote device by `hwnas agent serve` (token: --agent-token-file)
  lut_latency           ms  sum of per-block latencies from a lookup table (--lut FILE)
A value a table lacks is NaN: the search treats that arch as infeasible and counts it, never as zero.
Cheap objectives (tables, counters) carry a lower `cost` than supernet or device evaluations.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from supernet.spaces import SearchSpace, get_space, space_from_config
from supernet.spaces.base import Arch

UNIT_SUFFIX = {"%": "pct", "ms": "ms", "mJ": "mj", "M": "m", "MB": "mb", "": ""}
HW_UNITS = {"latency": "ms", "energy": "mJ"}


@dataclass
class Objective:
    """A minimised metric: `values = objective(archs)`; results cached per arch string."""

    name: str
    unit: str
    fn: Callable[[list[Arch]], np.ndarray]
    source: str
    cost: int = 0  # 0 table lookup, 1 counter, 2 supernet or device measurement
    space: SearchSpace | None = None
    _cache: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def column(self) -> str:
        """Front column name: the objective name with its unit, e.g. 'fpga_latency_ms',
        'measured_latency_cpu_ms' (characters other than letters, digits and '_' become '_')."""
        name = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", self.name)).strip("_")
        suffix = UNIT_SUFFIX.get(self.unit, self.unit.lower())
        return f"{name}_{suffix}" if suffix and not name.endswith(f"_{suffix}") else name

    @property
    def evaluated(self) -> list[str]:
        """Arch strings this objective has computed so far, in first-seen order."""
        return list(self._cache)

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        keys = [self.space.to_str(a) for a in archs]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        if todo:
            uniq = list(dict.fromkeys(keys[i] for i in todo))
            vals = np.asarray(self.fn([self.space.from_str(k) for k in uniq]), dtype=float)
            self._cache.update(zip(uniq, vals.tolist()))
        return np.array([self._cache[k] for k in keys], dtype=float)


def _dataset_of(run_config: dict | None, dataset: str | None) -> str:
    """The data set a context works on: the supernet's (from its run's config.json), else `dataset`, else
    cifar10; ValueError when both are given and differ."""
    trained_on = run_config["dataset"] if run_config else None
    if dataset and trained_on and dataset != trained_on:
        raise ValueError(f"data set '{dataset}' differs from the supernet's data set '{trained_on}'")
    return trained_on or dataset or "cifar10"


class ObjectiveContext:
    """What objectives may draw on: space, data set (default: the supernet's, else cifar10), supernet run,
    tables (each loaded once, lazily)."""

    def __init__(self, space: str | SearchSpace | None = None, dataset: str | None = None, supernet: str | None = None,
                 truth: str | Any | None = None, hwnasbench: str | Any | None = None,
                 device_tables: Sequence[str] = (), data: str | None = None, proxy_settings: Any = None,
                 net_config: dict | None = None, progress: bool = True, cache: str | None = None,
                 measure_settings: Any = None, lut: str | None = None, agent_token: str | None = None,
                 latency_cache: str | None = None):
        run_config = None
        if supernet is not None:
            from supernet.trainer import load_run_config

            run_config = load_run_config(supernet)
        if space is None:
            space = space_from_config(run_config) if run_config else "nb201"
        self.space = get_space(space) if isinstance(space, str) else space
        if run_config and (run_config["space"], run_config.get("space_options") or {}) != (self.space.name,
                                                                                          self.space.options):
            raise ValueError(f"supernet '{supernet}' was trained on space '{run_config['space']}' with options "
                             f"{run_config.get('space_options') or {}}; this asks '{self.space.name}' with options "
                             f"{self.space.options}")
        self.dataset = _dataset_of(run_config, dataset)
        self.supernet_path = supernet
        self._truth_src, self._hw_src = truth, hwnasbench
        self.data, self.proxy_settings, self.progress, self.cache_path = data, proxy_settings, progress, cache
        self.net_config = net_config or {"channels": 16, "cells": 5}
        self.measure_settings, self.lut_path = measure_settings, lut
        self.agent_token_file, self.latency_cache = agent_token, latency_cache
        from benchmarks.device_table import DeviceTable

        self.device_tables = {}
        for path in device_tables:
            t = DeviceTable.from_csv(path)
            self.device_tables[t.name] = t

    @cached_property
    def evaluator(self):
        if self.supernet_path is None:
            raise ValueError("objective 'proxy_err' needs a trained supernet (--supernet runs/NAME)")
        from supernet.evaluate import ProxyEvaluator

        return ProxyEvaluator(self.supernet_path, self.proxy_settings, data=self.data, progress=self.progress,
                              cache=self.cache_path)

    @cached_property
    def truth(self):
        from benchmarks.nb201_truth import NB201Truth

        if self._truth_src is not None and not isinstance(self._truth_src, (str, Path)):
            return self._truth_src
        return NB201Truth.load(self._truth_src)

    @cached_property
    def hwnasbench(self):
        from benchmarks.hwnasbench import HWNASBench

        if self._hw_src is not None and not isinstance(self._hw_src, (str, Path)):
            return self._hw_src
        return HWNASBench.load(self._hw_src)

    @property
    def num_classes(self) -> int:
        return {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}.get(self.dataset, 10)

    @property
    def net(self) -> dict:
        """Options that build a standalone subnet of this context (channels, cells, classes)."""
        return {**self.net_config, "num_classes": self.num_classes}

    def _strs(self, archs: Sequence[Arch]) -> list[str]:
        return [self.space.to_str(a) for a in archs]

    @property
    def benchmarked(self) -> bool:
        """True when the space is the one NAS-Bench-201 / HW-NAS-Bench tabulate (ground truth, device tables)."""
        return self.space.name == "nb201"

    def hw_devices(self) -> list[str]:
        """HW-NAS-Bench devices with at least one metric for this data set (none outside NB201)."""
        from benchmarks.hwnasbench import HW_DEVICES

        if not self.benchmarked:
            return []
        try:
            metrics = self.hwnasbench.metrics(self.dataset)
        except (FileNotFoundError, ValueError):
            return []
        return [d for d in HW_DEVICES if any(m.startswith(f"{d}_") for m in metrics)]


COUNTERS = {"params": "M", "flops": "M", "size_mb": "MB", "size_int8_mb": "MB", "peak_mem_mb": "MB"}


def _counter(ctx: ObjectiveContext, which: str) -> Callable[[list[Arch]], np.ndarray]:
    from hardware import counters

    from .measured import input_shape

    shape = input_shape(ctx.dataset)
    count = {"params": counters.params_m, "size_mb": counters.size_mb, "size_int8_mb": counters.size_int8_mb,
             "flops": lambda m: counters.flops_m(m, shape),
             "peak_mem_mb": lambda m: counters.peak_activation_mb(m, shape)}[which]

    def fn(archs):
        return np.array([count(ctx.space.build_subnet(a, **ctx.net)) for a in archs])
    return fn


def _measured(name: str, ctx: ObjectiveContext) -> Objective | None:
    """The measured-latency objectives (`measured_latency:<target>`, `remote_latency:<url>`,
    `lut_latency`), or None if `name` is none of them."""
    from . import measured

    settings = ctx.measure_settings or measured.MeasureSettings()
    kind, sep, where = name.partition(":")
    if kind == "measured_latency" and sep:
        from hardware.measure import check_target

        check_target(where)
        fn = measured.local_latency(ctx.space, where, ctx.net, ctx.dataset, settings, ctx.latency_cache, ctx.progress)
        return Objective(name, "ms", fn, f"measured on this machine ({where})", 2, ctx.space)
    if kind == "remote_latency" and sep:
        from hardware.remote import read_token

        if not where.startswith(("http://", "https://")):
            raise ValueError(f"bad agent URL '{where}' in '{name}'; expected remote_latency:http://HOST:PORT")
        fn = measured.remote_latency(ctx.space, where, read_token(ctx.agent_token_file), ctx.net, ctx.dataset,
                                     settings, ctx.latency_cache, ctx.progress)
        return Objective(name, "ms", fn, f"measured by the agent at {where}", 2, ctx.space)
    if name == "lut_latency":
        if ctx.lut_path is None:
            raise ValueError("objective 'lut_latency' needs a lookup table (--lut FILE, from `hwnas lut build`)")
        return Objective(name, "ms", measured.lut_latency(ctx.space, ctx.lut_path, ctx.net),
                         f"lookup table {ctx.lut_path}", 0, ctx.space)
    if kind in ("measured_latency", "remote_latency"):
        raise ValueError(f"objective '{name}' needs a target: {kind}:<target>, e.g. measured_latency:cpu "
                         f"or remote_latency:http://HOST:PORT")
    return None


def get_objective(name: str, ctx: ObjectiveContext) -> Objective:
    """Build the objective called `name` in `ctx`; ValueError naming the valid ones otherwise."""
    from benchmarks.hwnasbench import HW_DEVICES, HW_METRICS

    space = ctx.space
    if name == "proxy_err":
        return Objective(name, "%", lambda a: ctx.evaluator.error(a), f"supernet {ctx.supernet_path}", 2, space)
    if not ctx.benchmarked and (name == "true_err" or name.partition("_")[0] in HW_DEVICES):
        raise ValueError(f"objective '{name}' comes from NAS-Bench-201 / HW-NAS-Bench tables, which cover the "
                         f"nb201 space only; for space '{space.name}' use: {', '.join(list_objectives(ctx))}")
    if name == "true_err":
        return Objective(name, "%", lambda a: ctx.truth.error(ctx._strs(a), ctx.dataset),
                         f"NAS-Bench-201 {ctx.dataset} (200 epochs)", 0, space)
    if name in COUNTERS:
        return Objective(name, COUNTERS[name], _counter(ctx, name), "counted on the standalone network", 1, space)
    measured = _measured(name, ctx)
    if measured is not None:
        return measured
    device, _, metric = name.partition("_")
    if device in HW_DEVICES and metric in HW_METRICS.get(device, ()):
        key = f"{device}_{metric}"
        ctx.hwnasbench.metrics(ctx.dataset)  # raises for an unknown data set
        return Objective(name, HW_UNITS[metric], lambda a: ctx.hwnasbench.lookup(ctx._strs(a), key, ctx.dataset),
                         f"HW-NAS-Bench {ctx.dataset}", 0, space)
    for tname, table in ctx.device_tables.items():
        if name.startswith(f"{tname}_") and name[len(tname) + 1:] in table.metrics():
            col = name[len(tname) + 1:]
            return Objective(name, "", lambda a, t=table, c=col: t.lookup(ctx._strs(a), c),
                             f"device table {tname}", 0, space)
    raise ValueError(f"unknown objective '{name}'; valid: {', '.join(list_objectives(ctx))}")


def list_objectives(ctx: ObjectiveContext) -> list[str]:
    """Objective names available in `ctx` (tables that cannot be loaded are left out)."""
    from benchmarks.hwnasbench import HW_METRICS
    from hardware.measure import TARGETS

    names = ["proxy_err", *(["true_err"] if ctx.benchmarked else []), *COUNTERS, *(f"measured_latency:{t}" for t in TARGETS),
             "remote_latency:<url>", "lut_latency"]
    for d in ctx.hw_devices():
        names += [f"{d}_{m}" for m in HW_METRICS[d]]
    for tname, table in ctx.device_tables.items():
        names += [f"{tname}_{m}" for m in table.metrics()]
    return names


def device_objective(device: str, ctx: ObjectiveContext) -> str:
    """The hardware objective a `--device` name stands for: HW-NAS-Bench latency, a user table's first
    metric column, or a measured latency named in full (`measured_latency:cpu`, `remote_latency:URL`,
    `lut_latency`)."""
    from benchmarks.hwnasbench import HW_DEVICES

    if device == "lut_latency" or device.startswith(("measured_latency:", "remote_latency:")):
        return device
    if device in HW_DEVICES:
        return f"{device}_latency"
    if device in ctx.device_tables:
        return f"{device}_{ctx.device_tables[device].metrics()[0]}"
    valid = list(HW_DEVICES) + list(ctx.device_tables)
    raise ValueError(f"unknown device '{device}'; valid: {', '.join(valid)}, measured_latency:<target>, "
                     f"remote_latency:<url>, lut_latency (or --device-table FILE.csv)")
