"""How trustworthy are latencies measured on this machine, and what do they have in common with the
devices of HW-NAS-Bench?

For K canonical NB201 cells drawn uniformly over the 6,466 classes (seed 0), on every target available
here (cpu, onnxruntime; cuda and onnxruntime-cuda where a GPU is present):
1. repeatability: each arch is measured R times (warm-up + timed runs each); rounds are interleaved (all
   archs once, then again) so slow drift hits every arch alike. Reported: the coefficient of variation of
   the R medians per arch (median, 90th percentile and max over archs) and how many single measurements
   were flagged noisy;
2. the per-block lookup table: built on the same target, its sums against the archs' measured latency
   (median of the R medians): Spearman, Kendall tau-b, median ratio, mean absolute % error;
3. this machine against HW-NAS-Bench: rank correlation of the measured latency with each device's latency
   and energy (and with FLOPs and params as reference points).

    python -m hwnas.benchmarks.latency [--archs 50] [--rounds 5] [--repeats 50] [--targets cpu onnxruntime]

writes benchmarks/results/latency.md (with the exact command), latency_archs.csv (every measurement)
and latency.png (LUT vs measured per target).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hwnas.hardware import counters
from hwnas.hardware.lut import build_table, rank_agreement
from hwnas.hardware.measure import check_target, describe_target, list_targets, measure
from hwnas.core.files import atomic_write_text
from hwnas.core.stats import rank_correlation
from hwnas.supernet.spaces import get_space

from hwnas.evolve.ranking import sample_classes
from .report import command, markdown_table


def measure_rounds(space, archs, net: dict, target: str, rounds: int, warmup: int, repeats: int,
                   threads: int) -> pd.DataFrame:
    """One row per (round, arch): median, CV and noisy flag of that measurement."""
    rows = []
    models = [space.build_subnet(a, **net) for a in archs]
    bar = tqdm(total=rounds * len(archs), desc=f"measure {target}", unit="run")
    for r in range(rounds):
        for arch, model in zip(archs, models):
            t = measure(model, target, (1, 3, 32, 32), warmup=warmup, repeats=repeats, threads=threads)
            rows.append({"target": target, "round": r, "arch_str": space.to_str(arch), "median_ms": t.median_ms,
                         "cv_runs": t.cv, "noisy": t.noisy, "attempts": t.attempts})
            bar.update()
    bar.close()
    return pd.DataFrame(rows)


def repeatability(runs: pd.DataFrame) -> dict:
    """CV of the per-arch medians across rounds, summarised over archs."""
    per_arch = runs.groupby("arch_str").median_ms.agg(lambda s: s.std(ddof=1) / s.mean())
    return {"archs": len(per_arch), "rounds": int(runs["round"].nunique()),
            "median CV of medians": float(per_arch.median()), "p90 CV": float(per_arch.quantile(0.9)),
            "max CV": float(per_arch.max()), "noisy measurements": int(runs.noisy.sum()),
            "latency min ms": float(runs.median_ms.min()), "latency max ms": float(runs.median_ms.max())}


def _corr(a, b) -> tuple[float, float]:
    corr = rank_correlation(a, b)
    return corr["spearman"], corr["kendall"]


def run(args: argparse.Namespace) -> str:
    space = get_space("nb201")
    net = {"channels": args.channels, "cells": args.cells, "num_classes": 10}
    targets = args.targets or list_targets(available_only=True)
    for t in targets:
        check_target(t)
    archs = sample_classes(space, args.archs, args.seed)
    strs = [space.to_str(a) for a in archs]
    t0 = time.perf_counter()
    all_runs, rep_rows, lut_rows, measured = [], [], [], {}
    for target in targets:
        runs = measure_rounds(space, archs, net, target, args.rounds, args.warmup, args.repeats, args.threads)
        all_runs.append(runs)
        rep_rows.append({"target": target, **repeatability(runs)})
        measured[target] = runs.groupby("arch_str").median_ms.median().reindex(strs).to_numpy()
        t_lut = time.perf_counter()
        table = build_table(space.latency_blocks((1, 3, 32, 32), **net), target, warmup=args.warmup,
                            repeats=args.repeats, threads=args.threads)
        predicted = np.array([table.predict(space.arch_blocks(a, **net)) for a in archs])
        lut_rows.append({"target": target, "blocks": len(table.entries), "build s": time.perf_counter() - t_lut,
                         **rank_agreement(predicted, measured[target])})
        measured[f"lut:{target}"] = predicted
    runs = pd.concat(all_runs, ignore_index=True)
    corr_rows = _hwnasbench_correlations(space, archs, strs, net, measured, targets, args.hwnasbench)
    wall = time.perf_counter() - t0
    _plot(measured, targets, lut_rows, Path(args.out).with_suffix(".png"))
    atomic_write_text(Path(args.out).with_name("latency_archs.csv"), runs.to_csv(index=False))
    return _report(args, net, targets, rep_rows, lut_rows, corr_rows, wall)


def _hwnasbench_correlations(space, archs, strs, net, measured, targets, hwnasbench_path) -> pd.DataFrame:
    from hwnas.benchmarks.tables.hwnasbench import HWNASBench

    hw = HWNASBench.load(hwnasbench_path)
    refs = {m: hw.lookup(strs, m, "cifar10") for m in hw.metrics("cifar10") if m.endswith(("_latency", "_energy"))}
    models = [space.build_subnet(a, **net) for a in archs]
    refs["flops"] = np.array([counters.flops_m(m) for m in models])
    refs["params"] = np.array([counters.params_m(m) for m in models])
    rows = []
    for name, ref in refs.items():
        row = {"reference": name}
        for t in targets:
            rho, tau = _corr(measured[t], ref)
            row[f"{t} Spearman"], row[f"{t} Kendall"] = rho, tau
        rows.append(row)
    return pd.DataFrame(rows)


def _plot(measured: dict, targets: list[str], lut_rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    from hwnas.evolve.plot import save_figure

    fig = Figure(figsize=(4.2 * len(targets), 3.8))
    axes = fig.subplots(1, len(targets), squeeze=False)
    for ax, t, row in zip(axes[0], targets, lut_rows):
        m, p = measured[t], measured[f"lut:{t}"]
        ax.scatter(m, p, s=12)
        lim = [0, max(m.max(), p.max()) * 1.05]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set(xlabel=f"measured latency on {t} (ms)", ylabel="LUT sum (ms)",
               title=f"{t}: Spearman {row['spearman']:.2f}, Kendall {row['kendall']:.2f}")
    save_figure(fig, path)


def _report(args, net, targets, rep_rows, lut_rows, corr_rows, wall) -> str:
    machine = describe_target(targets[0], args.threads)
    lines = [
        "# Measured latency: repeatability, lookup tables, and this machine against HW-NAS-Bench",
        "",
        f"- command: `{command('hwnas.benchmarks.latency', args.argv)}`",
        f"- machine: {machine['cpu']} ({machine['cpu_count']} cores), host `{machine['host']}`, "
        f"torch {machine['torch']}" + (f", onnxruntime {describe_target('onnxruntime')['onnxruntime']}"
                                        if "onnxruntime" in targets else ""),
        f"- network: NAS-Bench-201, C={net['channels']}, N={net['cells']}, CIFAR-10 input 1x3x32x32 (batch 1), "
        f"{args.threads} thread(s)",
        f"- protocol: {args.archs} canonical archs (uniform over the 6,466 classes, seed {args.seed}); each "
        f"measurement = {args.warmup} warm-up + {args.repeats} timed runs, median; {args.rounds} interleaved "
        f"rounds per arch; wall time {wall / 60:.1f} min",
        "",
        "## Repeatability",
        "",
        "CV of the medians = std / mean of one arch's medians over the rounds; its median, 90th percentile and "
        "max over the archs. A measurement is noisy when the CV of its own timed runs stays above 0.1 after 3 "
        "attempts.",
        "",
        markdown_table(pd.DataFrame(rep_rows)),
        "",
        "## Per-block lookup table vs whole-network measurement",
        "",
        "The table times every block once on the target (stem, each op per stage, the node sum, the reductions, "
        "the head); an arch's prediction is the sum over its blocks. `median_ratio` = LUT / measured, `mape_pct` "
        "= mean absolute % error. See `latency.png`.",
        "",
        markdown_table(pd.DataFrame(lut_rows)),
        "",
        "## This machine's latency ranked against HW-NAS-Bench (CIFAR-10)",
        "",
        "Spearman rho and Kendall tau-b over the same archs, between the latency measured here and each "
        "HW-NAS-Bench metric; FLOPs and params as reference points.",
        "",
        markdown_table(corr_rows),
        "",
    ]
    text = "\n".join(lines)
    atomic_write_text(args.out, text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hwnas.benchmarks.latency", description=__doc__.split("\n\n")[0])
    p.add_argument("--archs", type=int, default=50, help="canonical archs measured")
    p.add_argument("--rounds", type=int, default=5, help="repeated measurements per arch")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeats", type=int, default=50, help="timed runs per measurement")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--targets", nargs="*", default=None, help=f"default: all available of {', '.join(list_targets())}")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hwnasbench", default=None, help="HW-NAS-Bench pickle (default: $HWNAS_DATA)")
    p.add_argument("--out", default="benchmarks/results/latency.md")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    args.argv = argv
    print(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
