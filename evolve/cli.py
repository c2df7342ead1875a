"""The `hwnas` command line: train a supernet, search fronts per device, plot, quickstart.

Every bad value ends in one line `hwnas: error: ...` naming it and the valid ones, and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

_USER_ERRORS = (ValueError, FileNotFoundError, KeyError, FloatingPointError)


def _fail(msg: str) -> None:
    print(f"hwnas: error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def _load_yaml(path: str) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        _fail(f"config file '{path}' not found")
    try:
        values = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        _fail(f"config file '{path}' is not valid YAML ({str(exc).splitlines()[0]})")
    if not isinstance(values, dict):
        _fail(f"config file '{path}' must hold a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def _apply_config(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse argv; options from `--config FILE.yaml` become defaults, so flags on the line override them."""
    pre, _ = parser.parse_known_args(argv)
    if getattr(pre, "config", None):
        values = _load_yaml(pre.config)
        dests = {a.dest for a in parser._actions} - {"help", "config", "func"}
        bad = sorted(set(values) - dests)
        if bad:
            _fail(f"unknown option '{bad[0]}' in {pre.config}; valid: {', '.join(sorted(dests))}")
        parser.set_defaults(**values)
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------- train
def _add_train_options(p: argparse.ArgumentParser) -> None:
    from supernet.data import DATASETS
    from supernet.modes import list_modes
    from supernet.spaces import list_spaces

    p.add_argument("--config", help="YAML file whose keys are these options (flags given here win)")
    p.add_argument("--space", default="nb201", help=f"search space ({', '.join(list_spaces())})")
    p.add_argument("--mode", default="spos", help=f"training mode ({', '.join(list_modes())})")
    p.add_argument("--order", type=int, default=1, help="DARTS order: 1 or 2 (finite-difference Hessian)")
    p.add_argument("--dataset", default="cifar10", help=f"data set ({', '.join(DATASETS)})")
    p.add_argument("--data", default=None, help="data folder (default: $HWNAS_DATA, else ./data)")
    p.add_argument("--download", action="store_true", help="download the data set if it is missing")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--channels", type=int, default=16, help="C: channels of the first stage")
    p.add_argument("--cells", type=int, default=5, help="N: cells per stage")
    p.add_argument("--max-images", type=int, default=None,
                   help="cap each split (train and held-out) at this many images, for small CPU runs")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.025, help="weight learning rate (SGD nesterov, cosine)")
    p.add_argument("--arch-lr", type=float, default=3e-4, help="architecture learning rate (Adam; DARTS/GDAS)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", default="runs/default", help="run folder (checkpoint, metrics, result)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _train_config(args: argparse.Namespace):
    from supernet.trainer import TrainConfig

    return TrainConfig(space=args.space, mode=args.mode, order=args.order, dataset=args.dataset, data=args.data,
                       download=args.download,
                       epochs=args.epochs, channels=args.channels, cells=args.cells, max_images=args.max_images,
                       batch_size=args.batch_size, lr=args.lr, arch_lr=args.arch_lr, seed=args.seed,
                       device=args.device, out=args.out, progress=not args.quiet)


def cmd_train(args: argparse.Namespace) -> int:
    from supernet.trainer import train

    result = train(_train_config(args), resume=args.resume)
    print(f"trained {result['mode']} supernet in {result['run']}: held-out accuracy {result['val_acc']:.2f}%")
    if result.get("derived_arch"):
        print(f"derived arch {result['derived_arch']} (skip_connect on {result['skip_fraction']:.0%} of edges)")
    if result.get("warning"):
        print(f"warning: {result['warning']}")
    return 0


# ------------------------------------------------------------------------------------------- parser
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "train": ("train a weight-sharing supernet (accuracy only)", _add_train_options, cmd_train),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwnas",
        description="Hardware-aware NAS: train a supernet once, then search a Pareto front per device.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_options, func) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_options(p)
        p.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hwnas` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)
        parser.print_help()
        return 0 if argv else 2
    sub = parser._subparsers._group_actions[0].choices[argv[0]]
    args = _apply_config(sub, argv[1:])
    try:
        return int(args.func(args) or 0)
    except _USER_ERRORS as exc:
        msg = exc.args[0] if exc.args else str(exc)
        _fail(str(msg).splitlines()[0] if msg else type(exc).__name__)
    except KeyboardInterrupt:
        _fail("interrupted; the last finished epoch's checkpoint is intact (use --resume)")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
