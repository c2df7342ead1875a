"""`hwnas space show|tailor`: look at a search space's layout, and tailor its width choices to a device."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from evolve.cli_options import (
    add_net_options,
    add_timing_options,
    input_shape_from_args,
    net_from_args,
    space_from_args,
)


def add_space_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["show", "tailor"],
                   help="show: the layers and choices of a space; tailor: pick hardware-tailored widths (HTAS)")
    add_net_options(p)
    add_timing_options(p, repeats=20)
    p.add_argument("--groups", type=int, default=8, help="tailor: width choices to keep per stage")
    p.add_argument("--min-expansion", type=float, default=2.0, help="tailor: smallest expanded width / width")
    p.add_argument("--max-expansion", type=float, default=8.0, help="tailor: largest expanded width / width")
    p.add_argument("--step", type=int, default=4, help="tailor: candidate widths are multiples of this")
    p.add_argument("--out", default=None, help="tailor: JSON report to write (default tailored/<space>_<target>.json;"
                   " a .png plot beside it)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _show(space, net: dict) -> None:
    print(f"space {space.name}: {len(space.num_choices)} decisions, {float(space.size):.4g} archs")
    specs = getattr(space, "layer_specs", None)
    if specs is None:
        for i, n in enumerate(space.num_choices):
            print(f"  decision {i}: {n} choices")
        return
    print(f"{'layer':>5} {'stage':>5} {'in':>5} {'out':>5} {'stride':>6}  choices")
    for i, spec in enumerate(specs(net["channels"])):
        print(f"{i:>5} {space.layer_stage(i) + 1:>5} {spec.c_in:>5} {spec.c_out:>5} {spec.stride:>6}  "
              f"{' '.join(spec.choices)}")


def cmd_space(args: argparse.Namespace) -> int:
    from evolve.tailor import plot_tailoring, tailor_space
    from hardware.measure import check_target, describe_target, measure
    from supernet.atomic import atomic_write_json

    space, net = space_from_args(args), net_from_args(args)
    if args.action == "show":
        _show(space, net)
        return 0
    check_target(args.target)
    if args.groups < 1:
        raise ValueError(f"--groups must be >= 1, got {args.groups}")

    def latency(module, shape):
        return measure(module, args.target, shape, warmup=args.warmup, repeats=args.repeats,
                       threads=args.threads).median_ms
    report = tailor_space(space, latency, net["channels"], args.groups, input_shape_from_args(args), progress=not args.quiet,
                          min_expansion=args.min_expansion, max_expansion=args.max_expansion, step=args.step)
    report["target"] = args.target
    report["device"] = describe_target(args.target, args.threads)
    out = Path(args.out or f"tailored/{space.name}_{args.target}.json")
    atomic_write_json(out, report)
    plot = plot_tailoring(report, out.with_suffix(".png"))
    for st in report["stages"]:
        print(f"stage {st['stage'] + 1} (width {st['width']}, {st['resolution']}x{st['resolution']}): tailored "
              f"{st['chosen']}  uniform {st['uniform']}  (fit {st['fit']['k']:.3g} x^{st['fit']['a']:.2f} + "
              f"{st['fit']['b']:.3g} ms)")
    print(f"wrote {out} and {plot}; train with: hwnas train --space {space.name} --channels {net['channels']} "
          f"--tailored {out}")
    print("space options:", json.dumps(report["space_options"]))
    return 0
