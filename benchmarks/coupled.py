"""Decoupled vs coupled on NAS-Bench-201: one supernet searched per device, against methods that put the
device into training (FBNet/LuffyNet trained once per device and latency weight, CANAS once per device).

    python -m hwnas.benchmarks.coupled [--devices edgegpu fpga eyeriss] [--runs runs/coupled]
        [--epochs 4 --max-images 10000 --channels 8 --cells 1] [--fbnet-alphas 0.002 0.01 0.05]
        [--latency-term additive --warmup-epochs 1]
        [--budgets 0.25 0.5 0.75] [--pop-size 50 --generations 10] [--accuracy default]

(a) decoupled: one SPOS supernet, then per device NSGA-II over (the accuracy objective, the device's latency);
(b) fbnet: per device, one run per `--fbnet-alphas` value (the latency weight), each deriving one arch;
(c) canas: per device, one run whose reward prices the device's latency (its per-choice table fitted to the
HW-NAS-Bench table), its front = everything it sampled. All at the same CPU recipe (epochs, images, C, N).

Per device and latency budget (quantiles of the device's latency over all 15,625 archs), each method's pick
is what its user would deploy: the arch its own accuracy side ranks best among those within the budget by
the device table (decoupled: the search's accuracy objective; fbnet: each run's held-out accuracy of its
derived arch; canas: mean held-out batch accuracy). Reported: the pick's true NB201 accuracy and latency,
the HV ratio of each method's arch set re-scored with ground truth against the exact front, and the compute
(training + search wall time) for all devices together. Finished runs in --runs are reused.

fbnet's defaults here: LuffyNet's additive latency term, whose alpha is the trade-off weight (with FBNet's
product term and Adam on the architecture parameters alpha only rescales the loss, so a sweep over it gives
one trade-off three times), and one warm-up epoch of weights only. Measured at this recipe on fpga (2 epochs,
1 of warm-up): alpha 0.2 derives the all-`none` cell, 0.01 two convolutions, 0.002 four, 0 (accuracy only)
four and a pool; without the warm-up (product term, alpha 0.2) the cell after one epoch was `none` but for
one skip.
Writes benchmarks/results/coupled.md (with the exact command), coupled.csv (the picks) and coupled_archs.csv
(every method's archs with its own score, true error and latency, for plots).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hwnas.core.files import atomic_write_text
from hwnas.evolve.device_costs import fit_target_costs
from hwnas.evolve.explore import TRUE_COL, exact_front, quality, rescore_with_truth
from hwnas.evolve.front import Front
from hwnas.evolve.objectives import Direction, get_objective
from hwnas.evolve.sampled_front import front_from_sampled
from hwnas.evolve.search import search
from hwnas.evolve.sources import Sources
from hwnas.supernet.trainer import TrainConfig, train

from .report import command, markdown_table

RESULTS = Path(__file__).resolve().parent / "results" / "coupled.md"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m hwnas.benchmarks.coupled", description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", nargs="+", default=["edgegpu", "fpga", "eyeriss"])
    p.add_argument("--runs", default="runs/coupled", help="folder of the training runs (finished ones reused)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--max-images", type=int, default=10_000)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--cells", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--fbnet-alphas", nargs="+", type=float, default=[0.002, 0.01, 0.05],
                   help="latency weights of the fbnet runs (one run each per device)")
    p.add_argument("--latency-term", default="additive", choices=["additive", "fbnet"],
                   help="fbnet runs' latency term (see `hwnas train --help`)")
    p.add_argument("--warmup-epochs", type=int, default=1, help="fbnet runs' weight-only epochs first")
    p.add_argument("--budgets", nargs="+", type=float, default=[0.25, 0.5, 0.75],
                   help="latency budgets as quantiles of the device's latency over the whole space")
    p.add_argument("--accuracy", default="default", help="accuracy objective of the decoupled search "
                                                         "(default: the label-free default proxy)")
    p.add_argument("--pop-size", type=int, default=50)
    p.add_argument("--generations", type=int, default=10)
    p.add_argument("--data", default=None, help="data folder (default: $HWNAS_DATA)")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    if not all(0 < b <= 1 for b in args.budgets):
        p.error(f"--budgets are quantiles in (0, 1], got {args.budgets}")
    return args


def _train(cfg: TrainConfig) -> tuple[dict, float]:
    """(result, training seconds) of a run, trained unless finished (then read as it is)."""
    out = Path(cfg.out)
    if not (out / "result.json").is_file():
        train(cfg, resume=(out / "supernet.pt").is_file())
    seconds = float(pd.read_csv(out / "metrics.csv").seconds.sum())
    return json.loads((out / "result.json").read_text()), seconds


def _pick(table: pd.DataFrame, score: str, lat: str, budget: float, lower_better: bool) -> pd.Series | None:
    ok = table[table[lat] <= budget].dropna(subset=[score])
    return None if ok.empty else ok.sort_values(score, ascending=lower_better).iloc[0]


def run(args, argv) -> str:
    from hwnas.evolve.objectives.ensemble import DEFAULT_PROXY

    base = dict(channels=args.channels, cells=args.cells, max_images=args.max_images, epochs=args.epochs,
                batch_size=args.batch_size, data=args.data, progress=False)
    runs = Path(args.runs)
    ctx = Sources(dataset="cifar10", data=args.data, progress=False)
    spos, spos_s = _train(TrainConfig(mode="spos", out=str(runs / "spos"), **base))
    sctx = Sources(dataset="cifar10", supernet=str(runs / "spos"), data=args.data, progress=False)
    accuracy = DEFAULT_PROXY if args.accuracy == "default" else args.accuracy
    compute = {"decoupled": spos_s, "fbnet": 0.0, "canas": 0.0}
    picks, quality_rows, arch_sets = [], [], []
    for dev in args.devices:
        hw_name = ctx.target_objective(dev)
        hw = get_objective(hw_name, ctx)
        truth = get_objective("true_err", ctx)
        exact = exact_front(ctx, hw_name)
        everything = hw(ctx.space.all_archs())
        budgets = {q: float(np.nanquantile(everything, q)) for q in args.budgets}

        def scored(table: pd.DataFrame) -> pd.DataFrame:
            archs = [ctx.space.from_str(a) for a in table.arch_str]
            return table.assign(**{TRUE_COL: truth(archs), hw.column: hw(archs)})

        # (a) decoupled: the one supernet, searched for this device
        t0 = time.perf_counter()
        acc = sctx.objective(accuracy)
        front = search(ctx.space, [acc, hw], pop_size=args.pop_size,
                       generations=args.generations, seed=0, progress=False)
        compute["decoupled"] += time.perf_counter() - t0
        front = rescore_with_truth(front, ctx)
        # the default proxy (an ensemble score) is maximised, proxy_err minimised: pick by the objective's own sense
        sets = {"decoupled": (front.table, front.objectives[0], acc.direction == Direction.MINIMISE)}
        # (b) fbnet: one run per latency weight, each one derived arch
        costs = fit_target_costs(ctx, dev)
        table_path = costs.save(runs / f"{dev}_latency_costs.json")
        rows = []
        for alpha in args.fbnet_alphas:
            r, s = _train(TrainConfig(mode="fbnet", latency_table=str(table_path), latency_alpha=alpha,
                                      latency_term=args.latency_term, warmup_epochs=args.warmup_epochs,
                                      out=str(runs / (f"fbnet_{dev}_{args.latency_term}_a{alpha:g}"
                                                      f"_w{args.warmup_epochs}")),
                                      **base))
            compute["fbnet"] += s
            rows.append({"arch_str": r["derived_arch"], "held_out_acc": r["val_acc"], "alpha": alpha})
        sets["fbnet"] = (scored(pd.DataFrame(rows)), "held_out_acc", False)
        # (c) canas: one run, the front of everything it sampled
        r, s = _train(TrainConfig(mode="canas", latency_table=str(table_path), out=str(runs / f"canas_{dev}"),
                                  **base))
        compute["canas"] += s
        sampled = front_from_sampled(runs / f"canas_{dev}" / "sampled.csv").table
        sets["canas"] = (scored(sampled), "batch_err_pct", True)
        for method, (table, score, lower) in sets.items():
            table = table.dropna(subset=[TRUE_COL, hw.column])
            encoded = table[["arch_str", TRUE_COL, hw.column]].assign(
                encoding=[",".join(map(str, ctx.space.from_str(a))) for a in table.arch_str])
            found = Front.from_evaluations(encoded, [TRUE_COL, hw.column])
            hv, _ = quality(found, exact, hw.column)
            quality_rows.append({"device": dev, "method": method, "archs": len(table), "hv_ratio": hv})
            arch_sets.append(pd.DataFrame({"device": dev, "method": method, "arch_str": table.arch_str,
                                           "score": table[score], "score_lower_better": lower,
                                           TRUE_COL: table[TRUE_COL], "latency_ms": table[hw.column]}))
            for q, budget in budgets.items():
                p = _pick(table, score, hw.column, budget, lower)
                best = exact[exact[hw.column] <= budget][TRUE_COL].min()
                picks.append({"device": dev, "budget_quantile": q, "budget_ms": budget, "method": method,
                              "arch": None if p is None else p.arch_str,
                              "true_acc_pct": None if p is None else 100 - float(p[TRUE_COL]),
                              "latency_ms": None if p is None else float(p[hw.column]),
                              "regret_pts": None if p is None else float(p[TRUE_COL]) - float(best)})
        print(f"{dev}: done", file=sys.stderr)
    picks_df, hv_df = pd.DataFrame(picks), pd.DataFrame(quality_rows)
    out = Path(args.out)
    atomic_write_text(out.with_suffix(".csv"), picks_df.to_csv(index=False))
    atomic_write_text(out.with_name(out.stem + "_archs.csv"), pd.concat(arch_sets).to_csv(index=False))
    compute_df = pd.DataFrame([{"method": m, "devices": len(args.devices), "compute_min": s / 60}
                               for m, s in compute.items()])
    lines = ["# Decoupled vs coupled hardware-aware NAS on NAS-Bench-201 (CPU recipe)", "",
             f"- command: `{command('hwnas.benchmarks.coupled', argv)}`",
             f"- recipe (every training run): C={args.channels}, N={args.cells}, {args.max_images} images, "
             f"{args.epochs} epochs, batch {args.batch_size}; decoupled search: NSGA-II, population "
             f"{args.pop_size}, {args.generations} generations, accuracy `{accuracy}`; fbnet latency weights "
             f"{args.fbnet_alphas} ({args.latency_term} term, {args.warmup_epochs} warm-up epoch(s)); "
             "canas cost = the device's fitted per-choice latency",
             f"- decoupled supernet held-out accuracy {spos['val_acc']:.1f}%", "",
             "## Picks under each latency budget (true NB201 accuracy; regret = best within budget minus pick)", "",
             markdown_table(picks_df), "",
             "## HV ratio of each method's archs re-scored with ground truth", "", markdown_table(hv_df), "",
             "## Compute for all devices together (training + search)", "", markdown_table(compute_df), ""]
    text = "\n".join(lines)
    atomic_write_text(out, text)
    return text


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    print(run(parse_args(argv), argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
