"""The hardware commands: `hwnas measure`, `hwnas lut build|check`, `hwnas agent serve`.

They wire the search spaces (which know how to build a subnet) to `hwnas.hardware` (which only times and
counts modules), so `hardware` stays free of our other packages.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from hwnas.core.errors import UsageError

from .common import (add_budget_options, add_net_options, add_timing_options, budget_from_args, net_from_args,
                     timing_from_args)


# ------------------------------------------------------------------------------------------ measure
def _configure_measure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", required=True, help="arch string, e.g. '|nor_conv_3x3~0|+|...|'")
    p.set_defaults(_net=add_net_options(p), _timing=add_timing_options(p))
    p.add_argument("--agent", default=None, metavar="URL",
                   help="time on a remote device running `hwnas agent serve` instead of here")
    p.add_argument("--agent-token-file", default=None, help="the agent's token (default: $HWNAS_AGENT_TOKEN)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    add_budget_options(p, 500e6, None, "a subnet")


def cmd_measure(args: argparse.Namespace) -> int:
    from hwnas.hardware import counters
    from hwnas.hardware.measure import describe_target, measure

    space, net, dataset = net_from_args(args, args._net)
    timing_settings = timing_from_args(args, args._timing)
    arch = space.from_str(args.arch)
    from hwnas.core.datasets import dataset_info

    shape = dataset_info(dataset).input_shape(timing_settings.batch_size)
    from hwnas.supernet.limits import check_size

    check_size(space, net["channels"], net["cells"], net["num_classes"], shape[0], shape[1:], budget_from_args(args),
               supernet=False, arch=arch, training=False)
    model = space.build_subnet(arch, **net)
    if args.agent:
        from hwnas.hardware.remote import RemoteDevice
        from hwnas.hardware.tokens import read_token
        from hwnas.supernet.spaces.describe import describe_request

        device = RemoteDevice(args.agent, read_token(args.agent_token_file))
        answer = device.measure(describe_request(space.name, space.to_str(arch), net, shape, timing_settings.warmup,
                                                 timing_settings.repeats, args.target, space_options=space.options))
        timing, where = answer["timing"], answer["device"]
    else:
        timing = measure(model, args.target, shape, warmup=timing_settings.warmup, repeats=timing_settings.repeats,
                         threads=timing_settings.threads).to_dict()
        where = describe_target(args.target, timing_settings.threads)
    out = {"arch": space.to_str(arch), "net": net, "timing": timing, "device": where,
           **counters.count_all(model, shape)}
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    t = timing
    print(f"{out['arch']}  ({space.name}, C={net['channels']}, N={net['cells']}, input {list(shape)})")
    print(f"latency on {t['target']} ({where.get('host', '?')}, {where.get('cpu', '')}, {t['threads']} threads): "
          f"median {t['median_ms']:.3f} ms, IQR {t['iqr_ms']:.3f}, mean {t['mean_ms']:.3f}, CV {t['cv']:.3f} "
          f"over {t['runs']} runs after {t['warmup']} warm-up" + (" [NOISY: CV above threshold]" if t["noisy"] else ""))
    print(f"params {out['params_m']:.3f} M, FLOPs {out['flops_m']:.1f} M, size {out['size_mb']:.2f} MB fp32 / "
          f"{out['size_int8_mb']:.2f} MB int8, peak activations {out['peak_mem_mb']:.2f} MB")
    return 0


# ---------------------------------------------------------------------------------------------- lut
def _lut_common(p: argparse.ArgumentParser, lut_help: str) -> None:
    p.add_argument("--lut", default="luts/cpu.json", help=lut_help)
    p.set_defaults(_net=add_net_options(p), _timing=add_timing_options(p))
    add_budget_options(p, 500e6, None, "a supernet")


def _configure_lut_build(p: argparse.ArgumentParser) -> None:
    _lut_common(p, "table file to write (.json or .csv)")


def _configure_lut_check(p: argparse.ArgumentParser) -> None:
    _lut_common(p, "table file to check (.json or .csv), from `hwnas lut build`")
    p.add_argument("--sample", type=int, default=50, help="how many random canonical archs to measure")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled archs")
    p.add_argument("--out", default=None, help="CSV of predicted vs measured per arch (+ .png scatter)")


def lut_check(space, table, net: dict, shape, sample: int, seed: int, target: str, warmup: int, repeats: int,
              threads: int | None, progress: bool = True):
    """Measure `sample` random canonical archs whole and compare with the table's sums: (DataFrame with
    arch_str, lut_ms, measured_ms; rank_agreement dict)."""
    import numpy as np
    import pandas as pd
    from tqdm.auto import tqdm

    from hwnas.hardware.lut import rank_agreement
    from hwnas.hardware.measure import measure

    rng = np.random.default_rng(seed)
    archs = list(dict.fromkeys(space.canonical(space.sample(rng)) for _ in range(sample * 4)))[:sample]
    rows = []
    for arch in tqdm(archs, desc=f"LUT check on {target}", unit="arch", disable=not progress):
        measured = measure(space.build_subnet(arch, **net), target, shape, warmup=warmup, repeats=repeats,
                           threads=threads).median_ms
        rows.append({"arch_str": space.to_str(arch), "lut_ms": table.predict(space.arch_blocks(arch, **net)),
                     "measured_ms": measured})
    frame = pd.DataFrame(rows)
    return frame, rank_agreement(frame.lut_ms, frame.measured_ms)


def _lut_setup(args: argparse.Namespace):
    from hwnas.core.datasets import dataset_info
    from hwnas.hardware.measure import check_target

    space, net, dataset = net_from_args(args, args._net, size_check=True)
    settings = timing_from_args(args, args._timing)
    check_target(args.target)
    return space, net, dataset_info(dataset).input_shape(settings.batch_size), settings


def cmd_lut_build(args: argparse.Namespace) -> int:
    from hwnas.hardware.lut import build_table

    space, net, shape, s = _lut_setup(args)
    blocks = space.latency_blocks(shape, **net)
    table = build_table(blocks, args.target, warmup=s.warmup, repeats=s.repeats, threads=s.threads,
                        meta={"space": space.name, "space_options": space.options, "net": net,
                              "input_shape": list(shape)},
                        progress=not args.quiet)
    path = table.save(args.lut)
    print(f"wrote {path}: {len(table.entries)} blocks timed on {args.target} "
          f"({table.target['host']}, {table.target['cpu']}, {s.threads} threads)")
    return 0


def cmd_lut_check(args: argparse.Namespace) -> int:
    from hwnas.hardware.lut import LatencyTable

    space, net, shape, s = _lut_setup(args)
    if args.sample < 3:
        raise UsageError(f"--sample must be >= 3 (a rank correlation needs three archs), got {args.sample}")
    table = LatencyTable.load(args.lut)
    if table.meta.get("net") not in (None, net):
        raise UsageError(f"lookup table '{args.lut}' was built for {table.meta['net']}, not {net}; "
                         f"pass the same --channels/--cells/--dataset")
    frame, agree = lut_check(space, table, net, shape, args.sample, args.seed, args.target, s.warmup, s.repeats,
                             s.threads, progress=not args.quiet)
    print(f"LUT {args.lut} vs whole-network latency on {args.target}, {agree['n']} archs: "
          f"Spearman {agree['spearman']:.3f}, Kendall tau-b {agree['kendall']:.3f}, "
          f"median LUT/measured {agree['median_ratio']:.2f}, MAPE {agree['mape_pct']:.1f}%")
    if args.out:
        _save_check(frame, agree, Path(args.out))
    return 0


def _save_check(frame, agree: dict, out: Path) -> None:
    from matplotlib.figure import Figure

    from hwnas.core.files import atomic_write_text
    from hwnas.evolve.plot import save_figure

    atomic_write_text(out.with_suffix(".csv"), frame.to_csv(index=False))
    fig = Figure(figsize=(4.5, 4))
    ax = fig.add_subplot()
    ax.scatter(frame.measured_ms, frame.lut_ms, s=12)
    lim = [0, max(frame.measured_ms.max(), frame.lut_ms.max()) * 1.05]
    ax.plot(lim, lim, "k--", lw=0.8)
    ax.set(xlabel="measured latency (ms)", ylabel="LUT sum (ms)",
           title=f"Spearman {agree['spearman']:.2f}, Kendall {agree['kendall']:.2f}")
    save_figure(fig, out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.png')}")


# -------------------------------------------------------------------------------------------- agent
def _configure_agent_serve(p: argparse.ArgumentParser) -> None:
    from hwnas.hardware.measure import list_targets

    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (127.0.0.1: this machine only; 0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--token-file", required=True, help="file holding the bearer token clients must send")
    p.add_argument("--target", default="cpu", help=f"what the agent times on ({', '.join(list_targets())})")
    p.add_argument("--max-concurrent", type=int, default=4, help="requests handled at once (others wait)")
    p.add_argument("--max-body-bytes", type=int, default=65536, help="larger requests are refused (413)")
    add_budget_options(p, 20e6, 2.0, "a requested subnet (413)")  # supernet.spaces.describe.AGENT_BUDGET
    p.add_argument("--max-connections", type=int, default=64, help="connections open at once; more get 503")
    p.add_argument("--read-timeout", type=float, default=5.0,
                   help="seconds a client has to send its headers and body; slower ones are cut off (408)")
    p.add_argument("--max-request-seconds", type=float, default=120.0,
                   help="refuse (422) a request whose warm-up + repeats would hold the device longer, priced "
                        "by one probe run")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for every measurement")


def cmd_agent_serve(args: argparse.Namespace) -> int:
    from hwnas.hardware.agent import serve
    from hwnas.hardware.measure import check_target
    from hwnas.supernet.spaces.describe import build_described

    check_target(args.target)
    if args.max_concurrent < 1:
        raise UsageError(f"--max-concurrent must be >= 1, got {args.max_concurrent}")
    print(f"hwnas agent: timing on {args.target}; Ctrl-C stops it", file=sys.stderr)
    budget = budget_from_args(args)
    serve(functools.partial(build_described, budget=budget), args.token_file, host=args.host, port=args.port, max_concurrent=args.max_concurrent,
          max_body_bytes=args.max_body_bytes, target=args.target, threads=args.threads,
          max_connections=args.max_connections, read_timeout=args.read_timeout,
          max_request_seconds=args.max_request_seconds,
          ready=lambda url: print(f"hwnas agent ({args.target}) listening on {url}", flush=True))
    return 0


def _configure_lut_fit(p: argparse.ArgumentParser) -> None:
    from .listing import _add_sources_options

    p.add_argument("--target", required=True, help="a device with a per-arch latency table: an HW-NAS-Bench "
                                                   "device (edgegpu, fpga, ...) or a --device-table name")
    p.add_argument("--space", default="nb201", help="search space of the table (default: nb201)")
    p.add_argument("--holdout", type=float, default=0.2, help="share of the archs left out to score the fit")
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out split")
    p.add_argument("--out", required=True, help="per-choice cost table to write (JSON), for "
                                                "`hwnas train --mode fbnet --latency-table`")
    _add_sources_options(p)


def cmd_lut_fit(args: argparse.Namespace) -> int:
    from hwnas.evolve.device_costs import fit_target_costs
    from hwnas.evolve.sources import Sources

    if not 0.0 <= args.holdout < 1.0:
        raise UsageError(f"--holdout must be in [0, 1), got {args.holdout}")
    sources = Sources(space=args.space, dataset=args.dataset, data=args.data, truth=args.truth,
                      hwnasbench=args.hwnasbench, device_tables=args.device_tables, progress=False)
    costs = fit_target_costs(sources, args.target, holdout=args.holdout, seed=args.seed)
    costs.save(args.out)
    fit = costs.fit
    held = (f", held-out R^2 {fit['holdout_r2']:.3f} and Kendall tau {fit['holdout_kendall']:.3f} on "
            f"{fit['holdout_archs']} archs" if "holdout_r2" in fit else "")
    print(f"per-choice latency of {args.target} fitted on {fit['archs']} archs: R^2 {fit['r2']:.3f}{held}; "
          f"written to {args.out}")
    return 0


def register(commands) -> None:
    commands.add("measure", "time one subnet on cpu, cuda, onnxruntime or a remote agent; count params, FLOPs, "
                 "size, memory", cmd_measure, _configure_measure)
    lut = commands.group("lut", "per-block latency lookup tables: build one, or check its sums against measured "
                                "networks")
    lut.add("build", "time every block a subnet of the space can contain (stem, ops per stage, reductions, head)",
            cmd_lut_build, _configure_lut_build)
    lut.add("check", "compare a table's sums with whole-network latency of random archs", cmd_lut_check,
            _configure_lut_check)
    lut.add("fit", "fit a per-choice latency table (one cost per op of each decision) to a device's per-arch "
                   "table, for the fbnet mode", cmd_lut_fit, _configure_lut_fit)
    agent = commands.group("agent", "the measurement agent: serve latency measurements on this device over HTTP")
    agent.add("serve", "serve measurements on this device (bearer token; binds 127.0.0.1 unless --host)",
              cmd_agent_serve, _configure_agent_serve)
