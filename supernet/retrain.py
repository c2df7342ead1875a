"""Retrain one chosen subnet from scratch (no supernet, no inherited weights): the accuracy a searched
architecture really reaches, with its size, compute and measured CPU latency.

Two recipes (every value is a `RetrainConfig` field, or the `hwnas retrain` flag of the same name):

- **Full NAS-Bench-201 protocol** (the benchmark's own 200-epoch numbers; a GPU job):
  C=16, N=5, 200 epochs, batch 256, SGD lr 0.1 with nesterov momentum 0.9 and weight decay 5e-4,
  cosine annealing to 0, random crop (4 px zero padding) + horizontal flip, the whole training set
  (50k images for CIFAR), test accuracy on the whole test set.
  `hwnas retrain --arch ARCH --channels 16 --cells 5 --epochs 200 --batch-size 256 --lr 0.1
  --max-images all --device cuda`.
- **CPU default** (the dataclass defaults; about 6 min on one CPU thread, about 67% CIFAR-10 test accuracy
  for a good cell, for checking an arch or the pipeline on a laptop): the same optimiser, schedule and augmentation, but C=16, N=1,
  10 epochs, batch 128, lr 0.1, the first 10,000 training images and a 10,000-image test set.
  Measured numbers: `benchmarks/recipes/retrain.md`.

The run folder holds `config.json`, `retrain.pt` (the checkpoint: model, optimizer, scheduler, epoch, every
RNG state and the metrics rows), `metrics.csv` (one row per epoch: epoch, train_loss, train_acc, test_acc,
lr, seconds, images_per_s) and `result.json` (final test accuracy, params, FLOPs, CPU latency). Every file
is written atomically; a resumed run ends with exactly the weights and metrics of an uninterrupted one.

Space-generic: it only uses `get_space(...).parse` and `build_subnet`. Imports `hardware` (counters and
timing), never `evolve` or `benchmarks`.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hwnas.hardware.counters import flops_m, params_m
from hwnas.hardware.measure import measure

from hwnas.core.config import config_from_dict, option
from hwnas.core.datasets import DATASETS, dataset_info
from hwnas.core.errors import CorruptFileError, UsageError
from hwnas.core.files import atomic_write_json

from .checkpoint import load_checkpoint, save_checkpoint, rng_states, set_rng_states
from .data import TensorBatches, load_dataset, make_splits
from .spaces import SearchSpace, SpaceConfig, get_space, space_from_config
from .limits import RunBudget, check_size
from .trainer import _Log, check_torch_device, open_run, run_in_folder, train_epoch

log = logging.getLogger(__name__)

CHECKPOINT = "retrain.pt"
LOG = "retrain.log"
# What defines a retraining run: a resumed run must ask for exactly these (out, data, device, progress may move).
_SAME_ON_RESUME = ("space", "space_options", "arch", "dataset", "epochs", "channels", "cells", "batch_size",
                   "lr", "weight_decay", "max_images", "seed")
_LATENCY = {"target": "cpu", "warmup": 10, "repeats": 50, "threads": 1}  # batch 1, one thread: steady on shared cores


@dataclass(kw_only=True)
class RetrainConfig(SpaceConfig, RunBudget):
    """Everything that defines a from-scratch retraining run (the `hwnas retrain` options). The defaults are
    the short CPU recipe; the module docstring gives the full NAS-Bench-201 one."""

    arch: str = option(help="arch string of the subnet (required), e.g. one from a front's arch_str column")
    dataset: str = option("cifar10", help="data set", choices=DATASETS.list)
    epochs: int = option(10, help="training epochs (NB201: 200)")
    channels: int = option(16, help="C: channels of the first stage (NB201: 16)")
    cells: int = option(1, help="N: cells per stage (NB201: 5)")
    batch_size: int = option(128, help="training batch size (NB201: 256)")
    lr: float = option(0.1, help="SGD nesterov learning rate, cosine to 0")
    weight_decay: float = option(5e-4, help="weight decay")
    max_images: int | None = option(10_000, help="cap on the training and the test images, or 'all' (NB201: all)")
    seed: int = option(0, help="seed of the initial weights, the split and the augmentation")
    out: str = option("runs/retrain", help="run folder: checkpoint, config, metrics, result, log")
    data: str | None = option(None, help="data folder (default: $HWNAS_DATA, else ./data)")
    download: bool = option(False, help="download the data set if it is missing")
    device: str = option("cpu", help="torch device: cpu, cuda or cuda:N")
    progress: bool = option(True, help="progress bars", cli=False)

    def validate(self) -> RetrainConfig:
        """Check every value, raising UsageError with one line naming the bad one and the valid ones."""
        if not isinstance(self.space_options, dict):
            raise UsageError(f"space options must be a mapping of name to value, got {self.space_options!r}")
        space = get_space(self.space, **self.space_options)
        if not isinstance(self.arch, str) or not self.arch.strip():
            raise UsageError(f"--arch is required: an arch string of space '{self.space}'")
        try:
            space.parse(self.arch)
        except ValueError as exc:
            raise UsageError(f"bad --arch for space '{self.space}': {exc}") from None
        dataset_info(self.dataset)
        for name in ("epochs", "channels", "cells", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
        if self.max_images is not None and (not isinstance(self.max_images, int) or self.max_images < 1):
            raise UsageError(f"--max-images must be an integer >= 1 (or None for every image), got {self.max_images!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise UsageError(f"--seed must be an integer >= 0, got {self.seed!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise UsageError(f"--lr must be a finite number > 0, got {self.lr!r}")
        if not (isinstance(self.weight_decay, (int, float)) and math.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise UsageError(f"--weight-decay must be a finite number >= 0, got {self.weight_decay!r}")
        check_torch_device(self.device)
        return self

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RetrainConfig:
        """A config from a dict such as a run's config.json; UsageError naming an unknown key or a value of the
        wrong type."""
        return config_from_dict(cls, values, "the retraining config")


def build_retrain(cfg: RetrainConfig):
    """(space, arch, subnet, optimizer, scheduler, train batches, test batches, number of classes) for `cfg`,
    no training.

    The subnet is initialised from `torch.manual_seed(cfg.seed)`; training batches are shuffled and
    augmented (random crop + flip) from `cfg.seed` and the epoch only; test batches are plain, in order.
    """
    space = get_space(cfg.space, **cfg.space_options)
    arch = space.parse(cfg.arch)
    raw = load_dataset(cfg.dataset, cfg.data, download=cfg.download)
    splits = make_splits(raw, protocol="full", max_images=cfg.max_images, seed=cfg.seed)
    if len(splits.train[1]) < cfg.batch_size:
        raise UsageError(f"--batch-size {cfg.batch_size} exceeds the {len(splits.train[1])} training images; "
                         f"lower --batch-size or raise --max-images")
    torch.manual_seed(cfg.seed)
    model = space.build_subnet(arch, channels=cfg.channels, cells=cfg.cells,
                               num_classes=raw.num_classes).to(cfg.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                                weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs, eta_min=0.0)
    train_batches = TensorBatches(*splits.train, cfg.batch_size, raw.mean, raw.std, augment=True, shuffle=True,
                                  seed=cfg.seed, drop_last=True, device=cfg.device)
    test_batches = TensorBatches(*splits.test, 256, raw.mean, raw.std, augment=False, shuffle=False,
                                 device=cfg.device)
    return space, arch, model, optimizer, scheduler, train_batches, test_batches, raw.num_classes


@torch.no_grad()
def top1_accuracy(model: nn.Module, batches: TensorBatches) -> float:
    """Top-1 accuracy (%) of a standalone network on `batches`, in eval mode (BN running statistics)."""
    was_training = model.training
    model.eval()
    correct = total = 0
    for x, y in batches:
        correct += (model(x).argmax(1) == y).sum().item()
        total += len(y)
    model.train(was_training)
    return 100.0 * correct / max(total, 1)


def _check_resumable(ckpt: dict[str, Any], cfg: RetrainConfig, space: SearchSpace, path: Path) -> None:
    """ValueError naming the first setting in which `cfg` differs from the run `ckpt` holds."""
    old = ckpt["config"]
    if "arch" not in old:
        raise UsageError(f"'{path}' is not a retraining checkpoint (a supernet's?)")
    for key in _SAME_ON_RESUME:
        before, now = old.get(key), getattr(cfg, key)
        if key == "arch":  # the same arch written another way (tuple, other spelling) is the same run
            try:
                before = space.to_str(space.parse(before))
            except ValueError:
                pass
            now = space.to_str(space.parse(now))
        if before != now:
            raise UsageError(f"checkpoint '{path}' was trained with {key}={before!r}; this run asks {key}={now!r}")


def retrain(cfg: RetrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train the subnet `cfg.arch` from scratch (or resume it) as `cfg` says; returns the summary also
    written to result.json: final `test_acc` (%), `params_m` (millions), `flops_m` (millions, one image),
    `latency_ms_cpu` (median ms, batch 1, one thread), `wall_seconds` (training + per-epoch testing)."""
    cfg.validate()
    space, info = get_space(cfg.space, **cfg.space_options), dataset_info(cfg.dataset)
    check_size(space, cfg.channels, cfg.cells, info.num_classes, cfg.batch_size, info.input_shape()[1:],
               cfg.budget(), supernet=False, arch=space.parse(cfg.arch))
    out = Path(cfg.out)
    ckpt = open_run(out, CHECKPOINT, resume, "a retraining run")
    return run_in_folder(out, out / CHECKPOINT, lambda: _retrain(cfg, ckpt, out), LOG)


def _retrain(cfg: RetrainConfig, ckpt: dict[str, Any] | None, out: Path) -> dict[str, Any]:
    ckpt_path = out / CHECKPOINT

    space, arch, model, optimizer, scheduler, train_batches, test_batches, num_classes = build_retrain(cfg)
    metrics = _Log(out / "metrics.csv")
    start = 0
    if ckpt is not None:
        _check_resumable(ckpt, cfg, space, ckpt_path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_states(ckpt["rng"])
        start = ckpt["epoch"] + 1
        metrics.rows = list(ckpt["metrics"])
    atomic_write_json(out / "config.json", asdict(cfg))
    clock = cfg.clock((cfg.epochs - start) * len(train_batches))

    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(start, cfg.epochs):
        train_batches.set_epoch(epoch)
        model.train()
        lr = optimizer.param_groups[0]["lr"]

        def step(x, y):
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss.item(), logits
        t0 = time.perf_counter()
        done = train_epoch(train_batches, step, f"retrain epoch {epoch + 1}/{cfg.epochs}", epoch, cfg.progress,
                           clock)
        scheduler.step()
        acc = top1_accuracy(model, test_batches)
        metrics.add({"epoch": epoch + 1, "train_loss": done["train_loss"], "train_acc": done["train_acc"],
                 "test_acc": acc, "lr": lr, "seconds": time.perf_counter() - t0,
                 "images_per_s": done["images"] / max(done["seconds"], 1e-9)})
        save_checkpoint({"config": asdict(cfg), "epoch": epoch, "num_classes": num_classes,
                           "model": model.state_dict(),
                           "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                           "rng": rng_states(), "metrics": metrics.rows}, ckpt_path)
        row = metrics.rows[-1]
        log.info("epoch %d/%d: loss %.3f train acc %.1f%% test acc %.2f%% (%.0f img/s)", epoch + 1, cfg.epochs,
                 row["train_loss"], row["train_acc"], row["test_acc"], row["images_per_s"])
        clock.epoch_done(epoch, last=epoch + 1 == cfg.epochs)

    final = metrics.rows[-1]
    input_shape = (1, *test_batches.x.shape[1:])
    timing = measure(model, input_shape=input_shape, **_LATENCY)
    result = {"run": str(out), "space": cfg.space, "space_options": cfg.space_options, "arch": space.to_str(arch),
              "dataset": cfg.dataset, "epochs": cfg.epochs, "channels": cfg.channels, "cells": cfg.cells,
              "train_images": train_batches.num_images, "test_images": test_batches.num_images,
              "test_acc": final["test_acc"], "train_acc": final["train_acc"],
              "params_m": params_m(model), "flops_m": flops_m(model, input_shape),
              "latency_ms_cpu": timing.median_ms, "latency": timing.to_dict(),
              "wall_seconds": sum(r["seconds"] for r in metrics.rows)}
    atomic_write_json(out / "result.json", result)
    return result


def load_retrained(run: str | Path, device: str = "cpu") -> tuple[SearchSpace, nn.Module, dict[str, Any]]:
    """(space, retrained subnet in eval mode, config dict) from a retraining run folder or its checkpoint."""
    path = Path(run)
    if path.is_dir():
        path = path / CHECKPOINT
    ckpt = load_checkpoint(path)
    cfg = RetrainConfig.from_dict(ckpt["config"])
    if "num_classes" not in ckpt:
        raise UsageError(f"'{path}' is not a retraining checkpoint (a supernet's?)")
    space = space_from_config(ckpt["config"])
    model = space.build_subnet(space.parse(cfg.arch), channels=cfg.channels, cells=cfg.cells,
                               num_classes=ckpt["num_classes"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise CorruptFileError(f"checkpoint '{path}' does not fit space '{cfg.space}' with its config") from exc
    return space, model.to(device).eval(), ckpt["config"]


__all__ = ["CHECKPOINT", "RetrainConfig", "build_retrain", "load_retrained", "retrain", "top1_accuracy"]
