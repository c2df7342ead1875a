"""The hardware commands of `hwnas`: `measure`, `lut build|check`, `agent serve`.

They wire the search spaces (which know how to build a subnet) to `hardware/` (which only times and
counts modules), so `hardware` stays free of our other packages.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evolve.cli_options import (
    add_net_options,
    add_timing_options,
    input_shape_from_args,
    net_from_args,
    space_from_args,
)
from hardware.measure import TARGETS


# ------------------------------------------------------------------------------------------ measure
def add_measure_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", required=True, help="arch string, e.g. '|nor_conv_3x3~0|+|...|'")
    add_net_options(p)
    add_timing_options(p)
    p.add_argument("--agent", default=None, metavar="URL",
                   help="time on a remote device running `hwnas agent serve` instead of here")
    p.add_argument("--agent-token-file", default=None,
                   help="the agent's token (default: $HWNAS_AGENT_TOKEN)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def cmd_measure(args: argparse.Namespace) -> int:
    from hardware import counters
    from hardware.measure import describe_target, measure

    space = space_from_args(args)
    arch = space.from_str(args.arch)
    net, shape = net_from_args(args), input_shape_from_args(args)
    model = space.build_subnet(arch, **net)
    if args.agent:
        from hardware.remote import RemoteDevice, read_token
        from supernet.spaces.describe import describe_request

        device = RemoteDevice(args.agent, read_token(args.agent_token_file))
        answer = device.measure(describe_request(space.name, space.to_str(arch), net, shape, args.warmup,
                                                 args.repeats, args.target))
        timing, where = answer["timing"], answer["device"]
    else:
        timing = measure(model, args.target, shape, warmup=args.warmup, repeats=args.repeats,
                         threads=args.threads).to_dict()
        where = describe_target(args.target, args.threads)
    out = {"arch": space.to_str(arch), "net": net, "timing": timing, "device": where,
           "params_m": counters.params_m(model), "flops_m": counters.flops_m(model, (1, *shape[1:])),
           "size_mb": counters.size_mb(model), "size_int8_mb": counters.size_int8_mb(model),
           "peak_mem_mb": counters.peak_activation_mb(model, shape)}
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
def add_lut_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["build", "check"],
                   help="build: time every block; check: compare the LUT's sums with measured archs")
    p.add_argument("--lut", default="luts/cpu.json", help="table file (.json or .csv): written by build, read by check")
    add_net_options(p)
    add_timing_options(p)
    p.add_argument("--sample", type=int, default=50, help="check: how many random canonical archs to measure")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="check: CSV of predicted vs measured per arch (+ .png scatter)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def lut_check(space, table, net: dict, shape, sample: int, seed: int, target: str, warmup: int, repeats: int,
              threads: int | None, progress: bool = True):
    """Measure `sample` random canonical archs whole and compare with the table's sums: (DataFrame with
    arch_str, lut_ms, measured_ms; rank_agreement dict)."""
    import numpy as np
    import pandas as pd
    from tqdm.auto import tqdm

    from hardware.lut import rank_agreement
    from hardware.measure import measure

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


def cmd_lut(args: argparse.Namespace) -> int:
    from hardware.lut import LatencyTable, build_table
    from hardware.measure import check_target
    space = space_from_args(args)
    net, shape = net_from_args(args), input_shape_from_args(args)
    check_target(args.target)
    if args.action == "build":
        blocks = space.latency_blocks(shape, **net)
        table = build_table(blocks, args.target, warmup=args.warmup, repeats=args.repeats, threads=args.threads,
                            meta={"space": space.name, "space_options": space.options, "net": net,
                                  "input_shape": list(shape)},
                            progress=not args.quiet)
        path = table.save(args.lut)
        print(f"wrote {path}: {len(table.entries)} blocks timed on {args.target} "
              f"({table.target['host']}, {table.target['cpu']}, {args.threads} threads)")
        return 0
    table = LatencyTable.load(args.lut)
    if table.meta.get("net") not in (None, net):
        raise ValueError(f"lookup table '{args.lut}' was built for {table.meta['net']}, not {net}; "
                         f"pass the same --channels/--cells/--dataset")
    frame, agree = lut_check(space, table, net, shape, args.sample, args.seed, args.target, args.warmup,
                             args.repeats, args.threads, progress=not args.quiet)
    print(f"LUT {args.lut} vs whole-network latency on {args.target}, {agree['n']} archs: "
          f"Spearman {agree['spearman']:.3f}, Kendall tau-b {agree['kendall']:.3f}, "
          f"median LUT/measured {agree['median_ratio']:.2f}, MAPE {agree['mape_pct']:.1f}%")
    if args.out:
        _save_check(frame, agree, Path(args.out))
    return 0


def _save_check(frame, agree: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from supernet.atomic import atomic_write_text

    atomic_write_text(out.with_suffix(".csv"), frame.to_csv(index=False))
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(frame.measured_ms, frame.lut_ms, s=12)
    lim = [0, max(frame.measured_ms.max(), frame.lut_ms.max()) * 1.05]
    ax.plot(lim, lim, "k--", lw=0.8)
    ax.set(xlabel="measured latency (ms)", ylabel="LUT sum (ms)",
           title=f"Spearman {agree['spearman']:.2f}, Kendall {agree['kendall']:.2f}")
    from evolve.plot import save_figure

    save_figure(fig, out.with_suffix(".png"))
    plt.close(fig)
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.png')}")


# -------------------------------------------------------------------------------------------- agent
def add_agent_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["serve"], help="serve: run the measurement agent on this device")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--token-file", required=True, help="file holding the bearer token clients must send")
    p.add_argument("--target", default="cpu", help=f"what the agent times on ({', '.join(TARGETS)})")
    p.add_argument("--max-concurrent", type=int, default=4, help="requests handled at once (others wait)")
    p.add_argument("--max-body-bytes", type=int, default=65536, help="larger requests are refused (413)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for every measurement")


def cmd_agent(args: argparse.Namespace) -> int:
    from hardware.agent import serve
    from hardware.measure import check_target
    from supernet.spaces.describe import build_described

    check_target(args.target)
    if args.max_concurrent < 1:
        raise ValueError(f"--max-concurrent must be >= 1, got {args.max_concurrent}")
    print(f"hwnas agent: timing on {args.target}; Ctrl-C stops it", file=sys.stderr)
    serve(build_described, args.token_file, host=args.host, port=args.port, max_concurrent=args.max_concurrent,
          max_body_bytes=args.max_body_bytes, target=args.target, threads=args.threads)
    return 0
