"""`hwnas space show|tailor`: look at a search space's layout, and tailor its width choices to a device (HTAS)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwnas.core.errors import UsageError

from .common import add_budget_options, add_net_options, add_timing_options, net_from_args, timing_from_args


def _configure_show(p: argparse.ArgumentParser) -> None:
    p.set_defaults(_net=add_net_options(p))


def cmd_show(args: argparse.Namespace) -> int:
    space, net, _ = net_from_args(args, args._net)
    print(f"space {space.name}: {len(space.num_choices)} decisions, {float(space.size):.4g} archs")
    specs = getattr(space, "layer_specs", None)
    if specs is None:
        for i, n in enumerate(space.num_choices):
            print(f"  decision {i}: {n} choices")
        return 0
    print(f"{'layer':>5} {'stage':>5} {'in':>5} {'out':>5} {'stride':>6}  choices")
    for i, spec in enumerate(specs(net["channels"])):
        print(f"{i:>5} {space.layer_stage(i) + 1:>5} {spec.c_in:>5} {spec.c_out:>5} {spec.stride:>6}  "
              f"{' '.join(spec.choices)}")
    return 0


def _configure_tailor(p: argparse.ArgumentParser) -> None:
    p.set_defaults(_net=add_net_options(p), _timing=add_timing_options(p, repeats=20))
    add_budget_options(p, 500e6, None, "a supernet")
    p.add_argument("--groups", type=int, default=8, help="width choices to keep per stage")
    p.add_argument("--min-expansion", type=float, default=2.0, help="smallest expanded width / width")
    p.add_argument("--max-expansion", type=float, default=8.0, help="largest expanded width / width")
    p.add_argument("--step", type=int, default=4, help="candidate widths are multiples of this")
    p.add_argument("--out", default=None, help="JSON report to write (default tailored/<space>_<target>.json; a .png "
                   "plot beside it)")


def cmd_tailor(args: argparse.Namespace) -> int:
    from hwnas.core.datasets import dataset_info
    from hwnas.core.files import atomic_write_json
    from hwnas.evolve.tailor import plot_tailoring, tailor_space
    from hwnas.hardware.measure import check_target, describe_target, measure

    space, net, dataset = net_from_args(args, args._net, size_check=True)
    s = timing_from_args(args, args._timing)
    check_target(args.target)
    if args.groups < 1:
        raise UsageError(f"--groups must be >= 1, got {args.groups}")

    def latency(module, shape):
        return measure(module, args.target, shape, warmup=s.warmup, repeats=s.repeats, threads=s.threads).median_ms
    report = tailor_space(space, latency, net["channels"], args.groups, dataset_info(dataset).input_shape(s.batch_size),
                          progress=not args.quiet, min_expansion=args.min_expansion, max_expansion=args.max_expansion,
                          step=args.step)
    report["target"] = args.target
    report["device"] = describe_target(args.target, s.threads)
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


def register(commands) -> None:
    group = commands.group("space", "search spaces: show a space's layers, or tailor its width choices to a device "
                                    "(HTAS)")
    group.add("show", "the layers, widths, strides and choices of a space", cmd_show, _configure_show)
    group.add("tailor", "time one block per stage over candidate widths on --target and keep the best-scoring "
                        "width of each group (HTAS)", cmd_tailor, _configure_tailor)
