"""Command-line options that several `hwnas` commands share: the search space and its options, the network a
space builds, and how latency is timed. Each `add_*` function adds its flags to a parser; the matching
`*_from_args` function turns the parsed flags into what the code needs, with a one-line ValueError for a bad
value."""
from __future__ import annotations

import argparse
import json
from typing import Any, Sequence

DATASET_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


def parse_space_options(items: Sequence[str] | None) -> dict[str, Any]:
    """`KEY=JSON` strings (`stages=[[1,1,1]]`, `hidden="narrow"`) as a dict of space options; ValueError
    naming the bad item."""
    options: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"--space-option '{item}' must look like KEY=JSON, e.g. 'stages=[[1,1,1]]'")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--space-option '{item}': the value is not JSON ({exc.msg}); "
                             f"e.g. {key}='[[1,1,1]]' or, for a string, {key}='\"text\"'") from None
    return options


def add_space_options(p: argparse.ArgumentParser, default: str = "nb201", tailored: bool = False) -> None:
    """`--space`, repeatable `--space-option KEY=JSON` and, with `tailored`, `--tailored FILE.json`."""
    from supernet.spaces import list_spaces

    p.add_argument("--space", default=default, help=f"search space ({', '.join(list_spaces())})")
    p.add_argument("--space-option", action="append", default=[], metavar="KEY=JSON",
                   help="an option of the space, its value as JSON (repeatable), e.g. 'stages=[[1.5,2,1],[2,2,2]]'")
    if tailored:
        p.add_argument("--tailored", default=None, metavar="FILE.json",
                       help="hardware-tailored width choices from `hwnas space tailor` (their space options; "
                            "--space-option flags win)")


def space_options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The space options the flags ask for: a `--tailored` report's (checked against --space and --channels),
    then every `--space-option` on top."""
    options = parse_space_options(args.space_option)
    if getattr(args, "tailored", None):
        from evolve.tailor import load_tailored

        options = {**load_tailored(args.tailored, args.space, args.channels), **options}
    return options


def space_from_args(args: argparse.Namespace):
    """The search space named by `--space` with its options."""
    from supernet.spaces import get_space

    return get_space(args.space, **space_options_from_args(args))


def add_net_options(p: argparse.ArgumentParser) -> None:
    """The space (as `add_space_options`, `--tailored` included) and the network it builds: C, N, data set."""
    add_space_options(p, tailored=True)
    p.add_argument("--channels", type=int, default=16, help="network width C (NB201: 16)")
    p.add_argument("--cells", type=int, default=5, help="cells per stage N (NB201: 5)")
    p.add_argument("--dataset", default="cifar10",
                   help=f"sets classes and input size ({', '.join(DATASET_CLASSES)})")


def net_from_args(args: argparse.Namespace) -> dict:
    """`{"channels", "cells", "num_classes"}` for `SearchSpace.build_subnet`, after checking the counts."""
    if args.dataset not in DATASET_CLASSES:
        raise ValueError(f"unknown data set '{args.dataset}'; valid: {', '.join(DATASET_CLASSES)}")
    for name in ("channels", "cells", "batch_size", "repeats"):
        if getattr(args, name, 1) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return {"channels": args.channels, "cells": args.cells, "num_classes": DATASET_CLASSES[args.dataset]}


def add_timing_options(p: argparse.ArgumentParser, repeats: int = 50) -> None:
    """Where and how latency is timed: target, batch size, warm-up and timed runs, threads."""
    from hardware.measure import TARGETS

    p.add_argument("--target", default="cpu", help=f"where to time ({', '.join(TARGETS)})")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first")
    p.add_argument("--repeats", type=int, default=repeats, help="timed runs")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (cpu and onnxruntime targets)")


def input_shape_from_args(args: argparse.Namespace) -> tuple[int, ...]:
    """The timed input's shape: `--batch-size` images of `--dataset`'s size."""
    from evolve.measured import input_shape

    return input_shape(args.dataset, args.batch_size)
