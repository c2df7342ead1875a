"""`hwnas train` (a supernet, accuracy only) and `hwnas retrain` (one chosen subnet from scratch)."""
from __future__ import annotations

import argparse
import logging

from .common import add_config_flag, add_tailored, tailored_space_options
from .options import add_config_options, config_from_args, option_types

log = logging.getLogger("hwnas.cli")


def _configure(config_class):
    """The options of a training command: `--config`, one flag per field of `config_class`, `--tailored`,
    `--resume`."""
    def configure(p: argparse.ArgumentParser) -> None:
        cls = config_class()
        add_config_flag(p)
        p.set_defaults(_keys=add_config_options(p, cls), _types=option_types(cls))
        add_tailored(p)
        p.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")
    return configure


def _train_config():
    from hwnas.supernet.trainer import TrainConfig

    return TrainConfig


def _retrain_config():
    from hwnas.supernet.retrain import RetrainConfig

    return RetrainConfig


def cmd_train(args: argparse.Namespace) -> int:
    from hwnas.supernet.trainer import TrainConfig, train

    cfg = config_from_args(TrainConfig, args, args._keys, progress=not args.quiet)
    cfg.space_options = tailored_space_options(args, cfg.space, cfg.channels)
    result = train(cfg, resume=args.resume)
    print(f"trained {result['mode']} supernet in {result['run']}: held-out accuracy {result['val_acc']:.2f}%")
    if result.get("derived_arch"):
        print(f"derived arch {result['derived_arch']} (identity ops on {result['skip_fraction']:.0%} of decisions)")
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from hwnas.supernet.retrain import RetrainConfig, retrain

    cfg = config_from_args(RetrainConfig, args, args._keys, progress=not args.quiet,
                           arch=args.arch if args.arch is not None else "")
    cfg.space_options = tailored_space_options(args, cfg.space, cfg.channels)
    r = retrain(cfg, resume=args.resume)
    print(f"retrained {r['arch']} ({r['space']}, C={r['channels']}, N={r['cells']}) for {r['epochs']} epochs in "
          f"{r['run']}: test accuracy {r['test_acc']:.2f}%, {r['params_m']:.3f} M params, {r['flops_m']:.1f} MFLOPs, "
          f"CPU latency {r['latency_ms_cpu']:.2f} ms (batch 1, 1 thread), {r['wall_seconds'] / 60:.1f} min")
    return 0


def register(commands) -> None:
    commands.add("train", "train a weight-sharing supernet (accuracy only; resumable)", cmd_train,
                 _configure(_train_config))
    commands.add("retrain", "train one chosen subnet from scratch (resumable)", cmd_retrain,
                 _configure(_retrain_config))
