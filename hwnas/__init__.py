"""hwnas: hardware-aware neural architecture search. Train a weight-sharing supernet once, for accuracy only;
then, for any target device, search its subnets with NSGA-II against the supernet's proxy accuracy and that
device's hardware cost, and get the whole Pareto front back.

    import hwnas
    cfg = hwnas.TrainConfig(channels=8, cells=1, epochs=12, out="runs/spos")
    hwnas.train(cfg)
    fronts = hwnas.search_fronts(supernet="runs/spos", targets=["fpga", "raspi4"])
    fronts["fpga"].pick(max_fpga_latency_ms=3)

The names below are the public API; everything else is reached through them (or the `hwnas` command).
Imports are lazy, so `import hwnas.hardware.measure` on an edge device does not pull in the search.
"""
from __future__ import annotations

from importlib import import_module, metadata
from typing import TYPE_CHECKING, Any

try:
    __version__ = metadata.version("hwnas")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

#: public name -> "module:attribute"
_API = {
    "get_space": "hwnas.supernet.spaces:get_space",
    "list_spaces": "hwnas.supernet.spaces:list_spaces",
    "list_modes": "hwnas.supernet.modes:list_modes",
    "TrainConfig": "hwnas.supernet.trainer:TrainConfig",
    "RetrainConfig": "hwnas.supernet.retrain:RetrainConfig",
    "ProxySettings": "hwnas.supernet.evaluate:ProxySettings",
    "train": "hwnas.api:train",
    "trained_run": "hwnas.supernet.trainer:trained_run",
    "retrain": "hwnas.supernet.retrain:retrain",
    "load_supernet": "hwnas.api:load_supernet",
    "Supernet": "hwnas.api:Supernet",
    "Sources": "hwnas.evolve.sources:Sources",
    "get_objective": "hwnas.evolve.objectives:get_objective",
    "list_objectives": "hwnas.evolve.objectives:list_objectives",
    "register_objective": "hwnas.evolve.objectives:register_objective",
    "Cost": "hwnas.evolve.objectives:Cost",
    "Direction": "hwnas.evolve.objectives:Direction",
    "search": "hwnas.api:search",
    "search_fronts": "hwnas.api:search_fronts",
    "SearchConfig": "hwnas.evolve.explore:SearchConfig",
    "list_algorithms": "hwnas.evolve.search:list_algorithms",
    "Front": "hwnas.evolve.front:Front",
    "exact_front": "hwnas.api:exact_front",
    "summary_table": "hwnas.evolve.explore:summary_table",
    "hv_ratio": "hwnas.evolve.pareto:hv_ratio",
    "non_dominated_mask": "hwnas.evolve.pareto:non_dominated_mask",
    "ranking_metrics": "hwnas.evolve.ranking:ranking_metrics",
    "canonical_sample": "hwnas.api:canonical_sample",
    "measure": "hwnas.api:measure",
    "list_targets": "hwnas.hardware.measure:list_targets",
    "load_truth": "hwnas.api:load_truth",
    "load_hwnasbench": "hwnas.api:load_hwnasbench",
    "download_data": "hwnas.data:download_data",
    "prepare_data": "hwnas.data:prepare_data",
    "plot": "hwnas.evolve.plot",
}
__all__ = ["__version__", *_API]

if TYPE_CHECKING:  # for editors and type checkers; at run time the names load on first use  # noqa: F401
    from hwnas.api import (Supernet, canonical_sample, exact_front, load_hwnasbench, load_supernet, load_truth,
                           measure, search, search_fronts, train)
    from hwnas.data import download_data, prepare_data
    from hwnas.evolve import plot
    from hwnas.evolve.explore import SearchConfig, summary_table
    from hwnas.evolve.front import Front
    from hwnas.evolve.objectives import Cost, Direction, get_objective, list_objectives, register_objective
    from hwnas.evolve.pareto import hv_ratio, non_dominated_mask
    from hwnas.evolve.ranking import ranking_metrics
    from hwnas.evolve.search import list_algorithms
    from hwnas.evolve.sources import Sources
    from hwnas.hardware.measure import list_targets
    from hwnas.supernet.evaluate import ProxySettings
    from hwnas.supernet.modes import list_modes
    from hwnas.supernet.retrain import RetrainConfig, retrain
    from hwnas.supernet.spaces import get_space, list_spaces
    from hwnas.supernet.trainer import TrainConfig, trained_run


def __getattr__(name: str) -> Any:
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'hwnas' has no attribute '{name}'")
    module, _, attr = target.partition(":")
    value = import_module(module)
    value = getattr(value, attr) if attr else value
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
