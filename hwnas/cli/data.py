"""`hwnas data download|prepare`: put CIFAR-10/100, the HW-NAS-Bench pickle and the NAS-Bench-201 accuracy table
into the data root (`--dir`, else $HWNAS_DATA, else ./data)."""
from __future__ import annotations

import argparse


def _common(p: argparse.ArgumentParser, default: str) -> None:
    from hwnas.data import ITEMS

    p.add_argument("--dir", default=None, help="data root to fill (default: $HWNAS_DATA, else ./data)")
    p.add_argument("--only", nargs="+", default=None, metavar="ITEM",
                   help=f"only these items ({', '.join(ITEMS)}; default: {default})")


def _configure_download(p: argparse.ArgumentParser) -> None:
    _common(p, "all of them")


def _configure_prepare(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="mirror", required=True, metavar="DIR",
                   help="a local mirror: the official files (cifar-10-python.tar.gz or cifar-10-batches-py/, "
                        "HW-NAS-Bench-v1_0.pickle, nb201_accuracy.csv or nats_bench.csv) or the layout of the "
                        "shared data folder (../shared/data)")
    _common(p, "nb201 hwnasbench cifar10")


def _report(done: dict, root) -> None:
    for name, state in done.items():
        print(f"{name}: {state}")
    print(f"data root: {root}")


def cmd_download(args: argparse.Namespace) -> int:
    from hwnas.core.paths import data_root
    from hwnas.data import download_data

    _report(download_data(args.dir, args.only, progress=not args.quiet), data_root(args.dir))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from hwnas.core.paths import data_root
    from hwnas.data import prepare_data

    _report(prepare_data(args.mirror, args.dir, args.only, progress=not args.quiet), data_root(args.dir))
    return 0


def register(commands) -> None:
    group = commands.group("data", "the data sets and tables hwnas reads: download them, or prepare them from a "
                                   "local mirror")
    group.add("download", "fetch CIFAR-10/100, HW-NAS-Bench and the NAS-Bench-201 accuracy table from their public "
                          "sources (resumable, checksummed)", cmd_download, _configure_download)
    group.add("prepare", "convert a local mirror into the data root (offline)", cmd_prepare, _configure_prepare)
