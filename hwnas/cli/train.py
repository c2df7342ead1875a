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


def _configure_train(p: argparse.ArgumentParser) -> None:
    _configure(_train_config)(p)
    p.add_argument("--target", default=None, help="fbnet: fit the per-choice latency table to this device's "
                                                  "per-arch table (an HW-NAS-Bench device or a --device-table "
                                                  "name; written to OUT/latency_costs.json), instead of "
                                                  "--latency-table")
    p.add_argument("--lut", default=None, metavar="FILE", help="fbnet: a `hwnas lut build` table as the per-choice "
                                                           "latency (the same as --latency-table FILE)")
    p.add_argument("--hwnasbench", default=None, help="with --target: HW-NAS-Bench pickle (default: "
                                                      "$HWNAS_DATA/HW-NAS-Bench-v1_0.pickle)")
    p.add_argument("--device-table", dest="device_tables", action="append", default=[], metavar="FILE.csv",
                   help="with --target: a user's per-arch device table (repeatable)")


def _true_latency(args: argparse.Namespace, cfg, arch_str: str) -> float:
    """The latency the `--target` device's per-arch table gives the derived arch (not the per-choice fit)."""
    from hwnas.evolve.sources import Sources

    sources = Sources(space=cfg.space, dataset=cfg.dataset, data=cfg.data, hwnasbench=args.hwnasbench,
                      device_tables=args.device_tables, progress=False)
    name = sources.target_objective(args.target)
    return float(sources.objective(name)([sources.space.from_str(arch_str)])[0])


def _target_latency_table(args: argparse.Namespace, cfg) -> str:
    """Fit the fbnet latency table for `--target` and write it into the run folder (the same file on resume)."""
    from pathlib import Path

    from hwnas.core.errors import UsageError
    from hwnas.evolve.device_costs import fit_target_costs
    from hwnas.evolve.sources import Sources

    if cfg.mode != "fbnet":
        raise UsageError(f"--target is an fbnet option; mode '{cfg.mode}' has no hardware term in its loss")
    if cfg.latency_table:
        raise UsageError("give --target or --latency-table, not both")
    sources = Sources(space=cfg.space, dataset=cfg.dataset, data=cfg.data, hwnasbench=args.hwnasbench,
                      device_tables=args.device_tables, progress=False)
    costs = fit_target_costs(sources, args.target, seed=cfg.seed)
    fit = costs.fit
    log.info("per-choice latency of %s: R^2 %.3f, held-out Kendall tau %.3f", args.target, fit["r2"],
             fit.get("holdout_kendall", float("nan")))
    return str(costs.save(Path(cfg.out) / "latency_costs.json"))


def _measure_derived(cfg, result: dict) -> None:
    """HTAS: the derived widths and depths, and the derived subnet's latency measured on this CPU (batch 1,
    one thread), added to result.json."""
    from pathlib import Path

    from hwnas.core.files import atomic_write_json
    from hwnas.hardware.measure import measure
    from hwnas.supernet.spaces import get_space

    space = get_space(cfg.space, **cfg.space_options)
    net = space.build_subnet(space.from_str(result["derived_arch"]), channels=cfg.channels)
    timing = measure(net, "cpu", warmup=5, repeats=30, threads=1)
    result["derived_measured_latency_ms_cpu"] = timing.median_ms
    atomic_write_json(Path(result["run"]) / "result.json", result)
    print(f"derived widths {result['derived_widths']}, depth per stage {result['derived_depths']}: "
          f"{result['derived_expected_latency_ms']:.3f} ms by the curves, {timing.median_ms:.3f} ms measured here "
          f"(CPU, batch 1, 1 thread)")


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
    if cfg.mode == "htas" and args.tailored and not cfg.tailoring_report:
        cfg.tailoring_report = args.tailored
    if args.lut:
        if cfg.latency_table and cfg.latency_table != args.lut:
            from hwnas.core.errors import UsageError

            raise UsageError(f"--lut {args.lut} and --latency-table {cfg.latency_table} name two tables; give one")
        cfg.latency_table = args.lut
    if args.target:
        cfg.latency_table = _target_latency_table(args, cfg)
    result = train(cfg, resume=args.resume)
    from hwnas.supernet.distributed import World

    if not World.from_env().is_main:  # under torchrun, rank 0 reports and writes what follows
        return 0
    print(f"trained {result['mode']} supernet in {result['run']}: held-out accuracy {result['val_acc']:.2f}%")
    if result.get("derived_arch"):
        skips = (f" (identity ops on {result['skip_fraction']:.0%}, zero ops on {result.get('zero_fraction', 0):.0%} "
                 "of decisions)" if "skip_fraction" in result else "")
        print(f"derived arch {result['derived_arch']}{skips}")
    if result["mode"] == "htas":
        _measure_derived(cfg, result)
    if result.get("sampled_archs"):
        from pathlib import Path

        from hwnas.evolve.sampled_front import front_from_sampled

        run = Path(result["run"])
        front = front_from_sampled(run / "sampled.csv", meta={"mode": result["mode"], "space": result["space"]})
        front.save(run / "front")
        print(f"front of the {result['sampled_archs']} sampled paths ({len(front.table)} distinct, "
              f"{int(front.table.is_pareto.sum())} Pareto-optimal): {run / 'front'}.csv")
    if "derived_table_latency_ms" in result:
        size = f", {result['derived_size_mb']:.3f} MB" if "derived_size_mb" in result else ""
        true = ""
        if args.target:
            result["derived_true_latency_ms"] = _true_latency(args, cfg, result["derived_arch"])
            true = f"; {args.target}'s own table: {result['derived_true_latency_ms']:.3f} ms"
            from pathlib import Path

            from hwnas.core.files import atomic_write_json

            atomic_write_json(Path(result["run"]) / "result.json", result)
        print(f"derived arch's table latency {result['derived_table_latency_ms']:.3f} ms{size} "
              f"({result['latency_table']}){true}")
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
    commands.add("train", "train a weight-sharing supernet (accuracy only; resumable; fbnet: with a latency "
                          "and size term)", cmd_train, _configure_train)
    commands.add("retrain", "train one chosen subnet from scratch (resumable)", cmd_retrain,
                 _configure(_retrain_config))
