"""What the `hwnas` commands share: console logging, the `--config FILE.yaml` defaults, and the options
that describe a network (space, its options, `--tailored`, C, N, data set) and how it is timed."""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import Any

from hwnas.core.config import option
from hwnas.core.datasets import DATASETS, dataset_info
from hwnas.core.errors import UsageError
from hwnas.core.logs import ROOT
from hwnas.supernet.spaces import SpaceConfig

from .options import add_config_options, config_from_args, parse_space_options


class _TqdmHandler(logging.Handler):
    """Console handler that writes through `tqdm.write`, so log lines never break a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        try:
            msg = self.format(record)
            tqdm.write(msg, file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {msg}"
        if record.levelno < logging.INFO:
            return f"[{record.name}] {msg}"
        return msg


def configure_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Console logging of the `hwnas` loggers: INFO by default, DEBUG with `-v`, WARNING with `--quiet`."""
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if isinstance(h, _TqdmHandler)]:
        logger.removeHandler(handler)
    handler = _TqdmHandler()
    handler.setFormatter(_ConsoleFormatter())
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.setLevel(min(level, logging.INFO))
    logger.propagate = False


def add_verbosity(p: argparse.ArgumentParser) -> None:
    """`-v/--verbose` and `--quiet` (no progress bars, warnings and errors only)."""
    p.add_argument("-v", "--verbose", action="count", default=0, help="more detail in the log (debug messages)")
    p.add_argument("--quiet", action="store_true", help="no progress bars; only warnings and errors")


def add_config_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE.yaml",
                   help="YAML file whose keys are this command's options (flags given here win)")


# ------------------------------------------------------------------------------------------ network
@dataclass
class NetConfig(SpaceConfig):
    """The standalone network a hardware command builds: space, its options, C, N and data set."""

    channels: int = option(16, help="network width C (NB201: 16)")
    cells: int = option(5, help="cells per stage N (NB201: 5)")
    dataset: str = option("cifar10", help="sets classes and input size", choices=DATASETS.list)


def add_tailored(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tailored", default=None, metavar="FILE.json",
                   help="hardware-tailored width choices from `hwnas space tailor` (their space options; "
                        "--space-option flags win)")


def add_net_options(p: argparse.ArgumentParser) -> list[str]:
    """The `NetConfig` flags plus `--tailored`."""
    keys = add_config_options(p, NetConfig)
    add_tailored(p)
    return keys


def tailored_space_options(args: argparse.Namespace, space: str, channels: int) -> dict[str, Any]:
    """The space options the flags ask for: a `--tailored` report's (checked against the space and C), then
    every `--space-option` on top."""
    options = parse_space_options(getattr(args, "space_options", None))
    if getattr(args, "tailored", None):
        from hwnas.evolve.tailor import load_tailored

        options = {**load_tailored(args.tailored, space, channels), **options}
    return options


def net_from_args(args: argparse.Namespace, keys: list[str], size_check: bool = False):
    """(space, net options for `build_subnet`, data set) from the `add_net_options` flags, counts checked;
    `size_check`: the supernet at these sizes checked against the `add_budget_options` flags' budget too
    (commands that build every block: `lut build`, `space tailor`)."""
    from hwnas.supernet.spaces import get_space

    cfg = config_from_args(NetConfig, args, keys)
    for name in ("channels", "cells"):
        if getattr(cfg, name) < 1:
            raise UsageError(f"--{name} must be >= 1, got {getattr(cfg, name)}")
    info = dataset_info(cfg.dataset)
    space = get_space(cfg.space, **tailored_space_options(args, cfg.space, cfg.channels))
    if size_check:
        from hwnas.supernet.limits import check_size

        check_size(space, cfg.channels, cfg.cells, info.num_classes, 1, info.input_shape()[1:], budget_from_args(args),
                   training=False)
    return space, {"channels": cfg.channels, "cells": cfg.cells, "num_classes": info.num_classes}, cfg.dataset


def add_budget_options(p: argparse.ArgumentParser, max_params: float, max_memory_gb: float | None,
                       what: str = "a network") -> None:
    """`--max-params` and `--max-memory-gb`: the size budget checked before anything is built."""
    p.add_argument("--max-params", type=float, default=max_params,
                   help=f"refuse {what} with more parameters than this, counted before it is built")
    p.add_argument("--max-memory-gb", type=float, default=max_memory_gb,
                   help=f"refuse {what} whose estimated memory (weights and every layer's output at the batch "
                        "size) is above this many GB (default: this machine's memory)"
                   if max_memory_gb is None else f"refuse {what} whose estimated memory is above this many GB")


def budget_from_args(args: argparse.Namespace):
    """The `SizeBudget` of the `add_budget_options` flags (checked)."""
    from hwnas.supernet.limits import SizeBudget

    return SizeBudget(max_params=args.max_params, max_memory_gb=args.max_memory_gb).validate()


def add_timing_options(p: argparse.ArgumentParser, repeats: int = 50) -> list[str]:
    """Where and how latency is timed: `--target`, and `MeasureSettings`' batch size, warm-up and timed runs,
    threads."""
    from hwnas.evolve.objectives.measured import MeasureSettings
    from hwnas.hardware.measure import list_targets

    p.add_argument("--target", default="cpu", help=f"where to time ({', '.join(list_targets())})")
    return add_config_options(p, MeasureSettings, defaults={"repeats": repeats})


def timing_from_args(args: argparse.Namespace, keys: list[str]):
    """The `MeasureSettings` the timing flags ask for, counts checked."""
    from hwnas.evolve.objectives.measured import MeasureSettings

    settings = config_from_args(MeasureSettings, args, keys)
    if settings.batch_size < 1 or settings.repeats < 1 or settings.warmup < 0:
        raise UsageError(f"need --batch-size >= 1, --repeats >= 1 and --warmup >= 0; got {settings.batch_size}, "
                         f"{settings.repeats}, {settings.warmup}")
    from hwnas.hardware.measure import check_threads

    check_threads(settings.threads)
    return settings
