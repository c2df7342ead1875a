"""`hwnas search` (fronts per target into a search folder), `hwnas plot` (saved fronts) and `hwnas quickstart`
(the main job: a small supernet and a front for every HW-NAS-Bench device, settings from a shipped recipe)."""
from __future__ import annotations

import argparse
import logging
import time
from importlib import resources
from pathlib import Path

from hwnas.core.errors import UsageError

from .common import add_config_flag
from .options import add_config_options, config_from_args, load_yaml, option_types

log = logging.getLogger("hwnas.cli")


# ------------------------------------------------------------------------------------------- search
def _configure_search(p: argparse.ArgumentParser) -> None:
    from hwnas.evolve.explore import SearchConfig

    add_config_flag(p)
    p.set_defaults(_keys=add_config_options(p, SearchConfig), _types=option_types(SearchConfig))


def _print_fronts(fronts: dict, sources, out: str) -> None:
    from hwnas.evolve.explore import file_stem, format_table, summary_table

    print(format_table(summary_table(fronts)))
    stems = ", ".join(file_stem(t) for t in fronts)
    print(f"fronts ({stems}: .csv .parquet .json .png), config.yaml and search.log in {out}")
    if sources.supernet:
        ev = sources.get("proxy")
        print(f"proxy cache: {ev.hits} hits, {ev.misses} evaluations ({ev.seconds:.0f} s) in {ev.cache.path}")


def cmd_search(args: argparse.Namespace) -> int:
    from hwnas.evolve.explore import SearchConfig, run_search, sources_for

    cfg = config_from_args(SearchConfig, args, args._keys, progress=not args.quiet)
    cfg.validate()
    sources = sources_for(cfg)
    try:
        fronts = run_search(cfg, sources)
        _print_fronts(fronts, sources, cfg.out or cfg.default_out())
    finally:
        sources.close()
    return 0


# --------------------------------------------------------------------------------------------- plot
def _configure_plot(p: argparse.ArgumentParser) -> None:
    p.add_argument("fronts", nargs="+", help="front files (.json, .csv or .parquet) written by hwnas search")
    p.add_argument("--x", default=None, help="x column (default: the second objective)")
    p.add_argument("--y", default=None, help="y column (default: the first objective)")
    p.add_argument("--generations", action="store_true", help="draw the front per generation (one file)")
    p.add_argument("--out", default=None, help="PNG path (default: beside the first front, *_plot.png)")


def cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib.pyplot as plt

    from hwnas.evolve import plot
    from hwnas.evolve.front import Front

    fronts = {Path(f).stem: Front.load(f) for f in args.fronts}
    first = next(iter(fronts.values()))
    y = args.y or first.objectives[0]
    for name, fr in fronts.items():
        for col in filter(None, [args.x, y]):
            if col not in fr.table:
                raise UsageError(f"front '{name}' has no column '{col}'; columns: {', '.join(fr.table.columns)}")
    out = Path(args.out) if args.out else Path(args.fronts[0]).with_name(Path(args.fronts[0]).stem + "_plot.png")
    if args.generations:
        fig = plot.plot_generations(first, args.x or first.objectives[1], y, path=out)
    elif len(fronts) == 1:
        fig = plot.plot_front_2d(first, args.x or first.objectives[1], y, path=out)
    else:
        fig = plot.plot_grid(fronts, y, x_of=(lambda f: args.x) if args.x else None, path=out)
    plt.close(fig)
    print(f"wrote {out}")
    return 0


# --------------------------------------------------------------------------------------- quickstart
RECIPE = "quickstart.yaml"
_TRAIN_KEYS = ("mode", "channels", "cells", "max_images", "epochs", "batch_size", "lr", "weight_decay",
               "held_out_images", "seed", "dataset", "data", "device", "out")
_SEARCH_KEYS = ("pop_size", "generations", "algorithm", "accuracy", "bn_mode", "calib_batches", "calib_batch_size", "eval_images",
                "eval_batch_size", "calib_seed", "truth", "hwnasbench")


def quickstart_recipe() -> dict:
    """The main job's settings, shipped with hwnas as `hwnas/recipes/quickstart.yaml`."""
    with resources.as_file(resources.files("hwnas") / "recipes" / RECIPE) as path:
        return load_yaml(str(path))


def _configure_quickstart(p: argparse.ArgumentParser) -> None:
    from hwnas.evolve.explore import SearchConfig
    from hwnas.supernet.trainer import TrainConfig

    recipe = quickstart_recipe()
    add_config_flag(p)
    train_keys = add_config_options(p, TrainConfig, only=_TRAIN_KEYS, defaults=recipe)
    search_keys = add_config_options(p, SearchConfig, only=_SEARCH_KEYS, defaults=recipe)
    p.add_argument("--fronts", default=recipe.get("fronts", "fronts/quickstart"),
                   help="folder for the fronts, plots, summary and log (rewritten on every run)")
    p.set_defaults(_train_keys=train_keys, _search_keys=search_keys,
                   _types=option_types(TrainConfig, SearchConfig))


def cmd_quickstart(args: argparse.Namespace) -> int:
    import matplotlib.pyplot as plt

    from hwnas.core.files import atomic_write_text
    from hwnas.core.logs import log_to_file
    from hwnas.evolve import plot
    from hwnas.evolve.explore import (SearchConfig, exact_front, format_table, open_search_folder, save_front,
                                      search_target, sources_for, summary_table)
    from hwnas.supernet.checkpoint import load_checkpoint
    from hwnas.supernet.trainer import CHECKPOINT, TrainConfig, train

    t0 = time.perf_counter()
    progress = not args.quiet
    tcfg = config_from_args(TrainConfig, args, args._train_keys, progress=progress)
    ckpt = Path(tcfg.out) / CHECKPOINT
    done = ckpt.exists() and load_checkpoint(ckpt)["epoch"] + 1 >= tcfg.total_epochs()
    print(f"[1/3] supernet: {tcfg.mode.upper()}, C={tcfg.channels}, N={tcfg.cells}, {tcfg.max_images} images, "
          f"{tcfg.epochs} epochs -> {tcfg.out}" + (" (already trained, reused)" if done else ""), flush=True)
    if not done:
        result = train(tcfg, resume=ckpt.exists())
        print(f"      held-out accuracy over a panel of paths: {result['val_acc']:.1f}%", flush=True)
    scfg = config_from_args(SearchConfig, args, args._search_keys, progress=progress, supernet=tcfg.out,
                            seed=tcfg.seed, dataset=tcfg.dataset, data=tcfg.data, device=tcfg.device,
                            all_targets=True, out=args.fronts)
    sources = sources_for(scfg)
    devices = sources.hw_devices()
    if not devices:
        raise FileNotFoundError("no HW-NAS-Bench data found; get it with `hwnas data download` (or `hwnas data "
                                "prepare --from MIRROR` offline), or pass --hwnasbench FILE")
    out = open_search_folder(args.fronts, overwrite=True)
    print(f"[2/3] NSGA-II fronts (population {scfg.pop_size}, {scfg.generations} generations) for "
          f"{len(devices)} devices: {', '.join(devices)}", flush=True)
    proxy, oracle = {}, {}
    with log_to_file(out / "quickstart.log"):
        for dev in devices:
            proxy[dev] = search_target(sources, dev, pop_size=scfg.pop_size, generations=scfg.generations,
                                       seed=scfg.seed, algorithm=scfg.algorithm, progress=progress,
                                       accuracy=scfg.accuracy)
            oracle[dev] = search_target(sources, dev, oracle=True, pop_size=scfg.pop_size,
                                        generations=scfg.generations, seed=scfg.seed, algorithm=scfg.algorithm,
                                        progress=False)
            save_front(proxy[dev], out, sources)
            save_front(oracle[dev], out / "oracle", sources)
            ev = sources.get("proxy")
            print(f"      {dev}: {int(proxy[dev].table.is_pareto.sum())} Pareto archs; proxy cache "
                  f"{ev.hits} hits / {ev.misses} evaluations so far", flush=True)
        has_truth = "hv_ratio" in oracle[devices[0]].meta
        exact = {d: exact_front(sources, sources.target_objective(d)) for d in devices} if has_truth else None
        grid = out / "fronts.png"
        fig = plot.plot_grid(proxy, "true_err_pct" if has_truth else proxy[devices[0]].objectives[0], exact=exact,
                             path=grid)
        plt.close(fig)
        table = summary_table(proxy, oracle)
        atomic_write_text(out / "summary.csv", table.to_csv(index=False))
    print(f"[3/3] fronts and plots in {args.fronts}/ (per-device grid: {grid}); {time.perf_counter() - t0:.0f} s")
    print(format_table(table))
    print("hv_ratio: normalised hypervolume of the front (re-scored with NB201 ground truth) / that of the exact "
          "front from all 15,625 archs; 1.0 = exact. regret: accuracy points lost, averaged over 20 latency "
          "budgets, by deploying the front arch the search ranks best within a budget instead of the best arch "
          "of the whole space within it; 0 = none.")
    return 0


def register(commands) -> None:
    commands.add("quickstart", "train a small supernet and search a front for every device (the main job, offline; "
                 "settings from the shipped recipe hwnas/recipes/quickstart.yaml)", cmd_quickstart,
                 _configure_quickstart)
    commands.add("search", "search Pareto fronts (accuracy vs hardware) per target into a search folder", cmd_search,
                 _configure_search)
    commands.add("plot", "plot saved fronts", cmd_plot, _configure_plot)
