"""Proxy evaluation: a subnet inherits the supernet's weights and is scored on held-out images.

BatchNorm statistics of a weight-shared path are wrong for any single subnet, so before scoring we
either recalibrate them on a few training batches (`recalibrate`, OFA's recipe, the default), use each
evaluation batch's own statistics (`batch`), or keep the supernet's (`inherit`). Results are cached in
SQLite (WAL mode: survives crashes, allows concurrent writers) keyed by the checkpoint's hash, the
evaluation settings and the canonical arch, so isomorphic cells, later generations and every other
device's search reuse one evaluation.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .bn import BN_MODES, batch_statistics, recalibrate_bn
from .data import TensorBatches, load_dataset, make_splits
from .spaces.base import Arch
from .trainer import CHECKPOINT, load_supernet


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file (the supernet checkpoint's identity in the cache)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


class ResultCache:
    """Persistent (source, settings, arch) -> value store in SQLite WAL mode. Proxy accuracy uses the
    checkpoint hash as source; measured latency the target's description."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS results (source TEXT, setting TEXT, arch TEXT, value REAL, "
                         "seconds REAL, PRIMARY KEY (source, setting, arch))")

    def get(self, source: str, setting: str, archs: Sequence[str]) -> dict[str, float]:
        """Stored values of those `archs` that have one."""
        out: dict[str, float] = {}
        for i in range(0, len(archs), 500):
            part = list(archs[i:i + 500])
            q = ",".join("?" * len(part))
            for arch, value in self._db.execute(
                    f"SELECT arch, value FROM results WHERE source=? AND setting=? AND arch IN ({q})",
                    [source, setting, *part]):
                out[arch] = value
        return out

    def seconds(self, source: str, setting: str, archs: Sequence[str]) -> float:
        """Total seconds the stored values of `archs` took to compute (what they would cost again)."""
        total = 0.0
        for i in range(0, len(archs), 500):
            part = list(archs[i:i + 500])
            q = ",".join("?" * len(part))
            row = self._db.execute(f"SELECT SUM(seconds) FROM results WHERE source=? AND setting=? AND arch IN ({q})",
                                   [source, setting, *part]).fetchone()
            total += row[0] or 0.0
        return total

    def put(self, source: str, setting: str, arch: str, value: float, seconds: float) -> None:
        """Store one value and the seconds it took to compute."""
        self._db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)", (source, setting, arch, value, seconds))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def default_cache_path(checkpoint: str | Path) -> Path:
    """Where proxy scores of `checkpoint` are cached by default: `proxy_cache.sqlite` beside it, or, when that
    folder is not writable (a shared or read-only run), `$XDG_CACHE_HOME/hwnas/proxy_cache.sqlite` (default
    `~/.cache`). Entries are keyed by the checkpoint's hash, so one cache file safely serves many supernets."""
    folder = Path(checkpoint).parent
    if os.access(folder, os.W_OK):
        return folder / "proxy_cache.sqlite"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hwnas" / "proxy_cache.sqlite"


@dataclass
class ProxySettings:
    """How a subnet is scored; part of the cache key."""

    bn_mode: str = "recalibrate"
    calib_batches: int = 4      # training batches for BN recalibration
    calib_batch_size: int = 64
    # held-out images scored per arch: at 1,000 the binomial error (~1.4 points) is as large as the proxy's
    # spread over good NB201 cells, so rankings among them are mostly noise; with 5,000 the CPU SPOS
    # supernet's Kendall tau rose from 0.21 to 0.39 (benchmarks/results/ranking.md)
    eval_images: int = 5000
    batch_size: int = 250
    seed: int = 0

    def key(self) -> str:
        return (f"bn={self.bn_mode};calib={self.calib_batches}x{self.calib_batch_size};"
                f"eval={self.eval_images};seed={self.seed}")


class ProxyEvaluator:
    """Held-out accuracy (%) of subnets with inherited weights, cached on disk.

    `hits` and `misses` count cache answers and real evaluations since construction.
    """

    def __init__(self, run: str | Path, settings: ProxySettings | None = None, cache: str | Path | None = None,
                 data: str | None = None, device: str = "cpu", progress: bool = True):
        self.settings = settings or ProxySettings()
        if self.settings.bn_mode not in BN_MODES:
            raise ValueError(f"unknown BN mode '{self.settings.bn_mode}'; valid: {', '.join(BN_MODES)}")
        run = Path(run)
        ckpt_file = run / CHECKPOINT if run.is_dir() else run
        self.space, self.supernet, self.config = load_supernet(ckpt_file, device=device)
        self.checkpoint = str(ckpt_file)
        self.ckpt_hash = file_sha256(ckpt_file)
        self.cache = ResultCache(cache or default_cache_path(ckpt_file))
        self.device, self.progress = device, progress
        self.hits = self.misses = 0
        self.seconds = 0.0
        self._data = data
        self._batches: tuple[TensorBatches, list[torch.Tensor]] | None = None

    def _load_batches(self) -> tuple[TensorBatches, list[torch.Tensor]]:
        if self._batches is None:
            s, cfg = self.settings, self.config
            raw = load_dataset(cfg["dataset"], self._data or cfg.get("data"))
            splits = make_splits(raw, protocol=cfg.get("protocol", "search"), seed=cfg["seed"])
            vx, vy = splits.val
            n = min(s.eval_images, len(vy))
            held_out = TensorBatches(vx[:n], vy[:n], s.batch_size, raw.mean, raw.std, augment=False, shuffle=False,
                                     device=self.device)
            calib_src = TensorBatches(*splits.train, s.calib_batch_size, raw.mean, raw.std, augment=False,
                                      shuffle=True, seed=s.seed, drop_last=True, device=self.device)
            calib = [x for _, (x, _) in zip(range(s.calib_batches), calib_src)]
            self._batches = (held_out, calib)
        return self._batches

    @torch.no_grad()
    def subnet(self, arch: Arch) -> torch.nn.Module:
        """The eval-mode subnet with inherited weights, BN statistics recalibrated when the settings say so
        (what is scored, and what `hwnas export` writes)."""
        subnet = self.space.build_subnet(arch, supernet=self.supernet).to(self.device)
        if self.settings.bn_mode == "recalibrate":
            recalibrate_bn(subnet, self._load_batches()[1], subnet)
        return subnet.eval()

    @torch.no_grad()
    def score(self, arch: Arch) -> float:
        """Accuracy (%) of one arch, always computed (no cache)."""
        held_out, _ = self._load_batches()
        subnet = self.subnet(arch)
        mode = self.settings.bn_mode
        correct = total = 0
        ctx = batch_statistics(subnet) if mode == "batch" else nullcontext()
        with ctx:
            for x, y in held_out:
                correct += (subnet(x).argmax(1) == y).sum().item()
                total += len(y)
        return 100.0 * correct / max(total, 1)

    def accuracy(self, archs: Iterable[Arch]) -> np.ndarray:
        """Proxy accuracy (%) per arch; isomorphic archs share one cached evaluation."""
        archs = list(archs)
        keys = [self.space.to_str(self.space.canonical(a)) for a in archs]
        setting = self.settings.key()
        known = self.cache.get(self.ckpt_hash, setting, sorted(set(keys)))
        todo = sorted(set(keys) - set(known))
        self.hits += len(keys) - len(todo)
        bar = tqdm(todo, desc="proxy eval", unit="arch", disable=not self.progress or not todo, leave=False)
        for key in bar:
            t0 = time.perf_counter()
            acc = self.score(self.space.from_str(key))
            dt = time.perf_counter() - t0
            self.cache.put(self.ckpt_hash, setting, key, acc, dt)
            known[key] = acc
            self.misses += 1
            self.seconds += dt
        return np.array([known[k] for k in keys], dtype=float)

    def compute_seconds(self, archs: Iterable[Arch]) -> float:
        """Seconds the cached scores of these archs (each canonical class once) took to compute, whenever that
        was: their cost, even when this evaluator answered them all from the cache."""
        keys = sorted({self.space.to_str(self.space.canonical(a)) for a in archs})
        return self.cache.seconds(self.ckpt_hash, self.settings.key(), keys)

    def error(self, archs: Iterable[Arch]) -> np.ndarray:
        """Proxy top-1 error (%) = 100 - accuracy."""
        return 100.0 - self.accuracy(archs)
