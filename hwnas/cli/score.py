"""`hwnas score`: score canonical archs with accuracy predictors (the supernet proxy, zero-cost signals,
ensembles, a ranker), each through its cache, into one CSV; `--all` scores the whole NB201 space (6,466
canonical cells), resumable: an interrupted run keeps what it scored and the next one continues."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from hwnas.core.errors import UsageError

from .options import add_config_options, config_from_args

#: the SearchConfig fields that decide what a score is computed from
_KEYS = ("supernet", "labels", "bn_mode", "calib_batches", "calib_batch_size", "eval_images", "eval_batch_size",
         "calib_seed", "zc_channels", "zc_cells", "zc_batch_size", "zc_batches", "zc_seed", "dataset", "data",
         "truth", "device")


def _configure(p: argparse.ArgumentParser) -> None:
    from hwnas.evolve.explore import SearchConfig

    p.set_defaults(_keys=add_config_options(p, SearchConfig, only=_KEYS))
    p.add_argument("--objectives", nargs="+", default=None, metavar="OBJECTIVE",
                   help="what to score (default: the default proxy and each of its members; without --supernet, "
                        "its zero-cost part)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every canonical arch of the space (NB201: 6,466)")
    which.add_argument("--sample", type=int, default=None, metavar="K",
                       help="K canonical archs, uniform over the isomorphism classes (seed 0)")
    p.add_argument("--space", default="nb201", help="search space without --supernet (default nb201)")
    p.add_argument("--out", default=None, help="CSV to write (default: scores/<supernet name or zero_cost>.csv)")


def cmd_score(args: argparse.Namespace) -> int:
    from hwnas.core.files import atomic_write_text
    from hwnas.evolve.explore import SearchConfig
    from hwnas.evolve.objectives import get_objective
    from hwnas.evolve.objectives.ensemble import DEFAULT_PROXY, members_of, without_supernet
    from hwnas.evolve.ranking import sample_classes
    from hwnas.evolve.sources import Sources

    cfg = config_from_args(SearchConfig, args, args._keys, progress=not args.quiet)
    if args.sample is not None and args.sample < 1:
        raise UsageError(f"--sample must be >= 1, got {args.sample}")
    sources = Sources(space=None if cfg.supernet else args.space, dataset=cfg.dataset, supernet=cfg.supernet,
                      proxy_settings=cfg.proxy, truth=cfg.truth, data=cfg.data, device=cfg.device,
                      zero_cost=cfg.zero_cost, labels=cfg.labels, progress=cfg.progress)
    default = DEFAULT_PROXY if cfg.supernet else without_supernet(DEFAULT_PROXY)
    names = args.objectives or [*members_of(default), default]
    objectives = [get_objective(n, sources) for n in names]  # every name checked before anything is scored
    space = sources.space
    if not hasattr(space, "canonical_archs"):
        raise UsageError(f"space '{space.name}' does not enumerate its archs; hwnas score covers nb201")
    archs = sample_classes(space, None if args.all else args.sample, seed=0)
    out = Path(args.out or Path("scores") / f"{Path(cfg.supernet).name if cfg.supernet else 'zero_cost'}.csv")
    print(f"scoring {len(archs)} canonical archs of {space.name} with {', '.join(names)}", flush=True)
    columns, lines = {"arch_str": [space.to_str(a) for a in archs]}, []
    for obj in objectives:
        t0 = time.perf_counter()
        columns[obj.column] = obj(archs)
        spent = _cost_seconds(obj, archs)
        lines.append(f"  {obj.name}: {time.perf_counter() - t0:.0f} s now"
                     + (f", {spent / 60:.1f} min for all of them when computed" if spent is not None else ""))
    import pandas as pd

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, pd.DataFrame(columns).to_csv(index=False))
    print("\n".join(lines))
    print(f"wrote {out} ({len(archs)} archs x {len(objectives)} scores)")
    return 0


def _cost_seconds(objective, archs) -> float | None:
    """What an objective's cached scores of `archs` cost when they were computed (None if it keeps no count)."""
    owner = getattr(objective.fn, "__self__", objective.fn)
    if hasattr(owner, "accuracy"):  # a ProxyEvaluator (counts per arch)
        return owner.compute_seconds(archs)
    if hasattr(owner, "compute_seconds"):  # a zero-cost scorer (counts per canonical arch string)
        space = objective.space
        return owner.compute_seconds([space.to_str(space.canonical(a)) for a in archs])
    return None


def register(commands) -> None:
    commands.add("score", "score canonical archs (--all: the whole NB201 space) with the proxy, zero-cost signals "
                 "and ensembles, through their caches, into one CSV", cmd_score, _configure)
