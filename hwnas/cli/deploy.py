"""`hwnas export`: write a chosen subnet, with its inherited weights, as a standalone model."""
from __future__ import annotations

import argparse

from hwnas.core.errors import UsageError


def _configure_export(p: argparse.ArgumentParser) -> None:
    from hwnas.supernet.export import list_formats

    p.add_argument("--supernet", required=True, help="trained run folder (runs/NAME)")
    p.add_argument("--arch", required=True, help="arch string, e.g. one from a front's arch_str column")
    p.add_argument("--format", default="onnx", help=f"file format ({', '.join(list_formats())})")
    p.add_argument("--out", required=True, help="file to write (atomically)")
    p.add_argument("--calib-batches", type=int, default=4,
                   help="training batches to recalibrate BatchNorm on (0: keep the supernet's statistics)")
    p.add_argument("--data", default=None, help="data folder for recalibration (default: $HWNAS_DATA)")
    p.add_argument("--no-check", action="store_true", help="skip re-loading the file and comparing outputs")


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from hwnas.core.datasets import dataset_info
    from hwnas.supernet.export import EXPORTS, check_export, export_subnet, subnet_from_run

    EXPORTS.get(args.format)
    if args.calib_batches < 0:
        raise UsageError(f"--calib-batches must be >= 0, got {args.calib_batches}")
    model, desc = subnet_from_run(args.supernet, args.arch, args.calib_batches, args.data)
    info = dataset_info(desc["dataset"])
    path = export_subnet(model, desc, args.format, args.out, info.input_shape())
    print(f"wrote {path} ({args.format}, {path.stat().st_size / 1e6:.2f} MB): {desc['arch']}, "
          f"C={desc['net']['channels']}, N={desc['net']['cells']}, BN {desc['bn']}")
    if not args.no_check:
        err = check_export(model, path, args.format, torch.randn(info.input_shape(4)))
        print(f"re-loaded and compared with PyTorch on 4 random inputs: max |difference| {err:.2e}")
    return 0


def register(commands) -> None:
    commands.add("export", "write a subnet with its inherited weights as ONNX, TorchScript or a state_dict",
                 cmd_export, _configure_export)
