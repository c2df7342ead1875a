"""Does the supernet rank architectures the way NAS-Bench-201 ground truth does?

K canonical cells, drawn uniformly over the 6,466 isomorphism classes (seed 0; `--sample all` takes every
class), are scored by the supernet's proxy (inherited weights, BN recalibrated or batch statistics) and
held against their NAS-Bench-201 200-epoch test accuracy on the supernet's data set. Reported:

- Kendall tau-b and Spearman rho over all K;
- Kendall tau inside the true top 10% (does the proxy order the archs a user actually wants?);
- precision at top 5%: the share of the proxy's top 5% that is in the true top 5%;
- the true accuracy of the proxy's top-1, and the best true accuracy among its top-10 and top-100;
- the same for the zero-cost baselines FLOPs and params (bigger = better); FLOPs alone reaches tau ~0.58 on
  CIFAR-10, so a supernet must beat it to be worth training;
- the same for any `--reference NAME=FILE` (per-arch scores from elsewhere, e.g. the one-shot and few-shot
  supernet estimates published with the few-shot NAS code; formats in `benchmarks.tables.reference_scores`).

    python -m hwnas.benchmarks.ranking --supernet runs/A [runs/B ...] [--sample 1000|all] [--proxy recalibrate:5000 ...]
        [--reference NAME=FILE ...] [--zero-cost SIGNAL ...] [--default-proxy] [--max-members 4]
        [--label-counts 0 20 100 ...]
        [--label-seeds 0 1 2 3 4] [--scores FILE.csv]

With `--zero-cost`, it also chooses label-free ensembles on one random half of the cells and judges them on the
other, ablates the default proxy's members (`benchmarks.combine`), and with `--label-counts` sweeps the
few-label ranker; each score is reported against issue 14's targets. `--scores` writes every arch's scores.

`--proxy BN:IMAGES` names one way of scoring (BN mode, held-out images per arch); each is run on every
supernet. The held-out count matters: accuracy on n images has a binomial standard error of about
sqrt(p(1-p)/n) (1.4 points at n=1,000, p=0.7), as large as the spread of the proxy over good cells.

writes benchmarks/results/ranking.md (with the exact command), ranking.csv (every arch's proxies, FLOPs,
params and true accuracy) and ranking.png (proxy-vs-true scatter per supernet and scoring).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from hwnas.cli.options import add_config_options, config_from_args
from hwnas.core.datasets import dataset_info
from hwnas.evolve.ranking import ranking_metrics, sample_classes
from hwnas.supernet.zero_cost import ZeroCostSettings

from .report import command, markdown_table
from .tables.reference_scores import read_references, reference_arg


def _describe(cfg: dict) -> str:
    mode = cfg["mode"] + (f" (order {cfg['order']})" if cfg["mode"] == "darts" else "")
    if cfg.get("sampler", "uniform") != "uniform":
        mode += f" ({cfg['sampler']} sampler)"
    epochs = f"{cfg['epochs']} epochs"
    if cfg.get("few_shot_edge") is not None:
        from hwnas.supernet.trainer import TrainConfig

        tc = TrainConfig.from_dict(cfg)
        epochs = (f"few-shot split on decision {tc.few_shot_edge}: parent {tc.epochs - tc.few_shot_epochs} epochs, "
                  f"then {tc.split_choices()} parts x {tc.few_shot_epochs}")
    return (f"{mode}, C={cfg['channels']}, N={cfg['cells']}, {cfg['max_images'] or 'all'} images, "
            f"{epochs}, batch {cfg['batch_size']}, seed {cfg['seed']}")


def _path_epochs(cfg: dict) -> int:
    """Training compute in passes of one path over the training split (forward + backward): epochs, times the
    paths per step of the fair sampler, plus every few-shot part's epochs."""
    from hwnas.supernet.spaces import space_from_config
    from hwnas.supernet.trainer import TrainConfig

    tc = TrainConfig.from_dict(cfg)
    paths = max(space_from_config(cfg).num_choices) if tc.sampler == "fair" else 1
    return tc.total_epochs() * paths


def _wall_minutes(run_dir: Path) -> float | None:
    """Training wall time from the run's metrics log (sum of per-epoch seconds), if it has one."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return None
    log = pd.read_csv(path)
    col = next((c for c in log.columns if c.endswith("seconds")), None)
    return float(log[col].sum()) / 60 if col else None


def run(args: argparse.Namespace) -> str:
    from hwnas.benchmarks.tables.nb201_truth import NB201Truth
    from hwnas.hardware import counters
    from hwnas.supernet.evaluate import ProxyEvaluator, ProxySettings
    from hwnas.supernet.spaces import get_space

    refs = read_references(args.reference, "hwnas.benchmarks.ranking")
    if not args.supernet and not args.zero_cost and not refs:
        raise SystemExit("hwnas.benchmarks.ranking: nothing to rank; give --supernet, --zero-cost or --reference")
    runs = [Path(r) for r in args.supernet]
    missing = [str(r) for r in runs if not (r / "config.json").is_file()]
    if missing:
        raise SystemExit(f"hwnas.benchmarks.ranking: {', '.join(missing)} is not a trained run folder (no config.json); "
                         "give folders that hwnas train wrote, e.g. runs/quickstart")
    cfgs = [json.loads((r / "config.json").read_text()) for r in runs]
    datasets = {c["dataset"] for c in cfgs} or {"cifar10"}
    if len(datasets) != 1:
        raise SystemExit(f"hwnas.benchmarks.ranking: supernets trained on different data sets {sorted(datasets)}")
    dataset = datasets.pop()
    space = get_space(cfgs[0]["space"] if cfgs else "nb201")
    truth = NB201Truth.load(args.truth)
    archs = sample_classes(space, None if args.sample == "all" else int(args.sample), args.seed)
    strs = [space.to_str(a) for a in archs]
    references = _reference_scores(refs, strs)
    frame = pd.DataFrame({"arch_str": strs, "true_acc": truth.accuracy(strs, dataset)})
    num_classes = dataset_info(dataset).num_classes
    counts = [_counts(space.build_subnet(a, num_classes=num_classes, channels=16, cells=5), counters)
              for a in archs]  # one net at a time: all 6,466 deploy-size nets would not fit in memory
    frame["flops_m"], frame["params_m"] = [c[0] for c in counts], [c[1] for c in counts]
    rows, runs_info, evaluators = [], [], {}
    for run_dir, cfg in zip(runs, cfgs):
        for bn, images in args.proxy:
            settings = ProxySettings(bn_mode=bn, eval_images=images, calib_batches=args.calib_batches)
            ev = ProxyEvaluator(run_dir, settings, data=args.data, progress=True)
            col = f"proxy_{run_dir.name}_{bn}_{images}"
            frame[col] = ev.accuracy(archs)
            evaluators[col] = ev
            runs_info.append((f"{run_dir.name} BN {bn}, {images} images", ev.compute_seconds(archs), ev.misses,
                              ev.hits))
            rows.append({"supernet": run_dir.name, "mode": cfg["mode"] + ("2" if cfg.get("order") == 2 else ""),
                         "score": f"proxy, BN {bn}, {images} images", "column": col,
                         **ranking_metrics(frame[col], frame.true_acc)})
            if args.default_proxy:  # this supernet's proxy inside the default ensemble
                from hwnas.evolve.objectives.ensemble import DEFAULT_PROXY
                from hwnas.evolve.sources import Sources

                src = Sources(space=space, supernet=str(run_dir), dataset=dataset, data=args.data,
                              proxy_settings=settings, zero_cost=args.zero_cost_settings).with_resources(proxy=ev)
                dcol = f"ensemble_default_{run_dir.name}_{bn}_{images}"
                frame[dcol] = src.objective(DEFAULT_PROXY)(archs)
                rows.append({"supernet": run_dir.name, "mode": "default proxy",
                             "score": f"{DEFAULT_PROXY}, BN {bn}, {images} images", "column": dcol,
                             **ranking_metrics(frame[dcol], frame.true_acc)})
    zc_info = _zero_cost_columns(args, space, dataset, archs, frame, rows)
    for name, (path, scores) in references.items():
        frame[f"reference_{name}"] = scores
        rows.append({"supernet": name, "mode": "reference", "score": f"scores in {Path(path).name}",
                     "column": f"reference_{name}",
                     **ranking_metrics(scores, frame.true_acc)})
    for col, label in (("flops_m", "FLOPs (C=16, N=5)"), ("params_m", "params (C=16, N=5)")):
        rows.append({"supernet": "-", "mode": "baseline", "score": label, "column": col,
                     **ranking_metrics(frame[col], frame.true_acc)})
    combos = _combinations(args, space, dataset, archs, frame, rows, evaluators, runs, cfgs, truth)
    table = pd.DataFrame(rows)
    if args.sample == "all":
        _all_strings(space, truth, dataset, frame, table)
    scores = [c for c in frame.columns if c.startswith(("proxy_", "zc_", "reference_", "ensemble_"))] + [
        "default", "flops_m", "params_m"]
    scores = [c for c in scores if c in frame.columns]
    per_device = _per_device(frame, scores, strs, dataset, args.hwnasbench)
    out = Path(args.out)
    from hwnas.core.files import atomic_write_text

    atomic_write_text(out.with_suffix(".csv"), frame.to_csv(index=False))
    if args.scores:
        keep = ["arch_str", *[c for c in frame.columns if c not in ("arch_str", "true_acc")]]
        atomic_write_text(Path(args.scores), frame[keep].to_csv(index=False))
    _scatter(frame, [c for c in scores if c != "params_m"], dataset, out.with_suffix(".png"))
    text = _report(args, dataset, runs, cfgs, table, runs_info, len(archs), per_device, zc_info, combos)
    atomic_write_text(out, text)
    return text


def _latencies(strs: list[str], dataset: str, hwnasbench) -> dict:
    from hwnas.benchmarks.tables.hwnasbench import HW_DEVICES, HWNASBench

    try:
        hw = HWNASBench.load(hwnasbench)
    except FileNotFoundError:
        return {}
    return {d: hw.lookup(strs, f"{d}_latency", dataset) for d in HW_DEVICES if f"{d}_latency" in hw.metrics(dataset)}


def _combinations(args, space, dataset, archs, frame, rows, evaluators, runs, cfgs, truth) -> dict:
    """The label-free ensembles chosen on one half of the sample and judged on the other, the default proxy's
    column (`default`, computed through the objective a search uses), its leave-one-out ablation, and the
    few-label ranker's sweep. Returns what the report needs."""
    from hwnas.evolve.objectives import get_objective
    from hwnas.evolve.objectives.ensemble import DEFAULT_PROXY, members_of, without_supernet
    from hwnas.evolve.ranker import DEFAULT_FEATURES
    from hwnas.evolve.sources import Sources

    from . import combine

    if not args.zero_cost:
        return {}
    strs = list(frame.arch_str)
    true = frame.true_acc.to_numpy(float)
    latency = _latencies(strs, dataset, args.hwnasbench)
    sources = Sources(space=space, dataset=dataset, data=args.data, zero_cost=args.zero_cost_settings)
    proxy_col = next(iter(evaluators), None)
    if proxy_col is not None:  # the first supernet and scoring stand for `proxy_err` in the ensembles
        run_dir = runs[0]
        ev = evaluators[proxy_col]
        sources = Sources(space=space, supernet=str(run_dir), data=args.data, proxy_settings=ev.settings,
                          zero_cost=args.zero_cost_settings).with_resources(proxy=ev)
    reference = sources.reference_archs
    member_cols = {f"zc:{s}": f"zc_{s}" for s in args.zero_cost}
    if proxy_col is not None:
        member_cols["proxy_err"] = proxy_col
    # Both oriented as the ensemble orients its members (-direction.sign * value: proxy_err becomes minus the
    # error, not the accuracy column), so that each member's values and its reference values are comparable.
    oriented = {m: (lambda archs, o=sources.objective(m): -o.direction.sign * o(archs)) for m in member_cols}
    columns = {m: f(archs) for m, f in oriented.items()}
    references = {m: f(reference) for m, f in oriented.items()}
    select, test = combine.halves(len(frame), args.seed)
    table = combine.select_ensembles(columns, references, true, latency, select, max_members=args.max_members)
    chosen = combine.choose(table, TARGET_TAU, TARGET_REGRET)
    default_name = DEFAULT_PROXY if proxy_col is not None else without_supernet(DEFAULT_PROXY)
    default = get_objective(default_name, sources)
    frame["default"] = default(archs)
    rows.append({"supernet": runs[0].name if proxy_col else "-", "mode": "ensemble", "score": f"default: {default_name}",
                 "column": "default", **ranking_metrics(frame["default"], frame.true_acc)})
    chosen_members = chosen["members"].split("+")
    frame["ensemble_chosen"] = combine.ensemble_values(columns, references, chosen_members)
    rows.append({"supernet": "-", "mode": "ensemble", "score": f"chosen on the selection half: {chosen['members']}",
                 "column": "ensemble_chosen", **ranking_metrics(frame["ensemble_chosen"], frame.true_acc)})
    default_members = members_of(default_name)
    if all(m in columns for m in default_members):  # the selection computes ensembles as the objective does
        by_columns = combine.ensemble_values(columns, references, default_members)
        if not np.allclose(by_columns, frame["default"].to_numpy(float), equal_nan=True):
            raise RuntimeError("benchmarks.ranking: the ensembles computed from the score columns differ from the "
                               "ensemble objective's values; the selection would not judge what a search uses")
    ablation = [{"ensemble": "+".join(default_members), "dropped": "-",
                 **combine.judge(frame["default"].to_numpy(float), true, latency, np.ones(len(frame), bool))}]
    for m in default_members:
        rest = [x for x in default_members if x != m]
        if rest and all(x in columns for x in rest):
            ablation.append({"ensemble": "+".join(rest), "dropped": m,
                             **combine.judge(combine.ensemble_values(columns, references, rest), true, latency,
                                             np.ones(len(frame), bool))})
    sweep = None
    if args.label_counts:
        features = {m: columns[m] for m in [*DEFAULT_FEATURES, "proxy_err"] if m in columns}
        prior = frame["default"].to_numpy(float)
        counts = [n for n in args.label_counts if n > 0]
        sweep = combine.label_sweep(space, strs, features, true, latency, counts, args.label_seeds, prior=prior)
        for n in counts:
            first = sweep[(sweep.labels == n) & (sweep.seed == args.label_seeds[0])].iloc[0]
            frame[f"ranker_{n}"] = first["score"]
        ablation_n = 100 if 100 in counts else counts[-1]
        variants = {"no prior (trees on the features alone)": dict(prior=None),
                    "prior only, no features but the encoding": dict(features={}),
                    "prior x10": dict(prior_scale=10.0)}
        extra = []
        for label, kw in variants.items():
            t = combine.label_sweep(space, strs, kw.get("features", features), true, latency, [ablation_n],
                                    args.label_seeds, prior=kw.get("prior", prior),
                                    prior_scale=kw.get("prior_scale"))
            t["variant"] = label
            extra.append(t)
        sweep_ablation = pd.concat(extra, ignore_index=True)
    else:
        sweep_ablation = None
    return {"table": table, "chosen": chosen, "default": default_name, "ablation": pd.DataFrame(ablation),
            "sweep": sweep, "sweep_ablation": sweep_ablation, "select_n": int(select.sum()), "test_n": int(test.sum()),
            "members": list(member_cols), "latency": latency}


def _all_strings(space, truth, dataset: str, frame: pd.DataFrame, table: pd.DataFrame) -> None:
    """Kendall tau and Spearman rho over all arch strings (15,625 for NB201): each string takes its canonical
    cell's score and keeps its own NB201 accuracy (isomorphic strings were trained separately there)."""
    from hwnas.core.stats import rank_correlation

    every = [space.to_str(a) for a in space.all_archs()]
    row_of = {s: i for i, s in enumerate(frame.arch_str)}
    idx = np.array([row_of[space.to_str(space.canonical(space.from_str(s)))] for s in every])
    acc = truth.accuracy(every, dataset)
    taus, rhos = [], []
    for col in table["column"]:
        v = frame[col].to_numpy(float)[idx]
        ok = np.isfinite(v) & np.isfinite(acc)
        r = rank_correlation(v[ok], acc[ok])
        taus.append(r["kendall"])
        rhos.append(r["spearman"])
    table.insert(table.columns.get_loc("spearman_rho") + 1, "kendall_tau_all_strings", taus)
    table.insert(table.columns.get_loc("kendall_tau_all_strings") + 1, "spearman_all_strings", rhos)


def _counts(net, counters) -> tuple[float, float]:
    return counters.flops_m(net), counters.params_m(net)


def _zero_cost_columns(args, space, dataset: str, archs: list, frame: pd.DataFrame, rows: list) -> list[tuple]:
    """Score the sample with every `--zero-cost` signal (a column `zc_<signal>` each, and a row of metrics);
    returns (signal, seconds the cached scores took, evaluated now, from the cache) per signal."""
    from hwnas.evolve.objectives import get_objective
    from hwnas.evolve.sources import Sources
    sources = Sources(space=space, dataset=dataset, data=args.data, zero_cost=args.zero_cost_settings)
    info = []
    for signal in args.zero_cost:
        objective = get_objective(f"zc:{signal}", sources)
        frame[f"zc_{signal}"] = objective(archs)
        scorer = objective.fn if hasattr(objective.fn, "compute_seconds") else None
        keys = [space.to_str(space.canonical(a)) for a in archs]
        info.append((signal, scorer.compute_seconds(keys) if scorer else 0.0, scorer.misses if scorer else 0,
                     scorer.hits if scorer else 0))
        rows.append({"supernet": "-", "mode": "zero-cost", "score": f"zc:{signal}", "column": f"zc_{signal}",
                     **ranking_metrics(frame[f"zc_{signal}"], frame.true_acc)})
    return info


def _per_device(frame: pd.DataFrame, scores: list[str], strs: list[str], dataset: str, hwnasbench) -> pd.DataFrame:
    """Per score and HW-NAS-Bench device: mean and max regret over 20 latency budgets (accuracy points) and
    Kendall tau inside the device's latency classes (cells that tie in latency)."""
    from hwnas.benchmarks.tables.hwnasbench import HW_DEVICES, HWNASBench
    from hwnas.evolve.ranking import regret, tau_within_classes

    try:
        hw = HWNASBench.load(hwnasbench)
    except FileNotFoundError:
        return pd.DataFrame()
    rows = []
    for device in HW_DEVICES:
        key = f"{device}_latency"
        if key not in hw.metrics(dataset):
            continue
        latency = hw.lookup(strs, key, dataset)
        for col in ["true_acc", *scores]:
            r = regret(frame[col], frame.true_acc, latency)
            rows.append({"score": col, "device": device, "mean_regret": r["mean_regret"],
                         "max_regret": r["max_regret"],
                         "tau_within_latency_classes": tau_within_classes(frame[col], frame.true_acc, latency)})
    return pd.DataFrame(rows)


def _scatter(frame: pd.DataFrame, cols: list[str], dataset: str, path: Path) -> None:
    from matplotlib.figure import Figure

    from hwnas.evolve.plot import save_figure

    ncol = min(4, len(cols))
    nrow = -(-len(cols) // ncol)
    fig = Figure(figsize=(4 * ncol, 3.6 * nrow))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for ax, col in zip(axes.flat, cols):
        m = ranking_metrics(frame[col], frame.true_acc)
        ax.scatter(frame[col], frame.true_acc, s=5, alpha=0.4)
        name = col.removeprefix("proxy_")
        xlabel = {"flops_m": "FLOPs (M)"}.get(col, "reference score" if col.startswith("reference_")
                                               else "proxy accuracy (%)")
        ax.set(xlabel=xlabel,
               ylabel=f"NB201 test acc, {dataset} (%)",
               title=f"{name}\ntau {m['kendall_tau']:.3f}, rho {m['spearman_rho']:.3f}")
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path)


def _report(args, dataset, runs, cfgs, table, runs_info, n, per_device, zc_info, combos=None) -> str:
    lines = [
        f"# Ranking: supernet proxies against NAS-Bench-201 ({dataset})",
        "",
        f"- command: `{command('hwnas.benchmarks.ranking', args.argv)}`",
        "- recipes (how the supernets were trained, CPU and GPU): `benchmarks/recipes/README.md`",
        f"- archs: {n} canonical cells (uniform over the isomorphism classes, seed {args.seed}); true = "
        "NB201 200-epoch test accuracy; proxy = accuracy on the first K held-out images (the score column says "
        f"K) with inherited weights; BN `recalibrate` = statistics re-estimated on {args.calib_batches} training "
        "batches, `batch` = each evaluation batch's own statistics",
        "- metrics: Kendall tau-b and Spearman rho over all archs; tau inside the true top 10%; precision at "
        "top 5%; the true accuracy of the score's top-1 and the best among its top-10 / top-100 "
        "(`oracle_best_true` = the best in the sample). Scatter plots: "
        f"`{Path(args.out).with_suffix('.png').name}`, per-arch values: `{Path(args.out).with_suffix('.csv').name}`",
        "",
        "| supernet | recipe | training compute (path-epochs) | training wall time |",
        "|---|---|---|---|",
    ]
    for run_dir, cfg in zip(runs, cfgs):
        wall = _wall_minutes(run_dir)
        lines.append(f"| `{run_dir}` | {_describe(cfg)} | {_path_epochs(cfg)} | "
                     + (f"{wall:.1f} min |" if wall is not None else "- |"))
    for name, path in args.reference:
        lines.append(f"| reference `{name}` | per-arch scores read from `{path}` (not trained here) | - | - |")
    lines += ["", markdown_table(table.drop(columns="column")), ""]
    if runs_info:
        lines += ["Proxy evaluation time (the per-arch seconds stored in the proxy cache, so cached scores count at "
                  "what they cost when computed): " + "; ".join(f"{name}: {s / 60:.1f} min ({m} evaluated now, {h} "
                                                              "from the cache)" for name, s, m, h in runs_info), ""]
    if zc_info:
        lines += [f"Zero-cost signals on the untrained subnet at C={args.zc_channels}, N={args.zc_cells}, batch "
                  f"{args.zc_batch_size} ({args.zc_batches} batches for zico), seed {args.zc_seed}; time to score "
                  "the sample (seconds stored in the cache): " + "; ".join(f"{s}: {sec / 60:.1f} min ({m} now, {h} cached)"
                                                              for s, sec, m, h in zc_info), ""]
    lines += _targets(table, per_device, n)
    if combos:
        lines += _combination_report(combos, n)
    if len(per_device):
        wide = per_device.pivot_table(index="score", columns="device", values="mean_regret", sort=False)
        within = per_device.pivot_table(index="score", columns="device", values="tau_within_latency_classes",
                                        sort=False)
        lines += ["## Regret per device", "",
                  "Mean regret over 20 latency budgets (the 5%..100% quantiles of the device's latency over the "
                  "sample): the best true accuracy within the budget minus the true accuracy of the arch the score "
                  "ranks best within it, in accuracy points (`true_acc` = 0 by construction).", "",
                  markdown_table(wide.reset_index()), "",
                  "## Kendall tau inside each device's latency classes", "",
                  "Cells that tie in latency, ranked by the score against truth (classes of two or more cells, "
                  "weighted by size).", "", markdown_table(within.reset_index()), ""]
    return "\n".join(lines)


#: the label-free proxy's targets (issue 14): Kendall tau over the canonical cells, mean regret on every device (points)
TARGET_TAU, TARGET_REGRET = 0.70, 0.5
#: the few-label ranker's target: Kendall tau with this many labels
TARGET_RANKER_TAU, TARGET_RANKER_LABELS = 0.78, 100


def _combination_report(c: dict, n: int) -> list[str]:
    """The label-free ensembles (selection and test halves), the default's ablation and the label sweep."""
    from hwnas.evolve.objectives.ensemble import members_of
    from hwnas.evolve.sources import REFERENCE_SIZE

    t = c["table"]
    devices = list(c["latency"])
    cols = ["members", "kendall_tau_select", "worst_regret_select", "kendall_tau_test", "worst_regret_test"]
    chosen = c["chosen"]
    lines = ["## Label-free ensembles", "",
             f"Every ensemble (`ensemble:` objective: sum of log percentiles among the fixed reference sample of "
             f"{REFERENCE_SIZE} canonical cells) of 1 to {int(t['size'].max())} of the members {', '.join(f'`{m}`' for m in c['members'])} "
             f"({len(t)} combinations), judged on a random half of the {n} cells (selection, {c['select_n']} cells) "
             f"and on the other half (test, {c['test_n']}). The rule, applied to the selection half only: the "
             f"highest tau among those meeting both targets (tau >= {TARGET_TAU}, every device's mean regret <= "
             f"{TARGET_REGRET}); if none does, the lowest worst-device regret among those within 0.02 of the best "
             f"tau reached with a worst-device regret <= {TARGET_REGRET + 0.5}; else the highest tau.", "",
             f"Chosen: `{chosen['members']}`: selection tau {chosen['kendall_tau_select']:.3f}, worst regret "
             f"{chosen['worst_regret_select']:.2f}; test tau {chosen['kendall_tau_test']:.3f}, worst regret "
             f"{chosen['worst_regret_test']:.2f}. The default proxy of `hwnas search` and `hwnas quickstart` "
             f"(`DEFAULT_PROXY`) is `{c['default']}`"
             + (" (the chosen one)." if set(members_of(c["default"])) == set(chosen["members"].split("+")) else
                " (not the one chosen here: the default is set in code, this run does not change it)."), "",
             "Best 10 by selection-half tau:", "",
             markdown_table(t.sort_values("kendall_tau_select", ascending=False)[cols].head(10)), "",
             "Best 10 by selection-half worst-device regret:", "",
             markdown_table(t.sort_values("worst_regret_select")[cols].head(10)), "",
             "### Ablation: what each member of the default adds", "",
             "The default with one member left out, over all cells (tau, and mean regret per device).", "",
             markdown_table(c["ablation"][["ensemble", "dropped", "kendall_tau", "spearman_rho", "worst_regret",
                                           *[f"regret_{d}" for d in devices]]]), ""]
    sweep = c["sweep"]
    if sweep is not None:
        metrics = ["kendall_tau", "spearman_rho", "worst_regret", *[f"regret_{d}" for d in devices]]
        agg = sweep.groupby("labels")[metrics].agg(["mean", "std"])
        agg.columns = [f"{a}_{b}" for a, b in agg.columns]
        zero = c["ablation"].iloc[0]
        lines += ["## Few labels: the ranker", "",
                  f"LightGBM LambdaRank (`hwnas.evolve.ranker`) trained on n cells drawn at random with their NB201 "
                  f"accuracy, boosted from the default proxy's score, on the canonical encoding and the features "
                  f"{', '.join(f'`{m}`' for m in c['members'] if m != 'proxy_err')}"
                  + (" and `proxy_err`" if "proxy_err" in c["members"] else "")
                  + f"; judged on the cells not labelled; seeds {sorted(set(sweep.seed))}. "
                  f"n = 0 is the default proxy itself (tau {zero['kendall_tau']:.3f}, worst regret "
                  f"{zero['worst_regret']:.2f}, over all cells).", "",
                  markdown_table(agg.reset_index()), ""]
        at = sweep[sweep.labels == TARGET_RANKER_LABELS]
        if len(at):
            tau = at.kendall_tau.mean()
            verdict = "met" if tau >= TARGET_RANKER_TAU else f"missed by {TARGET_RANKER_TAU - tau:.3f}"
            lines += [f"Target: tau >= {TARGET_RANKER_TAU} with {TARGET_RANKER_LABELS} labels: measured "
                      f"{tau:.3f} (mean of {len(at)} seeds): {verdict}.", ""]
        ab = c["sweep_ablation"]
        if ab is not None and len(ab):
            n_ab = int(ab.labels.iloc[0])
            base = sweep[sweep.labels == n_ab].assign(variant="the ranker as shipped")
            both = pd.concat([base, ab], ignore_index=True)
            lines += [f"### Ablation of the ranker at {n_ab} labels (mean over seeds)", "",
                      markdown_table(both.groupby("variant", sort=False)[["kendall_tau", "spearman_rho",
                                                                          "worst_regret"]].mean().reset_index()),
                      ""]
    return lines


def _targets(table: pd.DataFrame, per_device: pd.DataFrame, n: int) -> list[str]:
    """Each score against the targets, as measured here: met or not, and by how much."""
    worst = (per_device.groupby("score").mean_regret.max() if len(per_device) else pd.Series(dtype=float))
    lines = ["## Targets", "",
             f"A label-free proxy should reach Kendall tau >= {TARGET_TAU} over all 6,466 canonical cells and a mean "
             f"regret <= {TARGET_REGRET} points on every device. Measured here on {n} cells"
             + (" (the whole set)." if n >= 6466 else " (a sample, so a first reading, not the verdict)."), "",
             "| score | kendall_tau | tau target | worst device's mean regret | regret target |", "|---|---|---|---|---|"]
    for _, row in table.iterrows():
        label = row["score"] if row["supernet"] in ("-", None) else f"{row['supernet']}: {row['score']}"
        regret = worst.get(row["column"], float("nan"))
        tau_ok = "met" if row["kendall_tau"] >= TARGET_TAU else f"missed by {TARGET_TAU - row['kendall_tau']:.2f}"
        regret_ok = ("-" if regret != regret else "met" if regret <= TARGET_REGRET
                     else f"missed by {regret - TARGET_REGRET:.2f}")
        lines.append(f"| {label} | {row['kendall_tau']:.3f} | {tau_ok} | "
                     + ("-" if regret != regret else f"{regret:.2f}") + f" | {regret_ok} |")
    return lines + [""]


def _reference_scores(refs: dict, arch_strs: list[str]) -> dict[str, tuple[str, list[float]]]:
    """{name: (path, score of each sampled arch)}; a reference that misses one exits with a one-line error."""
    from .tables.reference_scores import scores_for

    try:
        return {name: (path, scores_for(table, arch_strs, name)) for name, (path, table) in refs.items()}
    except ValueError as exc:
        raise SystemExit(f"hwnas.benchmarks.ranking: {exc}") from None


def _proxy_setting(text: str) -> tuple[str, int]:
    """`recalibrate:5000` -> ("recalibrate", 5000), checked."""
    from hwnas.supernet.bn import BN_MODES

    bn, _, images = text.partition(":")
    if bn not in BN_MODES or not images.isdigit() or int(images) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not BN:IMAGES with BN one of {', '.join(BN_MODES)} and "
                                         "IMAGES a positive count, e.g. recalibrate:5000")
    return bn, int(images)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hwnas.benchmarks.ranking", description=__doc__.split("\n\n")[0])
    p.add_argument("--supernet", nargs="*", default=[], help="run folder(s) (runs/NAME), e.g. one per mode")
    p.add_argument("--zero-cost", nargs="*", default=[], metavar="SIGNAL",
                   help="zero-cost signals to rank as well (synflow naswot jacob_cov grad_norm snip zico live_params "
                        "live_flops live_convs conv_depth)")
    zc_keys = add_config_options(p, ZeroCostSettings)
    p.add_argument("--hwnasbench", default=None, help="HW-NAS-Bench pickle for the per-device regret (default: "
                   "$HWNAS_DATA)")
    p.add_argument("--sample", default="1000", help="canonical archs to score, or 'all' (6,466)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--proxy", nargs="+", type=_proxy_setting, default=[("recalibrate", 5000), ("batch", 5000)],
                   metavar="BN:IMAGES", help="ways of scoring, each a BN mode and held-out images per arch "
                   "(default: recalibrate:5000 batch:5000)")
    p.add_argument("--calib-batches", type=int, default=4)
    p.add_argument("--reference", nargs="+", type=reference_arg, default=[], metavar="NAME=FILE",
                   help="per-arch scores from elsewhere to rank beside the supernets (JSON or CSV; see "
                   "benchmarks/tables/reference_scores.py)")
    p.add_argument("--default-proxy", action="store_true",
                   help="also rank each supernet's default proxy (DEFAULT_PROXY with that supernet's proxy_err, "
                        "the zero-cost members at the --zc-* settings)")
    p.add_argument("--max-members", type=int, default=4, help="largest label-free ensemble tried (default 4)")
    p.add_argument("--label-counts", type=int, nargs="*", default=[], metavar="N",
                   help="few-label ranker sweep: labelled cells drawn at random per run, e.g. 0 20 50 100 200 (0 = "
                        "the label-free default)")
    p.add_argument("--label-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="draws per label count")
    p.add_argument("--scores", default=None, help="also write the per-arch scores (arch_str + one column per "
                                                  "signal and combination, `default` = the default proxy) here")
    p.add_argument("--truth", default=None, help="NB201 table or NATS file (default: $HWNAS_DATA)")
    p.add_argument("--data", default=None)
    p.add_argument("--out", default="benchmarks/results/ranking.md", help="report; .csv and .png beside it")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    args.zero_cost_settings = config_from_args(ZeroCostSettings, args, zc_keys)
    if args.sample != "all" and not args.sample.isdigit():
        p.error(f"--sample must be a number or 'all', got '{args.sample}'")
    if args.max_members < 1 or any(n < 0 for n in args.label_counts):
        p.error("--max-members must be >= 1 and --label-counts >= 0")
    args.argv = argv
    print(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
