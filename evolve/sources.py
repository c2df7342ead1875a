"""`Sources`: what objectives are built from, each resource made once, on first use, and shared by every
objective and every target's search (one proxy evaluator and its cache for all devices, tables loaded once).

An objective declares the resources it needs by name (`hwnas.evolve.objectives.base`); `Sources.get(name)`
hands out:

  space          the search space (default: the supernet's, else nb201)
  dataset        the data set (default: the supernet's, else cifar10)
  net            {"channels", "cells", "num_classes"} of the standalone subnet that is counted and timed
  proxy          the supernet's `ProxyEvaluator` (needs `supernet`)
  truth          NAS-Bench-201 ground truth (`NB201Truth`; default file in the data root)
  hwnasbench     HW-NAS-Bench tables (`HWNASBench`; default file in the data root)
  device_tables  {name: DeviceTable} from the user's CSVs
  measure        `MeasureSettings` for timing; latency_cache: its SQLite file (None: the default)
  lut_path       a per-block lookup table file; agent_token: the remote agent's token
  zero_cost      the zero-cost signals' scorers (`ZeroCostSuite`: settings, batches, cache)
  objective      a function building another objective by name from these sources (for composites)
  reference_archs  the fixed sample of canonical archs a label-free ensemble ranks against
  labels         the user's labelled archs (`--labels FILE.csv`: arch_str,accuracy)
  ranker         a `FewLabelRanker` fitted on those labels (features: `ranker_features`, default the
                 zero-cost signals and path features, plus proxy_err with a supernet)
  progress       whether long work shows progress bars

Anything can also be handed in ready-made (`Sources(truth=my_table)`, `with_resources(proxy=evaluator)`).
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

from hwnas.core.datasets import dataset_info
from hwnas.core.errors import UsageError
from hwnas.supernet.spaces import SearchSpace, get_space, space_from_config


def _dataset_of(run_config: dict | None, dataset: str | None) -> str:
    """The data set to work on: the supernet's (from its run's config.json), else `dataset`, else cifar10;
    UsageError when both are given and differ."""
    trained_on = run_config["dataset"] if run_config else None
    if dataset and trained_on and dataset != trained_on:
        raise UsageError(f"data set '{dataset}' differs from the supernet's data set '{trained_on}'")
    return trained_on or dataset or "cifar10"


class Sources:
    """The resources objectives draw on (see the module docstring); every argument is optional."""

    def __init__(self, space: str | SearchSpace | None = None, dataset: str | None = None, supernet: str | None = None,
                 proxy_settings: Any = None, truth: Any = None, hwnasbench: Any = None,
                 device_tables: Sequence[Any] = (), data: str | None = None, device: str = "cpu",
                 net: dict | None = None, measure: Any = None, latency_cache: str | None = None,
                 lut: str | None = None, agent_token_file: str | None = None, proxy_cache: str | None = None,
                 zero_cost: Any = None, zero_cost_cache: str | None = None, labels: str | None = None,
                 ranker_features: Sequence[str] | None = None, progress: bool = True, workers: str | None = None):
        from hwnas.core.workers import check_workers

        self.workers_spec = check_workers(workers)
        run_config = None
        if supernet is not None:
            from hwnas.supernet.trainer import load_run_config

            run_config = load_run_config(supernet)
        if space is None:
            space = space_from_config(run_config) if run_config else "nb201"
        self.space = get_space(space) if isinstance(space, str) else space
        if run_config and (run_config["space"], run_config.get("space_options") or {}) != (self.space.name,
                                                                                          self.space.options):
            raise UsageError(f"supernet '{supernet}' was trained on space '{run_config['space']}' with options "
                             f"{run_config.get('space_options') or {}}; this asks '{self.space.name}' with options "
                             f"{self.space.options}")
        self.dataset = _dataset_of(run_config, dataset)
        dataset_info(self.dataset)
        self.supernet, self.proxy_settings, self.data, self.device = supernet, proxy_settings, data, device
        self.proxy_cache, self.progress = proxy_cache, progress
        self._truth_src, self._hw_src = truth, hwnasbench
        self.net_config = net or {"channels": 16, "cells": 5}
        self.measure_settings, self.latency_cache, self.lut = measure, latency_cache, lut
        self.agent_token_file = agent_token_file
        self.zero_cost_settings, self.zero_cost_cache = zero_cost, zero_cost_cache
        self._device_table_srcs = list(device_tables)
        self.labels_path, self.ranker_features = labels, list(ranker_features) if ranker_features else None
        self._given: dict[str, Any] = {}

    def with_resources(self, **resources: Any) -> "Sources":
        """These sources with some resources handed in ready-made (e.g. `proxy=evaluator`, `truth=table`)."""
        import copy

        other = copy.copy(self)
        other._given = {**self._given, **resources}
        other.__dict__.pop("_objectives", None)  # objectives built from the old resources are not these ones
        return other

    def get(self, name: str, for_objective: str | None = None) -> Any:
        """The resource called `name`; UsageError (naming `for_objective`) when it cannot be provided."""
        if name in self._given:
            return self._given[name]
        if name not in _RESOURCES:
            raise UsageError(f"unknown resource '{name}'; valid: {', '.join(_RESOURCES)}")
        try:
            return getattr(self, _RESOURCES[name])
        except UsageError as exc:
            if for_objective is None:
                raise
            raise UsageError(f"objective '{for_objective}': {exc}") from None

    # ------------------------------------------------------------------------------ resources
    @property
    def net(self) -> dict:
        """Options that build a standalone subnet: channels, cells, classes."""
        return {**self.net_config, "num_classes": dataset_info(self.dataset).num_classes}

    @cached_property
    def proxy(self):
        if self.supernet is None:
            raise UsageError("needs a trained supernet (--supernet runs/NAME)")
        from hwnas.supernet.evaluate import ProxyEvaluator

        return ProxyEvaluator(self.supernet, self.proxy_settings, data=self.data, device=self.device,
                              progress=self.progress, cache=self.proxy_cache, workers=self.workers)

    @cached_property
    def workers(self):
        """The Dask workers the proxy scores on (`--workers`), or None to score here."""
        from hwnas.core.workers import Workers

        return Workers(self.workers_spec) if self.workers_spec else None

    def close(self) -> None:
        """Shut down what these sources started (a `local:N` Dask cluster)."""
        if self.__dict__.get("workers") is not None:
            self.__dict__["workers"].close()

    @cached_property
    def truth(self):
        from hwnas.benchmarks.tables.nb201_truth import NB201Truth

        if self._truth_src is not None and not isinstance(self._truth_src, (str, Path)):
            return self._truth_src
        return NB201Truth.load(self._truth_src)

    @cached_property
    def hwnasbench(self):
        from hwnas.benchmarks.tables.hwnasbench import HWNASBench

        if self._hw_src is not None and not isinstance(self._hw_src, (str, Path)):
            return self._hw_src
        return HWNASBench.load(self._hw_src)

    @cached_property
    def device_tables(self) -> dict:
        from hwnas.benchmarks.tables.device_table import DeviceTable

        tables = {}
        for src in self._device_table_srcs:
            table = src if isinstance(src, DeviceTable) else DeviceTable.from_csv(src)
            tables[table.name] = table
        return tables

    @property
    def measure(self):
        from .objectives.measured import MeasureSettings

        return self.measure_settings or MeasureSettings()

    @property
    def lut_path(self) -> str:
        if self.lut is None:
            raise UsageError("needs a lookup table (--lut FILE, from `hwnas lut build`)")
        return self.lut

    @cached_property
    def agent_token(self) -> str:
        from hwnas.hardware.tokens import read_token

        return read_token(self.agent_token_file)

    @cached_property
    def zero_cost(self) -> "ZeroCostSuite":
        return ZeroCostSuite(self)

    @property
    def objective(self):
        from .objectives import get_objective

        def build(name: str):
            if name not in self._objectives:
                self._objectives[name] = get_objective(name, self)
            return self._objectives[name]
        return build

    @cached_property
    def _objectives(self) -> dict:
        return {}

    @cached_property
    def reference_archs(self) -> list:
        """REFERENCE_SIZE canonical archs, uniform over the isomorphism classes where the space enumerates them
        (NB201), else uniform over encodings; seed 0, so every search ranks against the same sample."""
        import numpy as np

        from .ranking import sample_classes

        if hasattr(self.space, "canonical_archs"):
            return sample_classes(self.space, REFERENCE_SIZE, seed=0)
        rng = np.random.default_rng(0)
        return list(dict.fromkeys(self.space.canonical(self.space.sample(rng)) for _ in range(REFERENCE_SIZE)))

    @cached_property
    def labels(self):
        from .ranker import read_labels

        if self.labels_path is None:
            raise UsageError("needs labelled archs (--labels FILE.csv with columns arch_str,accuracy)")
        return read_labels(self.labels_path, self.space)

    @cached_property
    def ranker(self):
        from .ranker import FewLabelRanker, feature_names

        from .objectives.ensemble import DEFAULT_PROXY, without_supernet

        names = self.ranker_features or feature_names(self.supernet is not None)
        features = [self.objective(n) for n in names]
        prior = self.objective(DEFAULT_PROXY if self.supernet is not None else without_supernet(DEFAULT_PROXY))
        return FewLabelRanker(self.space, features, prior=prior).fit(self.get("labels"))

    # ------------------------------------------------------------------------------ questions
    @property
    def benchmarked(self) -> bool:
        """True when the space is the one NAS-Bench-201 / HW-NAS-Bench tabulate (ground truth, device tables)."""
        return self.space.name == "nb201"

    def hw_devices(self) -> list[str]:
        """HW-NAS-Bench devices with at least one metric for this data set (none outside NB201)."""
        from hwnas.benchmarks.tables.hwnasbench import HW_DEVICES

        if not self.benchmarked:
            return []
        try:
            metrics = self.hwnasbench.metrics(self.dataset)
        except (FileNotFoundError, ValueError):
            return []
        return [d for d in HW_DEVICES if any(m.startswith(f"{d}_") for m in metrics)]

    def has_truth(self) -> bool:
        """Whether NAS-Bench-201 ground truth is available for this space and data set."""
        if not self.benchmarked:
            return False
        try:
            return self.dataset in self.truth.datasets()
        except (FileNotFoundError, ValueError):
            return False

    def target_objective(self, target: str) -> str:
        """The hardware objective a search target stands for: HW-NAS-Bench latency (`fpga`), a user table's
        first metric column (`jetson`), or a measured latency named in full (`measured_latency:cpu`,
        `remote_latency:URL`, `lut_latency`)."""
        from hwnas.benchmarks.tables.hwnasbench import HW_DEVICES

        if target == "lut_latency" or target.startswith(("measured_latency:", "remote_latency:")):
            return target
        if target in HW_DEVICES:
            return f"{target}_latency"
        if target in self.device_tables:
            return f"{target}_{self.device_tables[target].metrics()[0]}"
        valid = list(HW_DEVICES) + list(self.device_tables)
        raise UsageError(f"unknown target '{target}'; valid: {', '.join(valid)}, measured_latency:<target>, "
                         f"remote_latency:<url>, lut_latency (or --device-table FILE.csv)")


class ZeroCostSuite:
    """The zero-cost scorers of one `Sources`: one `ZeroCostScorer` per signal, sharing the batches (loaded on
    first use) and the cache."""

    def __init__(self, sources: "Sources"):
        from hwnas.supernet.zero_cost import ZeroCostSettings

        self.sources = sources
        self.settings = sources.zero_cost_settings or ZeroCostSettings()
        self._scorers: dict = {}

    @cached_property
    def batches(self):
        from hwnas.supernet.zero_cost import signal_batches

        return signal_batches(self.sources.dataset, self.settings, self.sources.data)

    def scorer(self, signal: str):
        """The cached scorer of `signal` (see `hwnas.supernet.zero_cost.SIGNALS`)."""
        if signal not in self._scorers:
            from hwnas.supernet.zero_cost import ZeroCostScorer

            s = self.sources
            self._scorers[signal] = ZeroCostScorer(signal, s.space, self.batches, dataset_info(s.dataset).num_classes,
                                                   self.settings, cache=s.zero_cost_cache, progress=s.progress,
                                                   dataset=s.dataset)
        return self._scorers[signal]


#: how many canonical archs the label-free ensemble ranks each member against
REFERENCE_SIZE = 128  # each costs a score of every member once; 128 keep percentiles to 1%

#: resource name -> the attribute of `Sources` that provides it
_RESOURCES = {"space": "space", "dataset": "dataset", "net": "net", "proxy": "proxy", "truth": "truth",
              "hwnasbench": "hwnasbench", "device_tables": "device_tables", "measure": "measure",
              "latency_cache": "latency_cache", "lut_path": "lut_path", "agent_token": "agent_token",
              "progress": "progress", "zero_cost": "zero_cost", "objective": "objective",
              "reference_archs": "reference_archs", "labels": "labels", "ranker": "ranker"}
