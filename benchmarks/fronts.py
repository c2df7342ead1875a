"""How good are the fronts? NSGA-II against the weighted-sum GA (WSEA), the epsilon-constraint GA (CEA)
and random search at the same evaluation budget, per HW-NAS-Bench device, with the ground-truth oracle
and with the proxy accuracy of each supernet given (one per training mode: SPOS, DARTS, GDAS). Every front is re-scored with NAS-Bench-201 ground truth and held
against the exact front from all 15,625 archs (normalised hypervolume ratio, 1.0 = exact).

    python -m hwnas.benchmarks.fronts [--supernet runs/A runs/B ...] [--pop-size 50 --generations 20] [--seeds 0 1 2]
        [--reference NAME=FILE ...]

`--reference NAME=FILE` searches with per-arch accuracy scores from elsewhere as well (e.g. a published
supernet's estimates; formats in `benchmarks.tables.reference_scores`), labelled `reference:NAME`.

writes benchmarks/results/fronts.md (with the exact command) and prints the same tables.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hwnas.core.files import atomic_write_text
from hwnas.evolve.explore import exact_front, format_table, quality, rescore_with_truth
from hwnas.evolve.objectives import Cost, Objective, get_objective, list_objectives
from hwnas.evolve.search import list_algorithms, search
from hwnas.evolve.sources import Sources
from hwnas.supernet.evaluate import ProxySettings

from .tables.reference_scores import read_references, reference_arg
from .report import command, markdown_table

TRUE_COL = "true_err_pct"


def _picked(front, algorithm: str, hw_col: str, bound: float) -> pd.Series:
    """The one arch a user of each method would deploy under the same latency budget: the lowest true error
    among the method's evaluated archs whose hardware cost is within `bound` (CEA's bound)."""
    t = front.table.dropna(subset=[hw_col])
    if algorithm == "wsea" and front.meta.get("picked"):
        return t[t.arch_str == front.meta["picked"]].iloc[0]
    acc_col = front.objectives[0]
    ok = t[t[hw_col] <= bound]
    ok = ok if len(ok) else t
    return ok.sort_values(acc_col).iloc[0]


def _supernet_line(run: str, args) -> str:
    import json

    run_dir = Path(run)
    cfg = json.loads((run_dir / "config.json").read_text())
    res = json.loads((run_dir / "result.json").read_text())
    mode = cfg["mode"] + (f" (order {cfg['order']})" if cfg["mode"] == "darts" else "")
    acc = res.get("val_acc")
    return (f"- `proxy:{run_dir.name}` = supernet `{run}`: {mode}, C={cfg['channels']}, N={cfg['cells']}, "
            f"{cfg['max_images'] or 'all'} images, {cfg['epochs']} epochs"
            + (f", held-out accuracy {acc:.1f}% (panel of paths)" if acc is not None else "")
            + f"; proxy: BN recalibrated on {args.calib_batches} batches, {args.eval_images} held-out images per arch")


def _reference_objective(name: str, scores: dict[str, float], path: str, space) -> Objective:
    """Minimised objective from a reference's per-arch scores (higher = better): minus the score; an arch
    the file lacks is NaN, so the search counts it infeasible."""
    def fn(archs):
        return np.array([-scores.get(space.to_str(a), np.nan) for a in archs], dtype=float)
    return Objective(f"reference_{name}", "", fn, f"reference scores {path}", Cost.TABLE, space)


def run(args: argparse.Namespace) -> str:
    refs = read_references(args.reference, "hwnas.benchmarks.fronts")
    settings = ProxySettings(eval_images=args.eval_images, calib_batches=args.calib_batches)
    ctx = Sources(dataset="cifar10", data=args.data, progress=False)
    sources = [("true_err", get_objective("true_err", ctx))]
    proxy_ctxs = []
    for run_dir in args.supernet:
        sctx = Sources(dataset="cifar10", supernet=run_dir, data=args.data, progress=False, proxy_settings=settings)
        sources.append((f"proxy:{Path(run_dir).name}", get_objective("proxy_err", sctx)))
        proxy_ctxs.append((sctx, sources[-1][1]))
    for name, (path, scores) in refs.items():
        sources.append((f"reference:{name}", _reference_objective(name, scores, path, ctx.space)))
    devices = args.devices or ctx.hw_devices()
    rng = np.random.default_rng(0)
    sample = [ctx.space.sample(rng) for _ in range(1000)]
    hv_rows, pick_rows = [], []
    t0 = time.perf_counter()
    for dev in devices:
        hw_name = ctx.target_objective(dev)
        hw = get_objective(hw_name, ctx)
        energy = get_objective(f"{dev}_energy", ctx) if f"{dev}_energy" in list_objectives(ctx) else None
        exact = exact_front(ctx, hw_name)
        bound = float(np.nanpercentile(hw(sample), 60))
        for label, acc in sources:
            objs = [acc, hw]
            for alg in args.algorithms:
                hvs = []
                for seed in args.seeds:
                    front = search(ctx.space, objs, algorithm=alg, pop_size=args.pop_size,
                                   generations=args.generations, seed=seed, progress=False,
                                   stats_samples=args.stats_samples)
                    front = rescore_with_truth(front, ctx)
                    hvs.append(quality(front, exact, hw.column)[0])
                    if seed == args.seeds[0]:
                        p = _picked(front, alg, hw.column, bound)
                        arch = ctx.space.from_str(p["arch_str"])
                        pick_rows.append({"device": dev, "accuracy": label, "method": alg, "arch": p["arch_str"],
                                          "true_acc_pct": 100 - p[TRUE_COL], "latency_ms": p[hw.column],
                                          "energy_mJ": float(energy([arch])[0]) if energy else None})
                hv_rows.append({"device": dev, "accuracy": label, "method": alg, "hv_ratio_mean": float(np.mean(hvs)),
                                "hv_ratio_std": float(np.std(hvs)), "seeds": len(hvs)})
            print(f"{dev} {label}: done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    hv = pd.DataFrame(hv_rows)
    wide = hv.pivot_table(index=["device", "accuracy"], columns="method", values="hv_ratio_mean")
    wide = wide[[a for a in args.algorithms]].reset_index()
    per_mode = hv[hv.method == args.algorithms[0]].pivot_table(index="device", columns="accuracy",
                                                               values="hv_ratio_mean")
    per_mode = per_mode[[label for label, _ in sources]].reset_index()
    picks = pd.DataFrame(pick_rows)
    cmd = command("hwnas.benchmarks.fronts", args.argv)
    misses = sum(sctx.proxy.misses for sctx, _ in proxy_ctxs)
    hits = sum(sctx.proxy.hits for sctx, _ in proxy_ctxs)
    # What the proxy scores cost when computed, so that a re-run answered from the cache still reports it.
    proxy_minutes = sum(sctx.proxy.compute_seconds(ctx.space.from_str(k) for k in obj.evaluated)
                        for sctx, obj in proxy_ctxs) / 60
    supernet_lines = "\n".join([_supernet_line(r, args) for r in args.supernet]
                               + [f"- `reference:{name}` = per-arch scores read from `{path}` (not trained here)"
                                  for name, (path, _) in refs.items()])
    budget = args.pop_size * args.generations
    md = [
        "# Fronts: NSGA-II vs baselines at equal budget",
        "",
        f"Command: `{cmd.strip()}`  ",
        f"Budget: {budget} evaluations per search (population {args.pop_size}, {args.generations} generations); "
        f"seeds {args.seeds}; data set cifar10; wall time {time.perf_counter() - t0:.0f} s"
        + (f" ({misses} proxy evaluations, {hits} answered by the proxy cache; the proxy scores used took "
           f"{proxy_minutes:.1f} min to compute).  " if args.supernet else ".  "),
        "",
        supernet_lines,
        "",
        "HV ratio: normalised hypervolume (reference point 1.1 after normalising by the exact front's ideal and "
        "nadir) of each method's evaluated archs, re-scored with NAS-Bench-201 200-epoch test error, divided by "
        "that of the exact front from all 15,625 archs. `true_err` = searched with ground truth (oracle), "
        "`proxy:<run>` = searched with that supernet's proxy error"
        + (", `reference:<name>` = searched with that file's scores." if refs else "."),
        "",
        f"## Proxy-front quality per supernet ({args.algorithms[0]}, HV ratio after re-scoring with ground truth)",
        "",
        markdown_table(per_mode),
        "",
        "## Normalised hypervolume ratio (mean over seeds)",
        "",
        markdown_table(wide),
        "",
        "## The picked arch per method (first seed)",
        "",
        "WSEA: its best weighted sum; the others: lowest error among evaluated archs with latency within CEA's bound "
        "(60th percentile of 1,000 random archs).",
        "",
        markdown_table(picks),
        "",
    ]
    text = "\n".join(md)
    out = Path(args.out)
    atomic_write_text(out, text)
    print(format_table(wide))
    print(f"wrote {out}")
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hwnas.benchmarks.fronts", description=__doc__.split("\n\n")[0])
    p.add_argument("--supernet", nargs="*", default=[],
                   help="run folder(s) for proxy fronts, one per training mode (omit: oracle only)")
    p.add_argument("--devices", nargs="*", default=None)
    p.add_argument("--algorithms", nargs="+", default=list_algorithms(), choices=list_algorithms())
    p.add_argument("--pop-size", type=int, default=50)
    p.add_argument("--generations", type=int, default=20)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--stats-samples", type=int, default=1000, help="random archs for WSEA/CEA statistics")
    p.add_argument("--eval-images", type=int, default=5000,
                   help="held-out images per proxy evaluation (fewer is faster but noisier; see benchmarks.ranking)")
    p.add_argument("--calib-batches", type=int, default=4, help="BN recalibration batches (4: the ranking's own)")
    p.add_argument("--reference", nargs="+", type=reference_arg, default=[], metavar="NAME=FILE",
                   help="per-arch accuracy scores from elsewhere to search with as well (JSON or CSV; see "
                   "benchmarks/tables/reference_scores.py)")
    p.add_argument("--data", default=None)
    p.add_argument("--out", default="benchmarks/results/fronts.md")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    args.argv = argv
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
