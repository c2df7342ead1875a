"""Image classification data for supernet training and proxy evaluation.

Loads the three NAS-Bench-201 data sets (CIFAR-10, CIFAR-100, ImageNet16-120) from their official
on-disk formats into uint8 tensors, splits them by the NB201 search protocol, and streams
normalised, augmented mini-batches straight from tensors (GPU-resident when a GPU is used), with
augmentation that depends only on (seed, epoch) so a resumed run sees exactly the same batches.

This module imports neither ``evolve``, ``benchmarks`` nor ``hardware``; it needs torch, numpy and
(for downloads only) tqdm. No torchvision.
"""
from __future__ import annotations

import os
import pathlib
import pickle
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from hwnas.core.datasets import DatasetInfo, dataset_info
from hwnas.core.download import download as fetch
from hwnas.core.errors import CorruptFileError, UsageError
from hwnas.core.paths import data_root

SEARCH_PROTOCOLS = ("search", "full")
_NB201_RELEASE = "https://github.com/D-X-Y/NAS-Bench-201"


@dataclass
class RawDataset:
    """A whole data set as uint8 tensors, exactly as stored (no normalisation, no augmentation).

    ``train_x``/``test_x`` are uint8 (N, 3, H, W); ``train_y``/``test_y`` int64 (N,) class indices in
    ``0..num_classes-1``. ``mean``/``std`` are per-channel normalisation statistics in 0..1 units.
    """

    name: str
    train_x: Tensor = field(repr=False)
    train_y: Tensor = field(repr=False)
    test_x: Tensor = field(repr=False)
    test_y: Tensor = field(repr=False)
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __repr__(self) -> str:
        return (f"RawDataset(name={self.name!r}, train={tuple(self.train_x.shape)}, "
                f"test={tuple(self.test_x.shape)}, num_classes={self.num_classes})")


# ----------------------------------------------------------------------------------------------
# loading


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only what the official data files hold: dicts, lists, str/bytes and numpy arrays."""

    _ALLOWED = {
        ("_codecs", "encode"),
        ("__builtin__", "bytes"),
        ("builtins", "bytes"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return super().find_class(module, name)


def _load_batch(path: pathlib.Path, label_key: str, hw: int) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickled batch: returns (uint8 (N, 3, hw, hw), int64 (N,)); ValueError if corrupt."""
    if not path.is_file():
        raise FileNotFoundError(f"data file {path} is missing; the data set folder is incomplete")
    try:
        with open(path, "rb") as f:
            entry = _ArrayUnpickler(f, encoding="latin1").load()
        if not isinstance(entry, dict):
            raise TypeError(f"holds a {type(entry).__name__}, not a dict")
        entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
        x = np.asarray(entry["data"])
        y = np.asarray(entry[label_key], dtype=np.int64)
        if x.dtype != np.uint8 or y.ndim != 1 or x.size != len(y) * 3 * hw * hw:
            raise TypeError(f"data {x.dtype} {x.shape} does not hold {len(y)} images of 3x{hw}x{hw} uint8")
        return x.reshape(len(y), 3, hw, hw), y
    except Exception as e:  # anything a damaged or foreign file can raise while being read
        raise CorruptFileError(f"corrupt data file {path}: {type(e).__name__}: {e}") from None


def _stack(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[Tensor, Tensor]:
    x = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
    y = parts[0][1] if len(parts) == 1 else np.concatenate([p[1] for p in parts])
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))


def _check_labels(name: str, folder: pathlib.Path, y: Tensor, num_classes: int) -> None:
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise CorruptFileError(f"corrupt data in {folder}: {name} labels span {int(y.min())}..{int(y.max())}, "
                         f"expected 0..{num_classes - 1}")


def _not_found(info: DatasetInfo, folder: pathlib.Path) -> FileNotFoundError:
    if info.url is None:
        how = (f"it cannot be downloaded automatically: get {info.folder} from the NAS-Bench-201 release "
               f"({_NB201_RELEASE}) and unpack it there")
    else:
        how = "run `hwnas data download` (or pass --download), or `hwnas data prepare --from MIRROR` offline"
    return FileNotFoundError(f"{info.name} data not found at {folder} (set HWNAS_DATA to the folder that holds "
                             f"{folder.name}/); {how}")


def _read_cifar10(folder: pathlib.Path) -> tuple[list, list]:
    train = [_load_batch(folder / f"data_batch_{i}", "labels", 32) for i in range(1, 6)]
    return train, [_load_batch(folder / "test_batch", "labels", 32)]


def _read_cifar100(folder: pathlib.Path) -> tuple[list, list]:
    return [_load_batch(folder / "train", "fine_labels", 32)], [_load_batch(folder / "test", "fine_labels", 32)]


def _read_imagenet16(folder: pathlib.Path, num_classes: int = 120) -> tuple[list, list]:
    """NAS-Bench-201's ImageNet16 files, keeping classes 1..num_classes (1-based) as 0-based labels."""
    def keep(part: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        x, y = part  # labels are 1-based over the 1000 ImageNet classes
        kept = (y >= 1) & (y <= num_classes)
        return x[kept], y[kept] - 1
    train = [keep(_load_batch(folder / f"train_data_batch_{i}", "labels", 16)) for i in range(1, 11)]
    return train, [keep(_load_batch(folder / "val_data", "labels", 16))]


#: How each `DatasetInfo.layout` is read from its folder: (train parts, test parts).
_READERS = {"cifar10": _read_cifar10, "cifar100": _read_cifar100, "imagenet16": _read_imagenet16}


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = False) -> RawDataset:
    """Load a whole data set (train and test) from ``data_root(root)`` as uint8 tensors.

    ``name`` is a registered data set (``hwnas.core.datasets.DATASETS``). CIFAR-10/100 use the official
    "python version" layout (``cifar-10-batches-py/``, ``cifar-100-python/``) and are downloaded
    (md5-checked, resumable) when missing and ``download`` is true. ImageNet16-120 reads the NAS-Bench-201
    files ``ImageNet16/train_data_batch_1..10`` and ``ImageNet16/val_data``, keeps classes 1..120 and
    shifts labels to 0-based; it is never downloaded.
    """
    info = dataset_info(name)
    root = data_root(root)
    folder = root / info.folder
    if not folder.is_dir():
        if not download or info.url is None:
            raise _not_found(info, folder)
        download_dataset(info, root)
    train, test = _READERS[info.layout](folder)
    train_x, train_y = _stack(train)
    test_x, test_y = _stack(test)
    _check_labels("train", folder, train_y, info.num_classes)
    _check_labels("test", folder, test_y, info.num_classes)
    return RawDataset(name, train_x, train_y, test_x, test_y, info.num_classes, info.mean, info.std)


# ----------------------------------------------------------------------------------------------
# download


def download_dataset(info: DatasetInfo | str, root: str | os.PathLike | None = None, progress: bool = True) -> pathlib.Path:
    """Fetch the official tarball of a data set into ``data_root(root)`` (resumable, md5-checked), unpack it
    atomically and remove the tarball; returns the data set's folder. A folder already there is kept."""
    info = dataset_info(info) if isinstance(info, str) else info
    root = data_root(root)
    if info.url is None:
        raise _not_found(info, root / info.folder)
    if (root / info.folder).is_dir():
        return root / info.folder
    tarball = fetch(info.url, root / info.url.rsplit("/", 1)[-1], md5=info.md5, progress=progress)
    try:
        _safe_extract(tarball, root, info.folder)
    finally:
        tarball.unlink(missing_ok=True)
    return root / info.folder


def _safe_extract(tarball: pathlib.Path, root: pathlib.Path, folder_name: str) -> None:
    """Unpack ``folder_name/`` from ``tarball`` into ``root`` via a temp dir and ``os.replace``.

    Rejects members with absolute paths, ``..`` components, links or special files.
    """
    staging = pathlib.Path(tempfile.mkdtemp(dir=root, prefix=f".{folder_name}-"))
    try:
        try:
            with tarfile.open(tarball, "r:*") as tar:
                members = tar.getmembers()
                for m in members:
                    parts = pathlib.PurePosixPath(m.name).parts
                    if (m.name.startswith(("/", "\\")) or os.path.isabs(m.name) or ".." in parts
                            or not (m.isfile() or m.isdir())):
                        raise CorruptFileError(f"unsafe member {m.name!r} in {tarball.name}")
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(staging, members=members, filter="data")
                else:
                    tar.extractall(staging, members=members)
        except tarfile.TarError as e:
            raise CorruptFileError(f"corrupt archive {tarball.name}: {e}") from None
        extracted = staging / folder_name
        if not extracted.is_dir():
            raise CorruptFileError(f"archive {tarball.name} does not hold {folder_name}/")
        target = root / folder_name
        try:
            os.replace(extracted, target)
        except OSError:
            if not target.is_dir():  # otherwise another process finished first: keep theirs
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# splits


@dataclass
class Splits:
    """Train/val/test parts of a data set, each a (uint8 x (N, 3, H, W), int64 y (N,)) pair.

    ``train`` is what weights are trained on; ``val`` is held out from weight training (architecture
    updates for DARTS/GDAS, proxy scoring of subnets); ``test`` is the official test set.
    """

    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]


def make_splits(raw: RawDataset, protocol: str = "search", max_images: int | None = None,
                seed: int = 0) -> Splits:
    """Split ``raw`` for one of ``SEARCH_PROTOCOLS``.

    ``"search"`` (NB201 search protocol): the training set is permuted with ``np.random.default_rng(seed)``;
    its first half is ``train``, its second half ``val`` (25k/25k for CIFAR-10); ``test`` is the test set.
    NB201 used this for CIFAR-10 (a fixed split file) and held out half of the *test* set for
    CIFAR-100/ImageNet16-120; here all three use the training-set halves so no test image is seen.
    ``"full"``: ``train`` is the whole (permuted) training set and ``val`` is the test set (same as ``test``),
    for retraining a chosen subnet.

    ``max_images`` caps each of train, val and test at that many images: the first ones after the
    permutation for train/val, a seeded random subset for test, so class balance is roughly kept.
    """
    if protocol not in SEARCH_PROTOCOLS:
        raise UsageError(f"unknown protocol {protocol!r}; valid: {', '.join(SEARCH_PROTOCOLS)}")
    if max_images is not None and max_images <= 0:
        raise UsageError(f"max_images must be > 0, got {max_images}")
    rng = np.random.default_rng(seed)
    n = len(raw.train_y)
    perm = torch.from_numpy(rng.permutation(n))
    if protocol == "search":
        train_idx, val_idx = perm[: n // 2], perm[n // 2:]
    else:
        train_idx, val_idx = perm, None
    cap = max_images if max_images is not None else max(n, len(raw.test_y))
    train_idx = train_idx[:cap]
    train = (raw.train_x[train_idx], raw.train_y[train_idx])

    if len(raw.test_y) > cap:
        test_idx = torch.from_numpy(np.sort(rng.permutation(len(raw.test_y))[:cap]))
        test = (raw.test_x[test_idx], raw.test_y[test_idx])
    else:
        test = (raw.test_x, raw.test_y)

    if val_idx is not None:
        val_idx = val_idx[:cap]
        val = (raw.train_x[val_idx], raw.train_y[val_idx])
    else:
        val = test
    return Splits(train, val, test)


# ----------------------------------------------------------------------------------------------
# batches


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0])


class TensorBatches:
    """Mini-batches from uint8 image tensors, normalised (and augmented) on the fly, reproducible per epoch.

    Yields ``(x, y)``: x float32 (B, 3, H, W) equal to ``(aug(img) / 255 - mean) / std``, y int64 (B,), both
    on ``device``. Augmentation is the NB201/CIFAR one: random crop after zero padding (``pad`` pixels on
    each side, default ``H // 8``: 4 for 32x32, 2 for 16x16 as in NB201) and a horizontal flip with
    p = 0.5, done batched on tensors. The order and every random draw depend only on ``(seed, epoch)``
    (see ``set_epoch``), so iterating the same epoch twice gives identical batches. With a CUDA
    ``device`` the whole uint8 data set is moved to the GPU once, here, and batches are built there.
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, mean: Sequence[float], std: Sequence[float],
                 augment: bool, shuffle: bool, seed: int = 0, drop_last: bool = False,
                 device: str | torch.device = "cpu", pad: int | None = None):
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
            raise UsageError(f"x must be uint8 (N, 3, H, W), got {x.dtype} {tuple(x.shape)}")
        if y.ndim != 1 or len(y) != len(x):
            raise UsageError(f"y must be (N,) with N = {len(x)}, got {tuple(y.shape)}")
        if batch_size <= 0:
            raise UsageError(f"batch_size must be > 0, got {batch_size}")
        if seed < 0:
            raise UsageError(f"seed must be >= 0, got {seed}")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = y.to(self.device, torch.int64)
        self.batch_size = int(batch_size)
        self.augment = bool(augment)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.pad = x.shape[2] // 8 if pad is None else int(pad)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.epoch = 0

    @property
    def num_images(self) -> int:
        return len(self.y)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration uses."""
        if epoch < 0:
            raise UsageError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n, b = self.num_images, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n, (h, w), p = self.num_images, self.x.shape[2:], self.pad
        g = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        if self.augment:  # drawn for the whole epoch at once, so they do not depend on batch_size
            offsets = torch.randint(0, 2 * p + 1, (n, 2), generator=g).to(self.device)
            flips = (torch.rand(n, generator=g) < 0.5).to(self.device)
        order = order.to(self.device)
        for i in range(len(self)):
            sl = slice(i * self.batch_size, (i + 1) * self.batch_size)
            idx = order[sl]
            xb = self.x[idx]
            if self.augment:
                xb = self._crop_flip(xb, offsets[sl], flips[sl], h, w, p)
            xb = xb.float().div_(255).sub_(self.mean).div_(self.std)
            yield xb, self.y[idx]

    @staticmethod
    def _crop_flip(xb: Tensor, offsets: Tensor, flips: Tensor, h: int, w: int, p: int) -> Tensor:
        """Crop each image at its (dy, dx) in the zero-padded image, then mirror it where ``flips``."""
        b = len(xb)
        padded = xb.new_zeros((b, 3, h + 2 * p, w + 2 * p))
        padded[:, :, p:p + h, p:p + w] = xb
        ar_h = torch.arange(h, device=xb.device)
        ar_w = torch.arange(w, device=xb.device)
        rows = offsets[:, 0:1] + ar_h                                    # (B, H)
        cols = offsets[:, 1:2] + torch.where(flips[:, None], w - 1 - ar_w, ar_w)  # (B, W)
        bi = torch.arange(b, device=xb.device)[:, None, None, None]
        ci = torch.arange(3, device=xb.device)[None, :, None, None]
        return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]
