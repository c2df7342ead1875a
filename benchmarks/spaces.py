"""CPU-scale fronts of the layer-wise spaces on this machine: for each space, a SPOS supernet trained with a
small CPU recipe, then NSGA-II over (proxy error, latency measured on this CPU), the whole front reported.

    python -m hwnas.benchmarks.spaces [--spaces mobilenet shufflenet resblock] [--runs runs/spaces]
                                [--pop-size 16 --generations 8] [--eval-images 500 --calib-batches 2]

Supernets are trained at C=8 on the NB201 search split (`RECIPES`: every space at its full default layout,
mobilenet and shufflenet with weight sharing inside a layer; a finished run in --runs is reused); each
supernet's held-out accuracy is reported for its training panel of random paths and for its smallest and
largest path (inherited weights, BN recalibrated);
latency is measured for the deploy-size network (C=16, batch 1, one thread, median of --repeats runs),
as `hwnas search --target measured_latency:cpu` does. Writes benchmarks/results/spaces.md (with the
exact command), spaces.png and one front CSV per space in benchmarks/results/spaces/.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from hwnas.core.files import atomic_write_text
from hwnas.evolve.objectives import get_objective
from hwnas.evolve.objectives.measured import MeasureSettings
from hwnas.evolve.search import search
from hwnas.evolve.sources import Sources
from hwnas.hardware import counters
from hwnas.supernet.evaluate import ProxySettings
from hwnas.supernet.trainer import TrainConfig, train

from .report import command, markdown_table

RESULTS = Path(__file__).parent / "results"
# CPU recipes (SPOS, C=8, batch 64), full default layouts. Before weight sharing inside a layer, a full-depth
# mobilenet supernet (one set of weights per block) reached 12% held-out accuracy after 30k images (chance 10%)
# and this benchmark had to cut mobilenet and shufflenet to 1-2 layers per stage; with sharing they run in full.
RECIPES = {
    "mobilenet": dict(max_images=25000, epochs=6),
    "shufflenet": dict(max_images=25000, epochs=6),
    "resblock": dict(max_images=25000, epochs=8),
}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m hwnas.benchmarks.spaces", description=__doc__.split("\n\n")[0])
    p.add_argument("--spaces", nargs="+", default=list(RECIPES), help=f"spaces ({', '.join(RECIPES)})")
    p.add_argument("--runs", default="runs/spaces", help="folder of the supernet runs (reused when finished)")
    p.add_argument("--data", default=None, help="data folder (default: $HWNAS_DATA)")
    p.add_argument("--pop-size", type=int, default=16)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--eval-images", type=int, default=500, help="held-out images per proxy evaluation")
    p.add_argument("--calib-batches", type=int, default=2, help="batches of 64 for BN recalibration")
    p.add_argument("--repeats", type=int, default=25, help="timed runs per latency measurement")
    p.add_argument("--out", default=str(RESULTS), help="folder for spaces.md / spaces.png / spaces/*.csv")
    args = p.parse_args(argv)
    bad = [s for s in args.spaces if s not in RECIPES]
    if bad:
        p.error(f"unknown space '{bad[0]}'; valid: {', '.join(RECIPES)}")
    return args


def supernet_for(space: str, args) -> tuple[Path, dict, float]:
    """(run folder, result, training seconds) of the space's CPU-recipe supernet, trained if not finished."""
    out = Path(args.runs) / space
    if not (out / "result.json").is_file():
        train(TrainConfig(space=space, mode="spos", channels=8, batch_size=64, held_out_images=500, out=str(out),
                          data=args.data, progress=False, **RECIPES[space]), resume=(out / "supernet.pt").is_file())
    metrics = pd.read_csv(out / "metrics.csv")
    return out, json.loads((out / "result.json").read_text()), float(metrics.seconds.sum())


def one_space(space: str, args) -> dict:
    run, result, train_s = supernet_for(space, args)
    settings = ProxySettings(eval_images=args.eval_images, calib_batches=args.calib_batches)
    ctx = Sources(supernet=str(run), data=args.data, proxy_settings=settings, progress=False,
                  measure=MeasureSettings(warmup=5, repeats=args.repeats, threads=1))
    objectives = [get_objective(n, ctx) for n in ("proxy_err", "measured_latency:cpu")]
    t0 = time.perf_counter()
    front = search(ctx.space, objectives, pop_size=args.pop_size, generations=args.generations, seed=0,
                   progress=True)
    search_s = time.perf_counter() - t0
    pareto = front.pareto().sort_values(front.objectives[1]).copy()
    nets = [ctx.space.build_subnet(ctx.space.from_str(a), **ctx.net) for a in pareto.arch_str]
    pareto["params_m"] = [counters.params_m(m) for m in nets]
    pareto["flops_m"] = [counters.flops_m(m, (1, 3, 32, 32)) for m in nets]
    ends = {"smallest": ctx.space.smallest_arch(), "largest": ctx.space.largest_arch()}
    ends_acc = {k: float(100 - objectives[0]([a])[0]) for k, a in ends.items()}
    return dict(space=ctx.space, run=run, result=result, train_s=train_s, search_s=search_s, front=front,
                pareto=pareto, net=ctx.net, evaluator=ctx.proxy, ends_acc=ends_acc)


def plot(results: list[dict], path: Path) -> Path:
    from matplotlib.figure import Figure

    from hwnas.evolve.plot import plot_front_2d, save_figure

    fig = Figure(figsize=(5 * len(results), 4))
    axes = fig.subplots(1, len(results), squeeze=False)
    for ax, r in zip(axes[0], results):
        x, y = r["front"].objectives[1], r["front"].objectives[0]
        plot_front_2d(r["front"], x, y, ax=ax, title=f"{r['space'].name}: NSGA-II, proxy vs CPU latency")
    fig.tight_layout()
    out = save_figure(fig, path)
    return out


#: the targets of the weight-sharing issue: panel accuracy of a full-depth supernet trained within the time limit
TARGET_PANEL_ACC, TARGET_TRAIN_MIN, TARGET_SPACES = 45.0, 45.0, ("mobilenet", "shufflenet")


def target_lines(summary: list[dict]) -> list[str]:
    """Per space with a target: its panel accuracy and training time against the targets, met or missed."""
    lines = []
    for row in summary:
        if row["space"] not in TARGET_SPACES:
            continue
        acc, minutes = row["panel acc %"], row["train min"]
        acc_verdict = "met" if acc >= TARGET_PANEL_ACC else f"missed by {TARGET_PANEL_ACC - acc:.1f} points"
        time_verdict = "met" if minutes <= TARGET_TRAIN_MIN else f"missed by {minutes - TARGET_TRAIN_MIN:.1f} min"
        lines.append(f"- Target for `{row['space']}` (full depth, C=8, 25k images): panel accuracy >= "
                     f"{TARGET_PANEL_ACC:.0f}% in <= {TARGET_TRAIN_MIN:.0f} min of training: measured {acc:.1f}% "
                     f"({acc_verdict}) in {minutes:.1f} min ({time_verdict}).")
    return lines


def report(results: list[dict], args, argv) -> str:
    lines = ["# Layer-wise spaces: CPU-scale fronts on this machine", "",
             f"Command: `{command('hwnas.benchmarks.spaces', argv)}`", "",
             "Proxy error: held-out error of the subnet with inherited SPOS supernet weights (C=8, BN recalibrated "
             f"on {args.calib_batches} batches, {args.eval_images} held-out images). Latency: the deploy-size "
             f"network (C=16) measured on this CPU, batch 1, one thread, median of {args.repeats} runs. "
             f"NSGA-II, population {args.pop_size}, {args.generations} generations, seed 0.", "",
             "Every space runs its full default layout (mobilenet and shufflenet: 20 layers, weight sharing "
             "inside a layer). Held-out accuracy: the training log's panel of random paths (`panel`), and the "
             "smallest and largest paths scored as the proxy scores an arch. Search time includes measuring "
             "latency and scoring the proxy.", "",
             "![fronts](spaces.png)", ""]
    summary = []
    for r in results:
        cfg = json.loads((r["run"] / "config.json").read_text())
        summary.append({"space": r["space"].name, "layers": len(r["space"].num_choices),
                        "archs": f"{float(r['space'].size):.3g}",
                        "stages": str(r["space"].options.get("stages", "default")),
                        "supernet": f"SPOS C=8, {cfg['max_images']} images x {cfg['epochs']} epochs",
                        "train min": r["train_s"] / 60, "panel acc %": r["result"]["val_acc"],
                        "smallest path acc %": r["ends_acc"]["smallest"],
                        "largest path acc %": r["ends_acc"]["largest"],
                        "evaluated": len(r["front"].table), "Pareto": len(r["pareto"]),
                        "search min": r["search_s"] / 60})
    lines += [markdown_table(pd.DataFrame(summary)), "", *target_lines(summary), ""]
    for r in results:
        lat, err = r["front"].objectives[1], r["front"].objectives[0]
        table = r["pareto"][["arch_str", err, lat, "params_m", "flops_m"]]
        lines += [f"## {r['space'].name}", "",
                  f"Front CSV: `spaces/{r['space'].name}.csv` (every evaluated arch, `is_pareto` marks the front).", "",
                  markdown_table(table.rename(columns={"arch_str": "arch"})), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    out = Path(args.out)
    results = []
    for space in args.spaces:
        r = one_space(space, args)
        r["front"].save(out / "spaces" / space, formats=("csv",))
        results.append(r)
        print(f"{space}: {len(r['pareto'])} Pareto archs of {len(r['front'].table)} evaluated "
              f"(training {r['train_s'] / 60:.1f} min, search {r['search_s'] / 60:.1f} min)", flush=True)
    plot(results, out / "spaces.png")
    text = report(results, args, argv)
    atomic_write_text(out / "spaces.md", text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
