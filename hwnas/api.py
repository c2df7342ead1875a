"""The functions behind the `hwnas` facade that do more than re-export: they accept names where the layers below
want objects, and put the pieces together the way a user of the library expects."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from hwnas.core.errors import UsageError


# ------------------------------------------------------------------------------------------ training
def train(config=None, *, resume: bool = False, **options: Any) -> dict:
    """Train (or resume) a supernet: `train(TrainConfig(...))` or `train(epochs=12, channels=8, out=...)`.
    Returns the summary written to the run's result.json."""
    from hwnas.core.config import config_from_dict
    from hwnas.supernet.trainer import TrainConfig, train as _train

    if config is None:
        config = config_from_dict(TrainConfig, options, "train()")
    elif options:
        config = dataclasses.replace(config, **options)
    return _train(config, resume=resume)


@dataclass
class Supernet:
    """A trained supernet: its run folder, space, model (eval mode) and training config."""

    run: Path
    space: Any
    model: Any
    config: dict

    def proxy(self, settings=None, data: str | None = None, device: str = "cpu", cache: str | None = None):
        """The proxy evaluator of this supernet (held-out accuracy of subnets with inherited weights)."""
        from hwnas.supernet.evaluate import ProxyEvaluator

        return ProxyEvaluator(self.run, settings, cache=cache, data=data, device=device, progress=False)


def load_supernet(run: str | Path, device: str = "cpu") -> Supernet:
    """The supernet in a run folder (or checkpoint file) written by `train`."""
    from hwnas.supernet.trainer import load_supernet as _load

    space, model, config = _load(run, device=device)
    run = Path(run)
    return Supernet(run if run.is_dir() else run.parent, space, model, config)


# ------------------------------------------------------------------------------------------ search
def search(space, objectives: Sequence, algorithm="nsga2", *, sources=None, bounds: Sequence = (), **options):
    """Search `space` (a name or a SearchSpace) for archs optimising `objectives` (names, built from `sources`,
    or Objective objects); `algorithm` is a registered name or a pymoo Algorithm. `bounds` are
    "OBJECTIVE=LIMIT" strings or `Bound`s. Other options go to `hwnas.evolve.search.search` (pop_size,
    generations, seed, progress, ...). Returns a Front."""
    from hwnas.evolve.objectives import get_objective
    from hwnas.evolve.search import Bound, parse_bounds, search as _search
    from hwnas.evolve.sources import Sources

    sources = sources or Sources(space=space)
    name = space if isinstance(space, str) else space.name
    if sources.space.name != name:
        raise UsageError(f"search over space '{name}' with sources of space '{sources.space.name}'")
    space = sources.space
    objs = [get_objective(o, sources) if isinstance(o, str) else o for o in objectives]
    parsed = [b if isinstance(b, Bound) else parse_bounds([b])[0] for b in bounds]
    return _search(space, objs, algorithm=algorithm, bounds=parsed, **options)


def search_fronts(supernet: str | Path | Supernet | None = None, targets: Sequence[str] = (), *,
                  oracle: bool = False, out: str | Path | None = None, sources=None, **options: Any) -> dict:
    """A Pareto front per target: {target: Front}. `supernet` is a run folder (or `load_supernet`'s result);
    `oracle=True` searches with NAS-Bench-201 ground truth instead. `targets` defaults to every HW-NAS-Bench
    device with data. Other options are `SearchConfig` fields (pop_size, generations, seed, eval_images,
    calib_batches, bn_mode, dataset, objectives, bounds, ...; flat names as in `hwnas search`). With `out`,
    the fronts, config.yaml and search.log are written into that search folder (`overwrite=True` to reuse
    one). Proxy scores are cached once for all targets. Ready-made `sources` (tables loaded once, a proxy with
    its own settings) are drawn on instead of the ones the options describe: then the options that describe
    sources (supernet's proxy settings, tables, timing) do not apply."""
    from hwnas.core.config import config_from_flat
    from hwnas.evolve.explore import SearchConfig, run_search, search_fronts as _search_fronts

    if isinstance(supernet, Supernet):
        supernet = supernet.run
    values = {"supernet": None if supernet is None else str(supernet), "oracle": oracle, "targets": list(targets),
              "all_targets": not targets and not options.get("objectives"), "progress": False,
              **({"out": str(out)} if out is not None else {}), **options}
    cfg = config_from_flat(SearchConfig, values, "search_fronts()")
    return run_search(cfg, sources) if out is not None else _search_fronts(cfg, sources)


def exact_front(target: str, sources=None, **resources: Any) -> pd.DataFrame:
    """The exact (true error, hardware cost) front of a target over the whole NAS-Bench-201 space: a DataFrame
    with arch_str, true_err_pct and the target's hardware column."""
    from hwnas.evolve.explore import exact_front as _exact
    from hwnas.evolve.sources import Sources

    sources = sources or Sources(**resources)
    return _exact(sources, sources.target_objective(target))


# ------------------------------------------------------------------------------------------ ground truth
def load_truth(path: str | Path | None = None):
    """NAS-Bench-201 ground truth (`NB201Truth`): `path` or `$HWNAS_DATA/nb201_accuracy.csv`."""
    from hwnas.benchmarks.tables.nb201_truth import NB201Truth

    return NB201Truth.load(path)


def load_hwnasbench(path: str | Path | None = None):
    """HW-NAS-Bench (`HWNASBench`): `path` or `$HWNAS_DATA/HW-NAS-Bench-v1_0.pickle`."""
    from hwnas.benchmarks.tables.hwnasbench import HWNASBench

    return HWNASBench.load(path)


def canonical_sample(k: int | None, space: str = "nb201", seed: int = 0) -> list:
    """`k` canonical archs of `space`, uniform over its isomorphism classes (all of them for k=None)."""
    from hwnas.evolve.ranking import sample_classes
    from hwnas.supernet.spaces import get_space

    return sample_classes(get_space(space), k, seed)


# ------------------------------------------------------------------------------------------ hardware
def measure(arch, *, space: str = "nb201", target: str = "cpu", channels: int = 16, cells: int = 5,
            dataset: str = "cifar10", batch_size: int = 1, warmup: int = 10, repeats: int = 50,
            threads: int | None = 1, space_options: dict | None = None) -> dict:
    """Time one subnet (an arch string or tuple of `space`, or an `nn.Module`) on `target` and count it, as
    `hwnas measure --json` does: {"timing", "device", "params_m", "flops_m", "size_mb", "size_int8_mb",
    "peak_mem_mb"} (times in ms)."""
    import torch.nn as nn

    from hwnas.core.datasets import dataset_info
    from hwnas.hardware import counters
    from hwnas.hardware.measure import describe_target, measure as _measure
    from hwnas.supernet.spaces import get_space

    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")
    info = dataset_info(dataset)
    shape = info.input_shape(batch_size)
    if isinstance(arch, nn.Module):
        model, name = arch, type(arch).__name__
    else:
        sp = get_space(space, **(space_options or {}))
        a = sp.parse(arch)
        model = sp.build_subnet(a, channels=channels, cells=cells, num_classes=info.num_classes)
        name = sp.to_str(a)
    timing = _measure(model, target, shape, warmup=warmup, repeats=repeats, threads=threads)
    return {"arch": name, "timing": timing.to_dict(), "device": describe_target(target, threads),
            **counters.count_all(model, shape)}


__all__ = ["Supernet", "canonical_sample", "exact_front", "load_hwnasbench", "load_supernet", "load_truth",
           "measure", "search", "search_fronts", "train"]
