"""The `hwnas` command line: train a supernet, search fronts per device, plot, quickstart; measure, lut,
agent (in `cli_hardware`).

Every bad value ends in one line `hwnas: error: ...` naming it and the valid ones, and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from evolve import cli_deploy, cli_hardware, cli_retrain, cli_space
from evolve.cli_options import add_space_options, space_options_from_args

_USER_ERRORS = (ValueError, FileNotFoundError, KeyError, FloatingPointError, ConnectionError)


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

    p.add_argument("--config", help="YAML file whose keys are these options (flags given here win)")
    add_space_options(p, tailored=True)
    p.add_argument("--mode", default="spos", help=f"training mode ({', '.join(list_modes())})")
    p.add_argument("--order", type=int, default=1, help="DARTS order: 1 or 2 (finite-difference Hessian)")
    p.add_argument("--dataset", default="cifar10", help=f"data set ({', '.join(DATASETS)})")
    p.add_argument("--data", default=None, help="data folder (default: $HWNAS_DATA, else ./data)")
    p.add_argument("--download", action="store_true", help="download the data set if it is missing")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--channels", type=int, default=16,
                   help="C: channels of the first stage (layer-wise spaces: widths are multiples of C)")
    p.add_argument("--cells", type=int, default=5, help="N: cells per stage (cell spaces only)")
    p.add_argument("--max-images", type=int, default=None,
                   help="cap each split (train and held-out) at this many images, for small CPU runs")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.025, help="weight learning rate (SGD nesterov, cosine)")
    p.add_argument("--arch-lr", type=float, default=3e-4, help="architecture learning rate (Adam; DARTS/GDAS)")
    p.add_argument("--held-out-images", type=int, default=2000, help="held-out images scored per epoch for the log")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", default="runs/default", help="run folder (checkpoint, metrics, result)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _train_config(args: argparse.Namespace):
    from supernet.trainer import TrainConfig

    options = space_options_from_args(args)
    return TrainConfig(space=args.space, space_options=options, mode=args.mode, order=args.order, dataset=args.dataset, data=args.data,
                       download=args.download,
                       epochs=args.epochs, channels=args.channels, cells=args.cells, max_images=args.max_images,
                       batch_size=args.batch_size, lr=args.lr, arch_lr=args.arch_lr, seed=args.seed,
                       held_out_images=args.held_out_images,
                       device=args.device, out=args.out, progress=not args.quiet)


def cmd_train(args: argparse.Namespace) -> int:
    from supernet.trainer import train

    result = train(_train_config(args), resume=args.resume)
    print(f"trained {result['mode']} supernet in {result['run']}: held-out accuracy {result['val_acc']:.2f}%")
    if result.get("derived_arch"):
        print(f"derived arch {result['derived_arch']} (identity ops on {result['skip_fraction']:.0%} of decisions)")
    if result.get("warning"):
        print(f"warning: {result['warning']}")
    return 0


# ------------------------------------------------------------------------------------------- search
def _add_context_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default=None,
                   help="data set of the tables (default: the supernet's, else cifar10)")
    p.add_argument("--data", default=None, help="data folder (default: $HWNAS_DATA, else ./data)")
    p.add_argument("--truth", default=None,
                   help="NB201 ground truth: a CSV with arch_str + accuracy columns or the NATS-Bench tss file "
                        "(default: $HWNAS_DATA/nb201_accuracy.csv)")
    p.add_argument("--hwnasbench", default=None,
                   help="HW-NAS-Bench pickle (default: $HWNAS_DATA/HW-NAS-Bench-v1_0.pickle)")
    p.add_argument("--device-table", action="append", default=[], metavar="FILE.csv",
                   help="your own per-arch metrics (arch_str + numeric columns); its file stem is a device name")
    p.add_argument("--lut", default=None, help="per-block latency table for lut_latency (from `hwnas lut build`)")
    p.add_argument("--agent-token-file", default=None,
                   help="token for remote_latency:<url> agents (default: $HWNAS_AGENT_TOKEN)")
    p.add_argument("--measure-repeats", type=int, default=50, help="timed runs per arch for measured latency")
    p.add_argument("--measure-warmup", type=int, default=10, help="untimed runs before them")
    p.add_argument("--measure-threads", type=int, default=1, help="CPU threads while timing")
    p.add_argument("--latency-cache", default=None,
                   help="SQLite cache of measured latencies (default: $HWNAS_CACHE or ~/.cache/hwnas/latency.sqlite)")


def _add_search_options(p: argparse.ArgumentParser) -> None:
    from evolve.search import ALGORITHMS

    p.add_argument("--config", help="YAML file whose keys are these options (flags given here win)")
    p.add_argument("--supernet", default=None, help="trained run folder (runs/NAME) for proxy accuracy")
    p.add_argument("--device", action="append", default=[], help="target device (repeat for several)")
    p.add_argument("--all-devices", action="store_true", help="every HW-NAS-Bench device that has data")
    p.add_argument("--objectives", nargs="+", default=None,
                   help="explicit objective list for one search instead of per-device fronts "
                        "(first = accuracy side), see `hwnas devices`")
    p.add_argument("--algorithm", default="nsga2", help=f"search algorithm ({', '.join(ALGORITHMS)})")
    p.add_argument("--oracle", choices=["true"], default=None,
                   help="use NB201 ground-truth error instead of the supernet (checks the optimiser)")
    p.add_argument("--max", action="append", default=[], metavar="OBJECTIVE=LIMIT",
                   help="hard constraint, e.g. --max edgegpu_latency=5 --max size_mb=2")
    p.add_argument("--pop-size", type=int, default=50)
    p.add_argument("--generations", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bn-mode", default="recalibrate", help="proxy BN statistics: recalibrate, batch or inherit")
    p.add_argument("--eval-images", type=int, default=5000,
                   help="held-out images scored per subnet (fewer is faster but noisier: at 1,000 an accuracy's "
                        "error is as large as the proxy's spread over good cells; benchmarks/results/ranking.md)")
    p.add_argument("--calib-batches", type=int, default=4, help="training batches for BN recalibration")
    p.add_argument("--out", default="fronts", help="folder for <device>.csv/.parquet/.json/.png")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_context_options(p)


def _context(args: argparse.Namespace, supernet: str | None = None):
    from evolve.objectives import ObjectiveContext
    from supernet.evaluate import ProxySettings

    supernet = supernet or getattr(args, "supernet", None)
    settings = None
    if hasattr(args, "bn_mode"):
        settings = ProxySettings(bn_mode=args.bn_mode, eval_images=args.eval_images,
                                 calib_batches=args.calib_batches)
    from evolve.measured import MeasureSettings

    measure = MeasureSettings(warmup=args.measure_warmup, repeats=args.measure_repeats, threads=args.measure_threads)
    return ObjectiveContext(dataset=args.dataset, supernet=supernet, truth=args.truth,
                            hwnasbench=args.hwnasbench, device_tables=args.device_table, data=args.data,
                            proxy_settings=settings, progress=not getattr(args, "quiet", False),
                            measure_settings=measure, lut=args.lut, agent_token=args.agent_token_file,
                            latency_cache=args.latency_cache)


def _devices(args: argparse.Namespace, ctx) -> list[str]:
    devices = list(dict.fromkeys(args.device))
    if args.all_devices:
        devices += [d for d in ctx.hw_devices() + list(ctx.device_tables) if d not in devices]
    return devices


def cmd_search(args: argparse.Namespace) -> int:
    from evolve.explore import format_table, save_result, search_device, summary_table
    from evolve.search import ALGORITHMS, parse_bounds

    if args.algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm '{args.algorithm}'; valid: {', '.join(ALGORITHMS)}")
    oracle = args.oracle == "true"
    if not oracle and not args.supernet and not (args.objectives and "proxy_err" not in args.objectives):
        raise ValueError("a proxy search needs --supernet runs/NAME (or --oracle true for ground truth)")
    ctx = _context(args)
    bounds = parse_bounds(args.max)
    devices = _devices(args, ctx)
    if args.objectives:
        if devices:
            raise ValueError("give either --objectives or --device/--all-devices, not both")
        devices = ["_".join(n for n in args.objectives[1:])]
    if not devices:
        raise ValueError("no device given; use --device NAME (see `hwnas devices`) or --all-devices")
    results = {}
    for dev in devices:
        r = search_device(ctx, dev, oracle=oracle, algorithm=args.algorithm, objectives=args.objectives,
                          bounds=bounds, pop_size=args.pop_size, generations=args.generations, seed=args.seed,
                          progress=not args.quiet)
        save_result(r, args.out)
        results[dev] = r
        print(f"{dev}: {int(r.front.table.is_pareto.sum())} Pareto archs of {len(r.front.table)} evaluated "
              f"-> {r.files[0]}")
    print(format_table(summary_table(results)))
    if not oracle and ctx.supernet_path:
        ev = ctx.evaluator
        print(f"proxy cache: {ev.hits} hits, {ev.misses} evaluations ({ev.seconds:.0f} s) in {ev.cache.path}")
    return 0


# ------------------------------------------------------------------------------------------ devices
def _add_devices_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--supernet", default=None, help="run folder, to include proxy_err")
    _add_context_options(p)


def cmd_devices(args: argparse.Namespace) -> int:
    from benchmarks.hwnasbench import HW_METRICS, UNITS

    ctx = _context(args)
    print(f"{'objective':33s} {'unit':5s} {'coverage':>8s}  source")
    print(f"{'proxy_err':33s} {'%':5s} {'-':>8s}  supernet {args.supernet or '(needs --supernet runs/NAME)'}")
    try:
        truth = f"NAS-Bench-201 {ctx.truth.source}" if ctx.dataset in ctx.truth.datasets() else "-"
    except (FileNotFoundError, ValueError) as exc:
        truth = f"unavailable: {exc}"
    print(f"{'true_err':33s} {'%':5s} {'-':>8s}  {truth}")
    from evolve.objectives import COUNTERS
    from hardware.measure import TARGETS, check_target

    for name, unit in COUNTERS.items():
        print(f"{name:33s} {unit:5s} {'1.000':>8s}  counted on the standalone network")
    for target in TARGETS:
        try:
            check_target(target)
            where = "measured on this machine (cached per canonical arch)"
        except ValueError as exc:
            where = f"unavailable: {exc}"
        print(f"{'measured_latency:' + target:33s} {'ms':5s} {'-':>8s}  {where}")
    print(f"{'remote_latency:<url>':33s} {'ms':5s} {'-':>8s}  measured by `hwnas agent serve` on a device "
          f"(--agent-token-file)")
    print(f"{'lut_latency':33s} {'ms':5s} {'-':>8s}  "
          + (f"lookup table {args.lut}" if args.lut else "needs --lut FILE (from `hwnas lut build`)"))
    try:
        cov = ctx.hwnasbench.coverage(ctx.dataset)
        for dev in ctx.hw_devices():
            for m in HW_METRICS[dev]:
                key = f"{dev}_{m}"
                print(f"{key:33s} {UNITS[m]:5s} {cov.get(key, 0.0):8.3f}  HW-NAS-Bench {ctx.dataset}")
    except (FileNotFoundError, ValueError) as exc:
        print(f"{'(HW-NAS-Bench devices)':33s} {'':5s} {'':8s}  unavailable: {exc}")
    for tname, table in ctx.device_tables.items():
        for m in table.metrics():
            print(f"{tname + '_' + m:33s} {'':5s} {'-':>8s}  device table {table.source}")
    return 0


# --------------------------------------------------------------------------------------------- plot
def _add_plot_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("fronts", nargs="+", help="front files (.json, .csv or .parquet) written by hwnas search")
    p.add_argument("--x", default=None, help="x column (default: the second objective)")
    p.add_argument("--y", default=None, help="y column (default: the first objective)")
    p.add_argument("--generations", action="store_true", help="draw the front per generation (one file)")
    p.add_argument("--out", default=None, help="PNG path (default: beside the first front, *_plot.png)")


def cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib.pyplot as plt

    from evolve import plot
    from evolve.front import Front

    fronts = {Path(f).stem: Front.load(f) for f in args.fronts}
    first = next(iter(fronts.values()))
    y = args.y or first.objectives[0]
    for name, fr in fronts.items():
        for col in filter(None, [args.x, y]):
            if col not in fr.table:
                raise ValueError(f"front '{name}' has no column '{col}'; columns: {', '.join(fr.table.columns)}")
    out = Path(args.out) if args.out else Path(args.fronts[0]).with_name(Path(args.fronts[0]).stem + "_plot.png")
    if args.generations:
        fig = plot.plot_generations(first, args.x or first.objectives[1], y, path=out)
    elif len(fronts) == 1:
        fig = plot.plot_front_2d(first, args.x or first.objectives[1], y, path=out)
    else:
        fig = plot.plot_grid(fronts, y, x_of=(lambda f: args.x) if args.x else None, path=out)
    plt.close(fig)
    print(f"wrote {out}")
    return 0


# --------------------------------------------------------------------------------------- quickstart
# eval_images: on 500 held-out images the eyeriss/fpga proxy fronts scored 0.25/0.30 HV ratio, on 2,000
# 0.76/0.70, for about 2 min more on 2 cores
QUICKSTART = dict(mode="spos", channels=8, cells=1, max_images=25000, epochs=12, batch_size=64,
                  pop_size=24, generations=12, eval_images=2000, calib_batches=2)


def _add_quickstart_options(p: argparse.ArgumentParser) -> None:
    q = QUICKSTART
    p.add_argument("--config", help="YAML file whose keys are these options (flags given here win)")
    p.add_argument("--out", default="runs/quickstart", help="supernet run folder (reused if already trained)")
    p.add_argument("--fronts", default="fronts/quickstart", help="folder for the fronts and plots")
    p.add_argument("--epochs", type=int, default=q["epochs"])
    p.add_argument("--channels", type=int, default=q["channels"])
    p.add_argument("--cells", type=int, default=q["cells"])
    p.add_argument("--max-images", type=int, default=q["max_images"])
    p.add_argument("--batch-size", type=int, default=q["batch_size"])
    p.add_argument("--pop-size", type=int, default=q["pop_size"])
    p.add_argument("--generations", type=int, default=q["generations"])
    p.add_argument("--eval-images", type=int, default=q["eval_images"])
    p.add_argument("--calib-batches", type=int, default=q["calib_batches"])
    p.add_argument("--bn-mode", default="recalibrate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_context_options(p)


def cmd_quickstart(args: argparse.Namespace) -> int:
    import time

    import matplotlib.pyplot as plt

    from evolve import plot
    from evolve.explore import format_table, save_result, search_device, summary_table
    from supernet.checkpoint import load_checkpoint
    from supernet.trainer import CHECKPOINT, TrainConfig, train

    t0 = time.perf_counter()
    cfg = TrainConfig(mode="spos", dataset=args.dataset or "cifar10", data=args.data, epochs=args.epochs,
                      channels=args.channels, cells=args.cells, max_images=args.max_images,
                      batch_size=args.batch_size, seed=args.seed, out=args.out, progress=not args.quiet)
    ckpt = Path(args.out) / CHECKPOINT
    done = ckpt.exists() and load_checkpoint(ckpt)["epoch"] + 1 >= args.epochs
    print(f"[1/3] supernet: SPOS, C={args.channels}, N={args.cells}, {args.max_images} images, "
          f"{args.epochs} epochs -> {args.out}" + (" (already trained, reused)" if done else ""))
    if not done:
        result = train(cfg, resume=ckpt.exists())
        print(f"      held-out accuracy over a panel of paths: {result['val_acc']:.1f}%")
    args.supernet = str(args.out)
    ctx = _context(args)
    devices = ctx.hw_devices()
    if not devices:
        raise ValueError("no HW-NAS-Bench data found; prepare it with python ../shared/tools/prepare_data.py DIR "
                         "and set HWNAS_DATA (or pass --hwnasbench FILE)")
    print(f"[2/3] NSGA-II fronts (population {args.pop_size}, {args.generations} generations) for "
          f"{len(devices)} devices: {', '.join(devices)}")
    proxy, oracle = {}, {}
    for dev in devices:
        proxy[dev] = search_device(ctx, dev, pop_size=args.pop_size, generations=args.generations, seed=args.seed,
                                   progress=not args.quiet)
        oracle[dev] = search_device(ctx, dev, oracle=True, pop_size=args.pop_size, generations=args.generations,
                                    seed=args.seed, progress=False)
        save_result(proxy[dev], args.fronts)
        save_result(oracle[dev], Path(args.fronts) / "oracle")
        ev = ctx.evaluator
        print(f"      {dev}: {int(proxy[dev].front.table.is_pareto.sum())} Pareto archs; proxy cache "
              f"{ev.hits} hits / {ev.misses} evaluations so far")
    grid = Path(args.fronts) / "fronts.png"
    fig = plot.plot_grid({d: r.front for d, r in proxy.items()}, "true_err_pct" if oracle[devices[0]].hv is not None
                         else proxy[devices[0]].front.objectives[0],
                         exact={d: r.exact for d, r in proxy.items() if r.exact is not None}, path=grid)
    plt.close(fig)
    table = summary_table(proxy, oracle)
    from supernet.atomic import atomic_write_text

    atomic_write_text(Path(args.fronts) / "summary.csv", table.to_csv(index=False))
    print(f"[3/3] fronts and plots in {args.fronts}/ (per-device grid: {grid}); {time.perf_counter() - t0:.0f} s")
    print(format_table(table))
    print("hv_ratio: normalised hypervolume of the front (re-scored with NB201 ground truth) / that of the exact "
          "front from all 15,625 archs; 1.0 = exact.")
    return 0


# ------------------------------------------------------------------------------------------- parser
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "quickstart": ("train a small supernet and search a front for every device (the main job, offline)",
                   _add_quickstart_options, cmd_quickstart),
    "train": ("train a weight-sharing supernet (accuracy only)", _add_train_options, cmd_train),
    "search": ("search Pareto fronts (accuracy vs hardware) per device", _add_search_options, cmd_search),
    "devices": ("list devices and objectives with their units and sources", _add_devices_options, cmd_devices),
    "plot": ("plot saved fronts", _add_plot_options, cmd_plot),
    "measure": ("time one subnet on cpu, cuda, onnxruntime or a remote agent; count params, FLOPs, size, memory",
                cli_hardware.add_measure_options, cli_hardware.cmd_measure),
    "lut": ("build a per-block latency lookup table, or check its sums against measured networks",
            cli_hardware.add_lut_options, cli_hardware.cmd_lut),
    "space": ("show a search space's layers, or tailor its width choices to a device (HTAS)",
              cli_space.add_space_options, cli_space.cmd_space),
    "export": ("write a subnet with its inherited weights as ONNX, TorchScript or a state_dict",
               cli_deploy.add_export_options, cli_deploy.cmd_export),
    "retrain": ("train one chosen subnet from scratch (resumable)", cli_retrain.add_retrain_options,
                cli_retrain.cmd_retrain),
    "agent": ("serve latency measurements on this device over HTTP (bearer token)",
              cli_hardware.add_agent_options, cli_hardware.cmd_agent),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser (`hwnas --help` lists the commands)."""
    parser = argparse.ArgumentParser(
        prog="hwnas",
        description="Hardware-aware NAS: train a supernet once, then search a Pareto front per device.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_options, func) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_options(p)
        p.set_defaults(func=func)
    return parser


def command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one command, `hwnas NAME ...`."""
    help_text, add_options, func = COMMANDS[name]
    p = argparse.ArgumentParser(prog=f"hwnas {name}", description=help_text)
    add_options(p)
    p.set_defaults(func=func)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hwnas` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        parser = build_parser()
        parser.parse_args(argv)  # --help exits 0, an unknown command exits 2 naming the valid ones
        parser.print_help()
        return 2
    sub = command_parser(argv[0])
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
