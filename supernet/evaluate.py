"""Proxy evaluation: a subnet inherits the supernet's weights and is scored on held-out images.

BatchNorm statistics of a weight-shared path are wrong for any single subnet, so before scoring we
either recalibrate them on a few training batches (`recalibrate`, OFA's recipe, the default), use each
evaluation batch's own statistics (`batch`), or keep the supernet's (`inherit`). Results are cached in
SQLite (WAL mode: survives crashes, allows concurrent writers) keyed by the checkpoint's hash, the
evaluation settings and the canonical arch, so isomorphic cells, later generations and every other
device's search reuse one evaluation.
"""
from __future__ import annotations

import functools
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from hwnas.core.cache import CachedScorer, ResultCache
from hwnas.core.config import option
from hwnas.core.download import file_digest
from hwnas.core.errors import UsageError
from hwnas.core.paths import cache_dir

from .bn import BN_MODES, batch_statistics, fold_batchnorm, recalibrate_bn
from .data import TensorBatches, load_dataset, make_splits
from .few_shot import route
from .spaces.base import Arch
from .trainer import CHECKPOINT, load_supernet


def default_cache_path(checkpoint: str | Path) -> Path:
    """Where proxy scores of `checkpoint` are cached by default: `proxy_cache.sqlite` beside it, or, when that
    folder is not writable (a shared or read-only run), `proxy_cache.sqlite` in the cache folder
    (`$HWNAS_CACHE`, else `~/.cache/hwnas`). Entries are keyed by the checkpoint's hash, so one cache file safely
    serves many supernets."""
    folder = Path(checkpoint).parent
    if os.access(folder, os.W_OK):
        return folder / "proxy_cache.sqlite"
    return cache_dir() / "proxy_cache.sqlite"


@dataclass
class ProxySettings:
    """How a subnet is scored; part of the cache key."""

    bn_mode: str = option("recalibrate", help="proxy BN statistics: recalibrate (on training batches), batch "
                                              "(each evaluation batch's own) or inherit (the supernet's)")
    calib_batches: int = option(2, help="training batches for BN recalibration")
    calib_batch_size: int = option(64, help="images per BN recalibration batch")
    # held-out images scored per arch. The default proxy (an ensemble of this accuracy and three zero-cost
    # signals) ranks the 6,466 canonical cells as well on 1,000 images as on 2,000 (tau 0.684 vs 0.690, worst
    # device's mean regret 0.85 vs 0.86; benchmarks/results/ranking.md), and 1,000 brings a whole-space score
    # under 30 minutes on 2 cores (27.5 min; benchmarks/results/score_all.md), so that is the default. The
    # supernet's accuracy alone is noisy there (binomial error ~1.5 points on 1,000 images, as large as its
    # spread over good cells): with --accuracy proxy_err, use 5,000 (the CPU SPOS supernet's tau rose from
    # 0.21 at 1,000 to 0.39 at 5,000; benchmarks/results/ranking_supernets.md)
    eval_images: int = option(1000, help="held-out images scored per subnet (the default proxy ranks as well on "
                                         "1,000 as on 2,000; for the supernet's accuracy alone, --accuracy "
                                         "proxy_err, 5,000 rank better: benchmarks/results/ranking_supernets.md)")
    eval_batch_size: int = option(250, help="images per evaluation batch")
    calib_seed: int = option(0, help="seed of the order of the recalibration batches")

    def validate(self) -> "ProxySettings":
        """One-line UsageError for a value that would score every arch wrongly (0 images: 100% error for all;
        a negative count: every held-out image; 0 calibration batches with `recalibrate`: reset statistics)."""
        for name, least in (("eval_images", 1), ("eval_batch_size", 1), ("calib_batch_size", 1),
                            ("calib_batches", 1 if self.bn_mode == "recalibrate" else 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                hint = (" (with --bn-mode recalibrate; --bn-mode inherit keeps the supernet's statistics)"
                        if name == "calib_batches" else "")
                raise UsageError(f"--{name.replace('_', '-')} must be an integer >= {least}{hint}, got {value!r}")
        if self.bn_mode not in BN_MODES:
            raise UsageError(f"unknown BN mode '{self.bn_mode}'; valid: {', '.join(BN_MODES)}")
        return self

    def key(self) -> str:
        return (f"bn={self.bn_mode};calib={self.calib_batches}x{self.calib_batch_size};"
                f"eval={self.eval_images};seed={self.calib_seed}")


class ProxyEvaluator(CachedScorer):
    """Held-out accuracy (%) of subnets with inherited weights, cached on disk.

    `hits` and `misses` count cache answers and real evaluations since construction.
    """

    def __init__(self, run: str | Path, settings: ProxySettings | None = None, cache: str | Path | None = None,
                 data: str | None = None, device: str = "cpu", progress: bool = True, channels_last: bool = True,
                 fold_bn: bool = True, workers: Any = None, expect_hash: str | None = None):
        self.settings = (settings or ProxySettings()).validate()
        self.workers = workers  # a hwnas.core.workers.Workers: missing scores computed there
        run = Path(run)
        ckpt_file = run / CHECKPOINT if run.is_dir() else run
        self.space, self.supernet, self.config = load_supernet(ckpt_file, device=device)
        self.checkpoint = str(ckpt_file)
        self.ckpt_hash = file_digest(ckpt_file)
        if expect_hash is not None and expect_hash != self.ckpt_hash:
            raise UsageError(f"checkpoint '{ckpt_file}' here is not the one the search scores (sha256 "
                             f"{self.ckpt_hash[:12]}, expected {expect_hash[:12]}): give every worker the same file")
        self.cache = ResultCache(cache or default_cache_path(ckpt_file))
        self.source, self.setting, self.label = self.ckpt_hash, self.settings.key(), "proxy eval"
        self.device, self.progress = device, progress
        self.layout = torch.channels_last if channels_last else torch.contiguous_format
        self.fold_bn = fold_bn
        self._data = data
        self._batches: tuple[list[tuple[torch.Tensor, torch.Tensor]], list[torch.Tensor]] | None = None

    def _load_batches(self) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[torch.Tensor]]:
        """(held-out batches, calibration batches), normalised once and kept, in the layout the subnets are
        scored in (channels-last unless `channels_last=False`)."""
        if self._batches is None:
            s, cfg = self.settings, self.config
            raw = load_dataset(cfg["dataset"], self._data or cfg.get("data"))
            splits = make_splits(raw, protocol=cfg.get("protocol", "search"), seed=cfg["seed"])
            vx, vy = splits.val
            n = min(s.eval_images, len(vy))
            held_out = TensorBatches(vx[:n], vy[:n], s.eval_batch_size, raw.mean, raw.std, augment=False, shuffle=False,
                                     device=self.device)
            calib_src = TensorBatches(*splits.train, s.calib_batch_size, raw.mean, raw.std, augment=False,
                                      shuffle=True, seed=s.calib_seed, drop_last=True, device=self.device)
            calib = [x.contiguous(memory_format=self.layout) for _, (x, _) in zip(range(s.calib_batches), calib_src)]
            held = [(x.contiguous(memory_format=self.layout), y) for x, y in held_out]
            self._batches = (held, calib)
        return self._batches

    @torch.no_grad()
    def subnet(self, arch: Arch, memory_format: torch.memory_format = torch.contiguous_format) -> torch.nn.Module:
        """The eval-mode subnet with inherited weights, BN statistics recalibrated when the settings say so
        (what is scored, and what `hwnas export` writes), in `memory_format` (scoring recalibrates in its own
        channels-last layout: 1.10x per scored cell, `benchmarks/results/proxy_speed.md`). A few-shot supernet
        lends the weights of the part that owns `arch`."""
        subnet = self.space.build_subnet(arch, supernet=route(self.supernet, arch)).to(self.device)
        subnet = subnet.to(memory_format=memory_format)
        if self.settings.bn_mode == "recalibrate":
            recalibrate_bn(subnet, self._load_batches()[1], subnet)
        return subnet.eval()

    @torch.no_grad()
    def score(self, arch: Arch) -> float:
        """Accuracy (%) of one arch, always computed (no cache). Scored in channels-last layout (1.86x the
        default layout on CPU for these small convolutions) with each BatchNorm folded into its convolution
        (1.19x more on 2,000 images, within noise on 1,000; not in `batch` mode, which needs the BN layers),
        measured side by side in `benchmarks/results/proxy_speed.md`; both change float rounding only."""
        held_out, _ = self._load_batches()
        subnet = self.subnet(arch, self.layout)
        mode = self.settings.bn_mode
        if mode != "batch" and self.fold_bn:
            fold_batchnorm(subnet)
        subnet = subnet.to(memory_format=self.layout)
        correct = total = 0
        ctx = batch_statistics(subnet) if mode == "batch" else nullcontext()
        with ctx:
            for x, y in held_out:
                correct += (subnet(x).argmax(1) == y).sum().item()
                total += len(y)
        return 100.0 * correct / max(total, 1)

    def compute(self, key: str) -> float:
        return self.score(self.space.from_str(key))

    def remote(self):
        """A worker's copy: the same checkpoint (its path, checked by hash), settings and data, no cache."""
        data = os.path.abspath(self._data) if self._data else None
        factory = functools.partial(ProxyEvaluator, os.path.abspath(self.checkpoint), self.settings, cache=":memory:",
                                    data=data, device=self.device, progress=False,
                                    channels_last=self.layout == torch.channels_last, fold_bn=self.fold_bn,
                                    expect_hash=self.ckpt_hash)
        return factory, f"proxy {self.ckpt_hash} {self.setting} {self._data} {self.device} {self.layout} {self.fold_bn}"

    def accuracy(self, archs: Iterable[Arch]) -> np.ndarray:
        """Proxy accuracy (%) per arch; isomorphic archs share one cached evaluation."""
        return np.array(self.cached([self.space.to_str(self.space.canonical(a)) for a in archs]), dtype=float)

    def compute_seconds(self, archs: Iterable[Arch]) -> float:
        """Seconds the cached scores of these archs (each canonical class once) took to compute, whenever that
        was: their cost, even when this evaluator answered them all from the cache."""
        return super().compute_seconds([self.space.to_str(self.space.canonical(a)) for a in archs])

    def error(self, archs: Iterable[Arch]) -> np.ndarray:
        """Proxy top-1 error (%) = 100 - accuracy."""
        return 100.0 - self.accuracy(archs)
