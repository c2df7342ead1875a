"""Does hwnas scale past one process? Training images/s under `torchrun` with 1 and 2 processes (gloo, one
thread each), and proxy evaluations/s on 1 and 2 Dask workers (one thread each), on this machine.

    python -m hwnas.benchmarks.scaling [--channels 8] [--cells 1] [--batch-size 64] [--max-images 8192]
        [--epochs 3] [--archs 40] [--eval-images 1000] [--repeats 2] [--out benchmarks/results/scaling.md]

Training: `hwnas train` (SPOS, CIFAR-10 from $HWNAS_DATA) started by `torchrun --nproc-per-node P` for
P = 1, 2, and, as the yardstick a user has without torchrun, one process with 2 threads. Each run trains
`--epochs` epochs; images/s is the global rate of every epoch after the first (warm-up), from the run's
metrics.csv. Runs are interleaved (1, 2, 2 threads, 1, 2, ...) `--repeats` times and the median is reported.
The supernet of the last one-process run is then the one scored.

Proxy: the same `--archs` canonical NB201 cells scored by a `ProxyEvaluator` with a fresh cache, in this
process (1 thread, then 2 threads) and through `--workers local:W` for W = 1, 2 (each worker loads the
supernet and the data on its first arch, which is done before the timing, so the rate is the steady one a
long search sees). Evaluations/s and the ratio to one in-process thread are reported.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from hwnas.core.files import atomic_write_text

from .report import command, markdown_table


def _train(args, out: Path, processes: int, threads: int) -> float:
    """Median global images/s over the epochs after the first of one `hwnas train` run."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes), "--standalone",
           "-m", "hwnas", "train", "--channels", str(args.channels), "--cells", str(args.cells),
           "--batch-size", str(args.batch_size), "--max-images", str(args.max_images), "--epochs", str(args.epochs),
           "--held-out-images", "256", "--out", str(out), "--quiet"]
    if args.data:
        cmd += ["--data", args.data]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"training with {processes} process(es) failed:\n{done.stdout}{done.stderr}")
    rates = pd.read_csv(out / "metrics.csv")["images_per_s"].tolist()[1:]
    return statistics.median(rates)


def _proxy_rate(supernet: Path, archs, settings, data, workers: str | None, threads: int, scratch: Path,
                name: str) -> tuple[float, list[float]]:
    """Evaluations/s of scoring `archs` (after one warm-up arch per worker), and the accuracies."""
    import torch

    from hwnas.core.workers import Workers
    from hwnas.supernet.evaluate import ProxyEvaluator

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    pool = Workers(workers) if workers else None
    try:
        ev = ProxyEvaluator(supernet, settings, cache=scratch / f"{name}.sqlite", data=data, progress=False,
                            workers=pool)
        warm = archs[:pool.size if pool else 1]  # every worker loads the supernet and the data first
        ev.accuracy(warm)
        rest = archs[len(warm):]
        t0 = time.perf_counter()
        acc = ev.accuracy(rest)
        seconds = time.perf_counter() - t0
        return len(rest) / seconds, list(acc)
    finally:
        torch.set_num_threads(before)
        if pool is not None:
            pool.close()


def run(args: argparse.Namespace) -> str:
    from hwnas.evolve.ranking import sample_classes
    from hwnas.supernet.evaluate import ProxySettings
    from hwnas.supernet.spaces import get_space

    t_start = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="hwnas_scaling_"))
    setups = [("torchrun, 1 process x 1 thread", 1, 1), ("torchrun, 2 processes x 1 thread", 2, 1),
              ("1 process x 2 threads (no torchrun)", 1, 2)]
    rates: dict[str, list[float]] = {name: [] for name, _, _ in setups}
    last_one = None
    for r in range(args.repeats):
        for k, (name, processes, threads) in enumerate(setups):
            out = scratch / f"train_{r}_{k}"
            rates[name].append(_train(args, out, processes, threads))
            if processes == 1 and threads == 1:
                last_one = out
            print(f"{name}: {rates[name][-1]:.0f} img/s", file=sys.stderr)
    base = statistics.median(rates[setups[0][0]])
    train_rows = pd.DataFrame([{"setup": name, "images_per_s": statistics.median(v), "runs": ", ".join(f"{x:.0f}" for x in v),
                                "ratio_to_1_process": statistics.median(v) / base} for name, v in rates.items()])

    settings = ProxySettings(eval_images=args.eval_images)
    archs = sample_classes(get_space("nb201"), args.archs, seed=1)
    proxy_setups = [("in-process, 1 thread", None, 1), ("in-process, 2 threads", None, 2),
                    ("--workers local:1", "local:1", 1), ("--workers local:2", "local:2", 1)]
    proxy_rows, reference = [], None
    for name, workers, threads in proxy_setups:
        rate, acc = _proxy_rate(last_one, archs, settings, args.data, workers, threads, scratch, name.replace(" ", "_"))
        if reference is None:
            reference, base_rate = acc, rate
        n = len(acc)
        same = sum(a == b for a, b in zip(acc, reference[-n:])) if len(reference) >= n else None
        proxy_rows.append({"setup": name, "evaluations_per_s": rate, "ratio_to_1_thread": rate / base_rate,
                           "scored": n, "same_accuracy_as_reference": f"{same}/{n}" if same is not None else "-"})
        print(f"{name}: {rate:.2f} evals/s", file=sys.stderr)
    wall = time.perf_counter() - t_start
    lines = [
        "# Scaling: torchrun training and Dask proxy evaluation on this machine",
        "",
        f"- command: `{command('hwnas.benchmarks.scaling', args.argv)}`",
        f"- machine: {os.cpu_count()} CPU cores; wall time {wall / 60:.1f} min",
        f"- training: SPOS, NB201 C={args.channels}, N={args.cells}, global batch {args.batch_size}, "
        f"{args.max_images} CIFAR-10 images (half for training), {args.epochs} epochs per run, images/s of the "
        f"epochs after the first, median of {args.repeats} interleaved runs (each run's value listed)",
        "",
        markdown_table(train_rows),
        "",
        f"- proxy: {n} canonical NB201 cells (after one warm-up cell per worker), {args.eval_images} held-out "
        "images, fresh cache each; accuracies compared with the first row's for the same cells",
        "",
        markdown_table(pd.DataFrame(proxy_rows)),
        "",
        "Several GPUs: `torchrun --nproc-per-node 8 -m hwnas train --config benchmarks/recipes/gpu_spos.yaml` "
        "(what `GPUS=8 bash benchmarks/recipes/gpu.sh` runs; nccl, one GPU per process, the YAML's batch size "
        "being the global batch), and for scoring, a `dask scheduler` with one `dask worker --nthreads 1` per GPU "
        "or core and `hwnas search ... --workers dask://HOST:8786`.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hwnas.benchmarks.scaling", description=__doc__.split("\n\n")[0])
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--cells", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-images", type=int, default=8192)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--archs", type=int, default=40, help="canonical cells scored per proxy setup")
    p.add_argument("--eval-images", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--data", default=None, help="data folder (default: $HWNAS_DATA, else ./data)")
    p.add_argument("--out", default="benchmarks/results/scaling.md")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    text = run(args)
    atomic_write_text(Path(args.out), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
