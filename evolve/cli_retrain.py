"""`hwnas retrain`: train one chosen subnet from scratch (resumable) and report its test accuracy, params,
FLOPs and measured CPU latency."""
from __future__ import annotations

import argparse

from evolve.cli_options import add_space_options, space_options_from_args


def _max_images(text: str) -> int | None:
    """`--max-images`: a positive count, or `all` for every image."""
    if text.strip().lower() in ("all", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of images or 'all', got '{text}'") from None


def add_retrain_options(p: argparse.ArgumentParser) -> None:
    """Options of `hwnas retrain`; their defaults are the short CPU recipe (see `supernet.retrain`)."""
    from supernet.data import DATASETS
    from supernet.retrain import RetrainConfig

    d = RetrainConfig(arch="")
    p.add_argument("--config", help="YAML file whose keys are these options (flags given here win)")
    add_space_options(p, default=d.space, tailored=True)
    p.add_argument("--arch", default=None, help="arch string of the subnet (required), e.g. one from a front's "
                   "arch_str column")
    p.add_argument("--dataset", default=d.dataset, help=f"data set ({', '.join(DATASETS)})")
    p.add_argument("--data", default=None, help="data folder (default: $HWNAS_DATA, else ./data)")
    p.add_argument("--download", action="store_true", help="download the data set if it is missing")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"training epochs (default {d.epochs}; NB201: 200)")
    p.add_argument("--channels", type=int, default=d.channels, help=f"C: channels of the first stage (default "
                   f"{d.channels}; NB201: 16)")
    p.add_argument("--cells", type=int, default=d.cells, help=f"N: cells per stage (default {d.cells}; NB201: 5)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"default {d.batch_size}; NB201: 256")
    p.add_argument("--lr", type=float, default=d.lr, help="SGD nesterov learning rate, cosine to 0 (default 0.1)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="default 5e-4")
    p.add_argument("--max-images", type=_max_images, default=d.max_images,
                   help=f"cap on the training and the test images, or 'all' (default {d.max_images}; NB201: all)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="cpu or cuda")
    p.add_argument("--out", default=d.out, help=f"run folder: checkpoint, metrics, result (default {d.out})")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_retrain(args: argparse.Namespace) -> int:
    """Run `hwnas retrain` and print one summary line."""
    from supernet.retrain import RetrainConfig, retrain

    cfg = RetrainConfig(space=args.space, space_options=space_options_from_args(args), arch=args.arch,
                        dataset=args.dataset, epochs=args.epochs, channels=args.channels, cells=args.cells,
                        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                        max_images=args.max_images, seed=args.seed, out=args.out, data=args.data,
                        download=args.download, device=args.device, progress=not args.quiet)
    r = retrain(cfg, resume=args.resume)
    print(f"retrained {r['arch']} ({r['space']}, C={r['channels']}, N={r['cells']}) for {r['epochs']} epochs in "
          f"{r['run']}: test accuracy {r['test_acc']:.2f}%, {r['params_m']:.3f} M params, {r['flops_m']:.1f} MFLOPs, "
          f"CPU latency {r['latency_ms_cpu']:.2f} ms (batch 1, 1 thread), {r['wall_seconds'] / 60:.1f} min")
    return 0
