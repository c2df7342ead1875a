"""How fast does each training mode train the NB201 supernet? Training images per second of
`mode.train_step` for SPOS, DARTS (first and second order) and GDAS, on CPU or one GPU.

    python -m hwnas.benchmarks.train_speed [--device cpu|cuda] [--steps 10] [--warmup 2] [--min-seconds 10]
                                     [--threads N] [--data auto|real|synthetic]
                                     [--channels 16 --cells 5 --batch-size 64]
                                     [--out benchmarks/results/train_speed.md]

The supernet, weight optimizer and mode are built as `supernet.trainer.build_run` builds them (that very
function when real data is used). Batches are CIFAR-10 from $HWNAS_DATA when it holds the prepared data
(`--data real`), else random tensors of CIFAR shape (`--data synthetic`; compute does not depend on pixel
values); either way they are made before timing, so only `train_step` is timed. Bilevel modes (DARTS,
GDAS) also get a held-out batch per step for their architecture update; it is not counted as a training
image. Writes a markdown table with the machine, the exact command and each mode's ratio to SPOS.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time

import torch

from hwnas.core.datasets import dataset_info
from hwnas.core.files import atomic_write_text
from hwnas.core.paths import data_root
from hwnas.hardware.measure import describe_target
from hwnas.supernet.modes import get_mode
from hwnas.supernet.spaces import get_space
from hwnas.supernet.trainer import TrainConfig, build_run

MODES = (("spos", "spos", 1), ("darts (1st order)", "darts", 1), ("darts (2nd order)", "darts", 2),
         ("gdas", "gdas", 1))


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def _has_real_data() -> bool:
    return (data_root() / dataset_info("cifar10").folder).is_dir()


def _build(cfg: TrainConfig, n_batches: int, data: str):
    """(model, mode, [(x, y, val)]) for `cfg`, with `n_batches` batches ready on the device."""
    if data == "real":
        cfg.max_images = n_batches * cfg.batch_size
        _, model, _, _, mode, batches = build_run(cfg)
        train = list(batches["train"])
        val = list(batches["val"])
        assert len(train) == len(val) == n_batches
    else:  # the model-building part of build_run, without loading a data set
        space = get_space(cfg.space)
        torch.manual_seed(cfg.seed)
        model = space.build_supernet(channels=cfg.channels, cells=cfg.cells, num_classes=10).to(cfg.device)
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                                    weight_decay=cfg.weight_decay)
        mode = get_mode(cfg.mode)(model, space, optimizer, seed=cfg.seed, order=cfg.order,
                                  arch_lr=cfg.arch_lr)
        g = torch.Generator().manual_seed(cfg.seed)

        def batch():
            return (torch.randn(cfg.batch_size, 3, 32, 32, generator=g).to(cfg.device),
                    torch.randint(0, 10, (cfg.batch_size,), generator=g).to(cfg.device))

        train = [batch() for _ in range(n_batches)]
        val = [batch() for _ in range(n_batches)]
    # The trainer's memory layout (channels-last by default), for the model and every batch alike.
    layout = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(memory_format=layout)
    fmt = lambda t: t.contiguous(memory_format=layout)  # noqa: E731
    return model, mode, [(fmt(x), y, (fmt(v[0]), v[1]) if mode.bilevel else None)
                         for (x, y), v in zip(train, val)]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_mode(name: str, order: int, args: argparse.Namespace) -> dict:
    cfg = TrainConfig(mode=name, order=order, channels=args.channels, cells=args.cells,
                      batch_size=args.batch_size, device=args.device, progress=False)
    model, mode, steps = _build(cfg, args.warmup + args.steps, args.data)
    model.train()
    mode.on_epoch_start(0, 1)
    for x, y, val in steps[:args.warmup]:
        mode.train_step(x, y, val)
    _sync(args.device)
    timed = steps[args.warmup:]
    done, t0, per_step = 0, time.perf_counter(), []
    # At least --steps steps and --min-seconds (cycling over the prepared batches): SPOS and GDAS sample
    # a different cell each step, so cheap modes need more steps for a steady mean.
    while done < args.steps or time.perf_counter() - t0 < args.min_seconds:
        x, y, val = timed[done % len(timed)]
        t = time.perf_counter()
        loss, _ = mode.train_step(x, y, val)  # .item() inside syncs each step on CUDA, as in the trainer
        per_step.append(time.perf_counter() - t)
        done += 1
    _sync(args.device)
    seconds = time.perf_counter() - t0
    images = done * args.batch_size
    return {"seconds": seconds, "steps": done, "images": images, "images_per_s": images / seconds,
            "ms_per_step": 1000 * seconds / done, "median_ms": 1000 * statistics.median(per_step),
            "loss": loss}


def run(args: argparse.Namespace) -> str:
    rows = []
    for label, name, order in MODES:
        r = time_mode(name, order, args)
        rows.append((label, r))
        print(f"{label:<18} {r['images_per_s']:8.1f} img/s  ({r['ms_per_step']:.0f} ms/step, "
              f"{r['steps']} steps in {r['seconds']:.1f} s)", flush=True)
    spos = rows[0][1]["images_per_s"]

    if args.device.startswith("cuda"):
        device = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    else:
        device = f"CPU: {describe_target('cpu')['cpu']}, {os.cpu_count()} logical cores"
    command = "python -m hwnas.benchmarks.train_speed" + "".join(" " + shlex.quote(a) for a in sys.argv[1:])
    data = ("CIFAR-10 batches from $HWNAS_DATA (augmented, as the trainer makes them)" if args.data == "real"
            else "random tensors of CIFAR shape (3x32x32, 10 classes); speed does not depend on pixel values")
    lines = [
        "# Supernet training speed per mode",
        "",
        f"NB201 supernet, C={args.channels}, N={args.cells} cells per stage, batch {args.batch_size}, "
        f"{args.warmup} warm-up steps, then at least {args.steps} timed steps and {args.min_seconds:g} s of "
        "`mode.train_step` per mode (weights built as "
        "`supernet.trainer.build_run` builds them). Images/s counts training images; DARTS and GDAS also run "
        "one held-out batch per step for their architecture update, which is not counted.",
        "",
        "| mode | training images/s | mean ms/step | median ms/step | timed steps | ratio to SPOS |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, r in rows:
        lines.append(f"| {label} | {r['images_per_s']:.1f} | {r['ms_per_step']:.0f} | {r['median_ms']:.0f} | "
                     f"{r['steps']} | "
                     f"{r['images_per_s'] / spos:.2f} |")
    lines += [
        "",
        "## Machine and command",
        "",
        f"- device: {device}",
        f"- torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, "
        f"Python {platform.python_version()}",
        f"- load average (1, 5, 15 min) at the start: {args.load_start}; at the end: {_load()}",
        f"- data: {data}",
        f"- command: `{command}`",
        "",
        "SPOS trains one random path per step (no op for `none` or dead edges), so its cost varies with the "
        "sampled cell; DARTS runs every op on every edge twice per step (arch step on a held-out batch, then "
        "the weight step), and its second order adds a virtual step and two more passes for the "
        "finite-difference Hessian term; GDAS runs one op per edge (dead edges included) for the weights and "
        "again for its arch step. On a shared CPU the median step is the steadier number.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hwnas.benchmarks.train_speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per mode first")
    p.add_argument("--min-seconds", type=float, default=10.0, help="keep timing each mode at least this long")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--cells", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--data", choices=("auto", "real", "synthetic"), default="auto",
                   help="auto: real CIFAR-10 when the data root ($HWNAS_DATA, else ./data) holds it, else synthetic")
    p.add_argument("--out", default="benchmarks/results/train_speed.md")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch.cuda.is_available() is False here; use --device cpu",
              file=sys.stderr)
        return 2
    sizes = (args.steps, args.channels, args.cells, args.batch_size)
    if min(sizes) < 1 or min(args.warmup, args.min_seconds) < 0:
        print("error: --steps, --channels, --cells, --batch-size must be >= 1; --warmup, --min-seconds >= 0",
              file=sys.stderr)
        return 2
    if args.data == "auto":
        args.data = "real" if _has_real_data() else "synthetic"
    elif args.data == "real" and not _has_real_data():
        print("error: --data real needs cifar-10-batches-py/ in the data root ($HWNAS_DATA, else ./data)", file=sys.stderr)
        return 2
    if args.threads is not None:
        if args.threads < 1:
            print(f"error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
            return 2
        torch.set_num_threads(args.threads)
    args.load_start = _load()
    report = run(args)
    atomic_write_text(args.out, report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
