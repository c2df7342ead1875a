"""How fast does each training mode train the NB201 supernet, against the reference implementation?
Training images per second of one training step (the weight step, plus for DARTS and GDAS the architecture
step on a held-out batch) for SPOS, DARTS (first order) and GDAS, on CPU or one GPU.

    python -m hwnas.benchmarks.train_speed [--reference-src DIR] [--device cpu|cuda] [--steps 10] [--warmup 2]
        [--min-seconds 10] [--threads N] [--data auto|real|synthetic] [--channels 16 --cells 5 --batch-size 64]
        [--out benchmarks/results/train_speed.md]

For each mode: the plain path (no speed-up), each exact speed-up of `supernet.nb201_net.SPEEDUPS` alone (an
ablation row with its gain over plain) and all of them (what `hwnas train` runs); each speed-up's loss and
gradients on one fixed batch are compared with the plain path's. With `--reference-src DIR` (a local
checkout of AutoDL-Projects, the reference implementation of NB201's SPOS/DARTS/GDAS baselines; nothing of it
is part of hwnas), its networks and search-loop steps are timed in the same process on the same batches,
before and after ours (reference, ours, reference), and each of our rows is reported against both.

The supernet, weight optimizer and mode are built as `supernet.trainer.build_run` builds them (that very
function when real data is used). Batches are CIFAR-10 from $HWNAS_DATA when it holds the prepared data
(`--data real`), else random tensors of CIFAR shape (`--data synthetic`; compute does not depend on pixel
values); either way they are made before timing, so only the steps are timed.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from hwnas.core.datasets import dataset_info
from hwnas.core.files import atomic_write_text
from hwnas.core.paths import data_root
from hwnas.hardware.measure import describe_target
from hwnas.supernet.modes import get_mode
from hwnas.supernet.nb201_net import SPEEDUPS
from hwnas.supernet.spaces import get_space
from hwnas.supernet.trainer import TrainConfig, build_run



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


def time_steps(step, steps, args: argparse.Namespace) -> dict:
    """Time `step(x, y, val)` over the prepared batches: `--warmup` untimed steps, then at least `--steps`
    steps and `--min-seconds` (cycling over the batches: SPOS and GDAS sample a different cell each step, so
    cheap modes need more steps for a steady mean)."""
    for x, y, val in steps[:args.warmup]:
        step(x, y, val)
    _sync(args.device)
    timed = steps[args.warmup:]
    done, t0, per_step = 0, time.perf_counter(), []
    while done < args.steps or time.perf_counter() - t0 < args.min_seconds:
        x, y, val = timed[done % len(timed)]
        t = time.perf_counter()
        step(x, y, val)  # the loss's .item() syncs each step on CUDA, as in the trainer
        per_step.append(time.perf_counter() - t)
        done += 1
    _sync(args.device)
    seconds = time.perf_counter() - t0
    images = done * args.batch_size
    return {"seconds": seconds, "steps": done, "images": images, "images_per_s": images / seconds,
            "ms_per_step": 1000 * seconds / done, "median_ms": 1000 * statistics.median(per_step)}


def ours(name: str, order: int, speedups, args: argparse.Namespace):
    """(step function, prepared batches) of hwnas's `mode.train_step` with these NB201 speed-ups."""
    cfg = TrainConfig(mode=name, order=order, channels=args.channels, cells=args.cells,
                      batch_size=args.batch_size, device=args.device, progress=False)
    model, mode, steps = _build(cfg, args.warmup + args.steps, args.data)
    model.speedups = speedups
    model.train()
    mode.on_epoch_start(0, 1)
    return (lambda x, y, val: mode.train_step(x, y, val)), steps


def reference(kind: str, args: argparse.Namespace, steps):
    """The step of AutoDL-Projects' NB201 search loop for `kind` (spos, darts, gdas) on its own network, as
    its `exps/NAS-Bench-201-algos` scripts run it: RANDOM-NAS (a new random genotype, then the weight step
    with clipping at 5), DARTS-V1 and GDAS (the weight step on the training batch, then the architecture
    step on the held-out batch: Adam on the arch parameters, lr 3e-4, as in the papers)."""
    sys.path.insert(0, str(args.reference_src))
    try:
        from xautodl.models.cell_operations import SearchSpaceNames
        from xautodl.models.cell_searchs import TinyNetworkDarts, TinyNetworkGDAS, TinyNetworkRANDOM
    except ImportError as exc:
        raise SystemExit(f"error: --reference-src {args.reference_src} holds no importable xautodl ({exc})")
    ops = SearchSpaceNames["nas-bench-201"]
    cls = {"spos": TinyNetworkRANDOM, "darts": TinyNetworkDarts, "gdas": TinyNetworkGDAS}[kind]
    torch.manual_seed(0)
    random.seed(0)
    net = cls(args.channels, args.cells, 4, 10, ops, False, True).to(args.device)
    net = net.to(memory_format=torch.channels_last)  # the layout ours trains in, so only the code differs
    weights = net.get_weights() if hasattr(net, "get_weights") else list(net.parameters())
    w_opt = torch.optim.SGD(weights, lr=0.025, momentum=0.9, nesterov=True, weight_decay=5e-4)
    a_opt = (torch.optim.Adam(net.get_alphas(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
             if kind != "spos" else None)
    criterion = torch.nn.CrossEntropyLoss()
    net.train()

    def step(x, y, val):
        if kind == "spos":
            net.random_genotype(True)
        w_opt.zero_grad()
        loss = criterion(net(x)[1], y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5)
        w_opt.step()
        if a_opt is not None:
            a_opt.zero_grad()
            criterion(net(val[0])[1], val[1]).backward()
            a_opt.step()
        return loss.item()
    return step, steps


def _loss_and_grads(name: str, order: int, speedups, args: argparse.Namespace, dtype=torch.float32):
    """The weight step's loss and gradients (weights and architecture parameters) on one fixed batch, before
    any step: the mixture (DARTS), the GDAS sample or the SPOS path of this seed, in `dtype`."""
    cfg = TrainConfig(mode=name, order=order, channels=args.channels, cells=args.cells,
                      batch_size=args.batch_size, device=args.device, progress=False)
    model, mode, steps = _build(cfg, 1, args.data)
    model.to(dtype)
    for p in mode.arch_parameters():
        p.data = p.data.to(dtype)
    model.speedups = speedups
    model.train()
    mode.on_epoch_start(0, 1)
    x, y, _ = steps[0]
    x = x.to(dtype)
    params = [p for p in model.parameters()] + list(mode.arch_parameters())
    if name == "spos":
        logits = model(x, mode.sample_arch())
    elif name == "darts":
        logits = model(x, weights=mode.weights())
    else:
        logits = model(x, hard=mode.sample())
    loss = torch.nn.functional.cross_entropy(logits, y)
    g = torch.autograd.grad(loss, params, allow_unused=True)
    return float(loss.detach()), [(t if t is not None else torch.zeros_like(p)).double() for t, p in zip(g, params)]


def _difference(a, b) -> float:
    """Largest difference of the loss (relative) and of any gradient (relative to `a`'s largest gradient)."""
    largest = max(float(t.abs().max()) for t in a[1])
    return max([abs(b[0] - a[0]) / abs(a[0])] + [float((v - u).abs().max()) / largest for u, v in zip(a[1], b[1])])


def check_equal(name: str, order: int, speedups, args: argparse.Namespace) -> tuple[float, float]:
    """(difference between the plain path and `speedups`, difference between the plain path in float32 and in
    float64): the second is float32's own rounding at this depth, the yardstick for the first."""
    plain = _loss_and_grads(name, order, frozenset(), args)
    exact = _loss_and_grads(name, order, frozenset(), args, torch.float64)
    return _difference(plain, _loss_and_grads(name, order, speedups, args)), _difference(exact, plain)


#: (row label, mode, order, reference kind) of the modes timed
TIMED = (("spos", "spos", 1, "spos"), ("darts (1st order)", "darts", 1, "darts"), ("gdas", "gdas", 1, "gdas"))
#: the speed-ups that change something in each mode's forward passes
APPLIES = {"spos": ("shared_relu",), "darts": ("shared_relu", "scaled_bn", "sum_from_first"),
           "gdas": ("shared_relu", "scaled_bn", "sum_from_first", "scalar_none")}


def _checks(name: str, order: int, speedups, args: argparse.Namespace) -> dict:
    if not speedups:
        return {"max_rel_diff_vs_plain": "-", "float32_rounding_of_plain": "-"}
    diff, rounding = check_equal(name, order, speedups, args)
    return {"max_rel_diff_vs_plain": f"{diff:.1e}", "float32_rounding_of_plain": f"{rounding:.1e}"}


def run(args: argparse.Namespace) -> str:
    rows = []
    for label, name, order, kind in TIMED:
        variants = [("plain", frozenset())] + [(f"+ {s} alone", frozenset({s})) for s in APPLIES[name]] + \
                   [("all (default)", SPEEDUPS)]
        timed = {}
        step, steps = ours(name, order, SPEEDUPS, args)
        if args.reference_src:  # reference, ours (each variant), reference
            ref_step, _ = reference(kind, args, steps)
            timed["reference (before)"] = time_steps(ref_step, steps, args)
        for vlabel, sp in variants:
            step, steps = ours(name, order, sp, args)
            timed[vlabel] = time_steps(step, steps, args)
            print(f"{label:<18} {vlabel:<24} {timed[vlabel]['images_per_s']:8.1f} img/s", flush=True)
        if args.reference_src:
            ref_step, _ = reference(kind, args, steps)
            timed["reference (after)"] = time_steps(ref_step, steps, args)
        plain = timed["plain"]["images_per_s"]
        refs = [timed[k]["images_per_s"] for k in ("reference (before)", "reference (after)") if k in timed]
        for vlabel, r in timed.items():
            sp = dict(variants).get(vlabel)
            rate = r["images_per_s"]
            rows.append({"mode": label, "variant": vlabel, "images_per_s": rate, "median_ms_per_step": r["median_ms"],
                         "steps": r["steps"], "gain_over_plain": rate / plain,
                         "ours_over_reference": (f"{rate / max(refs):.2f}-{rate / min(refs):.2f}" if refs and sp is not None
                                                 else "-"),
                         **_checks(name, order, sp, args)})
    return _report(rows, args)


def _reference_version(src: str | None) -> str:
    if not src:
        return "not given (--reference-src DIR: a checkout of AutoDL-Projects)"
    import subprocess

    done = subprocess.run(["git", "-C", src, "log", "-1", "--format=%H %cs"], capture_output=True, text=True)
    commit = done.stdout.strip() if done.returncode == 0 else "not a git checkout: commit unknown"
    return f"AutoDL-Projects at {src} (commit {commit})"


def _report(rows: list[dict], args: argparse.Namespace) -> str:
    if args.device.startswith("cuda"):
        device = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    else:
        device = f"CPU: {describe_target('cpu')['cpu']}, {os.cpu_count()} logical cores"
    command = "python -m hwnas.benchmarks.train_speed" + "".join(" " + shlex.quote(a) for a in args.argv)
    data = ("CIFAR-10 batches from $HWNAS_DATA (augmented, as the trainer makes them)" if args.data == "real"
            else "random tensors of CIFAR shape (3x32x32, 10 classes); speed does not depend on pixel values")
    cols = list(rows[0])
    lines = [
        "# Supernet training speed per mode, beside the reference implementation",
        "",
        f"- command: `{command}`",
        "",
        f"NB201 supernet, C={args.channels}, N={args.cells} cells per stage, batch {args.batch_size}, channels-last "
        f"for both; {args.warmup} warm-up steps, then at least {args.steps} timed steps and {args.min_seconds:g} s "
        "per row. A step is what one training batch costs: the weight step, plus for DARTS and GDAS the "
        "architecture step on a held-out batch (both implementations do both); images/s counts training images.",
        "",
        "- rows `plain` and `+ X alone` are hwnas with none or one of the exact speed-ups of "
        "`supernet.nb201_net.SPEEDUPS`; `all (default)` is what `hwnas train` runs;",
        "- `reference (before|after)`: AutoDL-Projects' own networks and search-loop steps (RANDOM-NAS for SPOS, "
        "DARTS-V1, GDAS) from `--reference-src`, timed before and after ours in the same process; "
        "`ours_over_reference` is each of our rows against the faster and the slower reference run (the spread);",
        "- `max_rel_diff_vs_plain`: the largest difference of the loss and of any gradient (weights and "
        "architecture parameters) from the plain path on one fixed batch, relative to the largest gradient; "
        "`float32_rounding_of_plain`: the same difference between the plain path in float32 and in float64, "
        "float32's own rounding at this depth (BatchNorm's backward cancels large terms, so it grows with the "
        "number of cells): a speed-up whose difference is of that size changes rounding only.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in rows:
        lines.append("| " + " | ".join(f"{v:.1f}" if isinstance(v, float) and k == "images_per_s" else
                                        f"{v:.0f}" if isinstance(v, float) and k.startswith("median") else
                                        f"{v:.2f}" if isinstance(v, float) else str(v) for k, v in r.items()) + " |")
    lines += [
        "",
        "## Machine and command",
        "",
        f"- device: {device}",
        f"- torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, Python {platform.python_version()}",
        f"- load average (1, 5, 15 min) at the start: {args.load_start}; at the end: {_load()}",
        f"- data: {data}",
        f"- reference: {_reference_version(args.reference_src)}",
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
    p.add_argument("--reference-src", default=None, metavar="DIR",
                   help="a local checkout of AutoDL-Projects (the folder holding xautodl/): its NB201 search "
                        "networks are timed in the same process, before and after ours")
    p.add_argument("--out", default="benchmarks/results/train_speed.md")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.reference_src and not (Path(args.reference_src) / "xautodl").is_dir():
        print(f"error: --reference-src {args.reference_src} has no xautodl/ folder (a checkout of "
              "AutoDL-Projects)", file=sys.stderr)
        return 2
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
