"""One training loop for every supernet mode: progress bar, per-epoch metrics log, atomic checkpoint
each epoch, exact resume.

A run folder holds `config.json`, `supernet.pt` (the checkpoint: model, weight optimizer, scheduler,
the mode's state such as architecture parameters and their optimizer, epoch, every RNG state),
`metrics.csv` (one row per epoch) and `result.json` (the final summary).
"""
from __future__ import annotations

import copy
import csv
import io
import logging
import math
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from hwnas.core.config import config_from_dict, option
from hwnas.core.datasets import DATASETS, dataset_info
from hwnas.core.errors import UsageError
from hwnas.core.files import atomic_write_json, atomic_write_text, read_json
from hwnas.core.logs import log_to_file

from .bn import batch_statistics
from .checkpoint import load_checkpoint, save_checkpoint, rng_states, set_rng_states
from .data import SEARCH_PROTOCOLS, TensorBatches, load_dataset, make_splits
from .few_shot import FewShotSupernet, check_split
from .distributed import World, barrier, check_divisible, check_in_sync, gather, join, leave
from .limits import RunBudget, RunClock, check_size
from .modes import get_mode, list_modes
from .modes.spos import SAMPLERS, check_schedule
from .spaces import SpaceConfig, get_space, space_from_config

log = logging.getLogger(__name__)

CHECKPOINT = "supernet.pt"
LOG = "train.log"
# Settings a resumed run must share with the checkpoint it continues (epochs may grow; out/device may move).
_SAME_ON_RESUME = ("space", "space_options", "mode", "dataset", "channels", "cells", "max_images", "batch_size", "seed",
                   "lr", "weight_decay", "order", "arch_lr", "protocol", "sampler", "few_shot_edge", "few_shot_epochs",
                   "distill", "schedule", "micro_batches", "world_size")


@dataclass
class TrainConfig(SpaceConfig, RunBudget):
    """Everything that defines a supernet training run; `hwnas train` has one flag per field."""

    mode: str = option("spos", help="training mode", choices=list_modes)
    sampler: str = option("uniform", help="SPOS path sampler: uniform (over arch strings, the paper's), canonical "
                                          "(uniform over isomorphism classes), fair (FairNAS: every choice of every "
                                          "decision once per step, at m times the compute) or sandwich (BigNAS: "
                                          "largest, smallest and 2 random paths per step, 4x the compute; layer-wise "
                                          "spaces)")
    distill: bool = option(True, help="with --sampler sandwich: in-place distillation, the paths other than the "
                                      "largest learn from its soft predictions (BigNAS/OFA); --no-distill: labels")
    schedule: str = option("none", help="SPOS schedule: none, or progressive (Once-for-All's progressive "
                                        "shrinking: largest block, then every kernel, then depth, then widths, "
                                        "equal shares of the epochs; mobilenet, shufflenet)")
    few_shot_edge: int | None = option(None, help="few-shot NAS (Zhao et al., ICML 2021; SPOS only): split the supernet "
                                                   "on decision K (an NB201 edge 0-5, a layer) into one sub-supernet "
                                                   "per choice, each fine-tuned from the parent on the paths taking "
                                                   "its choice; the proxy scores an arch with its choice's part")
    few_shot_epochs: int = option(1, help="epochs each few-shot sub-supernet is fine-tuned: the parent trains "
                                          "epochs - F, each part the last F of the same cosine schedule (total "
                                          "epochs - F + choices x F)")
    dataset: str = option("cifar10", help="data set", choices=DATASETS.list)
    epochs: int = option(1, help="training epochs (with --few-shot-edge: the schedule length of each part)")
    channels: int = option(16, help="C: channels of the first stage (layer-wise spaces: widths are multiples of C)")
    cells: int = option(5, help="N: cells per stage (cell spaces only)")
    max_images: int | None = option(None, help="cap each split (train and held-out) at this many images, for "
                                                "small CPU runs ('all': no cap)")
    batch_size: int = option(64, help="training batch size")
    seed: int = option(0, help="seed of the split, the initial weights, the sampled paths and the augmentation")
    out: str = option("runs/default", help="run folder (checkpoint, config, metrics, result, log)")
    lr: float = option(0.025, help="weight learning rate (SGD nesterov, cosine schedule)")
    weight_decay: float = option(5e-4, help="weight decay of the weight optimizer")
    arch_lr: float = option(3e-4, help="architecture learning rate (Adam; DARTS/GDAS/fbnet; the controller's "
                                        "for enas/canas)")
    order: int = option(1, help="DARTS order: 1 or 2 (finite-difference Hessian)")
    latency_table: str | None = option(None, help="fbnet: per-choice latency, a `hwnas lut build` table "
                                                  "(JSON/CSV) or a per-choice cost table (`hardware.choice_costs` "
                                                  "JSON, e.g. fitted to a device's per-arch table)")
    latency_term: str = option("fbnet", help="fbnet: 'fbnet' multiplies the cross-entropy by "
                                             "alpha*log(1+LAT)^beta (FBNet), 'additive' adds it (LuffyNet)")
    latency_alpha: float = option(0.2, help="fbnet: alpha of the latency term (FBNet: 0.2)")
    latency_beta: float = option(0.6, help="fbnet: beta of the latency term (FBNet: 0.6)")
    size_limit_mb: float | None = option(None, help="fbnet: LuffyNet's model-size constraint, "
                                                    "(SIZE/limit)^size_beta added to the arch loss (float32 MB)")
    size_beta: float = option(10.0, help="fbnet: exponent of the size constraint (large: a soft wall at the limit)")
    cost_exponent: float = option(-0.5, help="canas: w of the reward acc * (cost / F) ** w above the annealed "
                                             "cost target F (MnasNet's soft constraint; < 0)")
    tailoring_report: str | None = option(None, help="htas: the `hwnas space tailor` report whose fitted latency "
                                                     "curves price each layer's width (`hwnas train --tailored "
                                                     "FILE` sets it too)")
    lambda_cost: float = option(1.0, help="htas: weight of the expected latency (ms) in the architecture loss")
    fbnet_schedule: str = option("joint", help="fbnet: 'joint' (weights and architecture together throughout) "
                                               "or 'best_worst' (LuffyNet: after --stage1-epochs, each epoch trains "
                                               "only each decision's 2 best and 2 worst choices' weights)")
    stage1_epochs: int | None = option(None, help="fbnet best_worst: epochs of stage 1 (default: half of --epochs)")
    warmup_epochs: int = option(0, help="fbnet: first epochs that train only the weights, the architecture "
                                        "parameters waiting (PC-DARTS: 15 of 50; FBNet reimplementations: 20 of 90)")
    protocol: str = option("search", help="data split: 'search' trains on half of the training set and holds out "
                                          "the other half; 'full' trains on all of it")
    data: str | None = option(None, help="data folder (default: $HWNAS_DATA, else ./data)")
    download: bool = option(False, help="download the data set if it is missing")
    device: str = option("cpu", help="torch device: cpu, cuda or cuda:N")
    held_out_images: int = option(2000, help="held-out images scored per epoch for the log")
    micro_batches: int = option(1, help="split each batch in this many equal slices whose gradients accumulate "
                                        "before the step: the memory of a smaller batch, the update of the whole "
                                        "one (BatchNorm sees each slice, as each process of a torchrun job sees "
                                        "its shard; not with --sampler fair or sandwich)")
    world_size: int = option(1, help="processes of the torchrun job that trains the run (from WORLD_SIZE)",
                             cli=False)
    channels_last: bool = option(True, help="train in channels-last memory layout (faster convolutions on CPU, "
                                            "about 1.2x for SPOS at C=8, N=1; the same computation to float "
                                            "rounding)")
    progress: bool = option(True, help="progress bars", cli=False)

    def validate(self) -> "TrainConfig":
        """Check every value, raising UsageError with one line naming the bad one and the valid ones."""
        get_space(self.space, **self.space_options)
        get_mode(self.mode)
        dataset_info(self.dataset)
        for name in ("epochs", "channels", "cells", "batch_size", "held_out_images"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.max_images is not None and int(self.max_images) < 1:
            raise UsageError(f"--max-images must be >= 1, got {self.max_images}")
        if self.sampler not in SAMPLERS:
            raise UsageError(f"unknown SPOS sampler '{self.sampler}'; valid: {', '.join(SAMPLERS)}")
        if self.sampler != "uniform" and self.mode != "spos":
            raise UsageError(f"--sampler {self.sampler} is an SPOS option; mode '{self.mode}' samples by its own rule")
        if self.schedule != "none" and self.mode != "spos":
            raise UsageError(f"--schedule {self.schedule} is an SPOS option; mode '{self.mode}' samples by its own rule")
        check_schedule(get_space(self.space, **self.space_options), self.sampler, self.schedule)
        if self.few_shot_edge is not None:
            if self.mode != "spos":
                raise UsageError(f"--few-shot-edge is an SPOS option; mode '{self.mode}' trains no single paths")
            check_split(self.few_shot_edge, get_space(self.space, **self.space_options).num_choices)
            if not 1 <= int(self.few_shot_epochs) < int(self.epochs):
                raise UsageError(f"--few-shot-epochs must be >= 1 and below --epochs ({self.epochs}) so the parent "
                                 f"trains first, got {self.few_shot_epochs}")
        fbnet_only = {"size_limit_mb": None, "latency_term": "fbnet", "fbnet_schedule": "joint", "stage1_epochs": None,
                      "warmup_epochs": 0}
        if self.mode not in ("fbnet", "enas", "canas"):
            fbnet_only["latency_table"] = None
        if self.mode != "fbnet":
            for name, default in fbnet_only.items():
                if getattr(self, name) != default:
                    raise UsageError(f"--{name.replace('_', '-')} is an fbnet option; mode '{self.mode}' has no "
                                     "hardware term in its loss")
            if self.latency_table and not Path(self.latency_table).expanduser().is_file():
                raise UsageError(f"--latency-table {self.latency_table} does not exist")
            if self.mode == "canas" and not (math.isfinite(self.cost_exponent) and self.cost_exponent < 0):
                raise UsageError(f"--cost-exponent must be a negative number, got {self.cost_exponent}")
        else:
            from .modes.fbnet import LATENCY_TERMS

            if not self.latency_table:
                raise UsageError("mode 'fbnet' needs --latency-table FILE: a `hwnas lut build` table or a "
                                 "per-choice cost table")
            if not Path(self.latency_table).expanduser().is_file():
                raise UsageError(f"--latency-table {self.latency_table} does not exist")
            if self.latency_term not in LATENCY_TERMS:
                raise UsageError(f"unknown --latency-term '{self.latency_term}'; valid: {', '.join(LATENCY_TERMS)}")
            from .modes.fbnet import SCHEDULES

            if self.fbnet_schedule not in SCHEDULES:
                raise UsageError(f"unknown --fbnet-schedule '{self.fbnet_schedule}'; valid: {', '.join(SCHEDULES)}")
            if self.stage1_epochs is not None and not 0 <= int(self.stage1_epochs) < int(self.epochs):
                raise UsageError(f"--stage1-epochs must be >= 0 and below --epochs ({self.epochs}), "
                                 f"got {self.stage1_epochs}")
            if not 0 <= int(self.warmup_epochs) < int(self.epochs):
                raise UsageError(f"--warmup-epochs must be >= 0 and below --epochs ({self.epochs}), "
                                 f"got {self.warmup_epochs}")
            if self.size_limit_mb is not None and not (math.isfinite(self.size_limit_mb) and self.size_limit_mb > 0):
                raise UsageError(f"--size-limit-mb must be a positive number, got {self.size_limit_mb}")
        if self.mode != "htas" and (self.tailoring_report is not None or self.lambda_cost != 1.0):
            raise UsageError(f"--tailoring-report and --lambda-cost are htas options; mode '{self.mode}' has no "
                             "latency regulariser")
        if self.mode == "htas":
            if not self.tailoring_report or not Path(self.tailoring_report).expanduser().is_file():
                raise UsageError("mode 'htas' needs the tailoring report (--tailored FILE.json from `hwnas space "
                                 f"tailor`); got {self.tailoring_report!r}")
            if not (math.isfinite(self.lambda_cost) and self.lambda_cost >= 0):
                raise UsageError(f"--lambda-cost must be a number >= 0, got {self.lambda_cost}")
        if self.order not in (1, 2):
            raise UsageError(f"--order must be 1 or 2, got {self.order}")
        if isinstance(self.micro_batches, bool) or not isinstance(self.micro_batches, int) or self.micro_batches < 1:
            raise UsageError(f"--micro-batches must be an integer >= 1, got {self.micro_batches!r}")
        if self.micro_batches > 1 and self.sampler in ("fair", "sandwich"):
            raise UsageError(f"--micro-batches is not for --sampler {self.sampler} (it runs several paths per "
                             "step itself); use 1")
        if self.protocol not in SEARCH_PROTOCOLS:
            raise UsageError(f"unknown protocol '{self.protocol}'; valid: {', '.join(SEARCH_PROTOCOLS)}")
        check_torch_device(self.device)
        return self

    def split_choices(self) -> int:
        """Sub-supernets of a few-shot run (the split decision's choices); 0 without --few-shot-edge."""
        if self.few_shot_edge is None:
            return 0
        return get_space(self.space, **self.space_options).num_choices[int(self.few_shot_edge)]

    def total_epochs(self) -> int:
        """Epochs the run trains in all: `epochs`, or with a few-shot split the parent's epochs - F plus F per
        sub-supernet."""
        n = self.split_choices()
        return self.epochs + (n - 1) * self.few_shot_epochs if n else self.epochs

    def epoch_part(self, epoch: int) -> tuple[int | None, int]:
        """(sub-supernet trained in run epoch `epoch`, None for the shared parent; that epoch's place in the
        cosine schedule)."""
        shared = self.epochs - self.few_shot_epochs if self.few_shot_edge is not None else self.epochs
        if epoch < shared:
            return None, epoch
        part, local = divmod(epoch - shared, self.few_shot_epochs)
        return part, shared + local

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """A config from a dict (a YAML file, a run's config.json); UsageError naming an unknown key or a value
        of the wrong type."""
        return config_from_dict(cls, values, "the training config")


def check_torch_device(device: str) -> None:
    """UsageError unless `device` is cpu, or cuda / cuda:N with a GPU torch can see."""
    if device != "cpu" and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise UsageError(f"unknown torch device '{device}'; valid: cpu, cuda, cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device '{device}' is not available here; valid: cpu")


class _Log:
    """Epoch rows, rewritten atomically to metrics.csv each epoch."""

    def __init__(self, path: Path, rows: list[dict[str, Any]] | None = None, write: bool = True):
        self.path, self.rows, self.write = path, rows or [], write

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if not self.write:
            return
        cols: list[str] = []
        for r in self.rows:
            cols += [c for c in r if c not in cols]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        w.writerows(self.rows)
        atomic_write_text(self.path, buf.getvalue())


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module):
    """(SGD nesterov, cosine schedule over `cfg.epochs`) for `model`'s weights."""
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                                weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs, eta_min=1e-3 * cfg.lr / 0.025)
    return optimizer, scheduler


def make_mode(cfg: TrainConfig, model: torch.nn.Module, space, optimizer, fixed: dict[int, int] | None = None):
    """The training mode `cfg` names, on `model` (with SPOS's sampler and, for a few-shot part, its pinned
    decision)."""
    spos = ({"sampler": cfg.sampler, "fixed": fixed, "distill": cfg.distill, "schedule": cfg.schedule}
            if cfg.mode == "spos" else {})
    if cfg.mode == "fbnet":
        from .modes.fbnet import fbnet_options

        spos = fbnet_options(cfg, space)
    elif cfg.mode == "htas":
        from .modes.htas import stage_curves

        spos = {"curves": stage_curves(cfg.tailoring_report), "lambda_cost": cfg.lambda_cost}
    elif cfg.mode in ("enas", "canas"):
        from .costs import flops_costs, latency_costs

        cost = (latency_costs(cfg.latency_table, space, cfg.seed) if cfg.latency_table
                else flops_costs(space, cfg.channels, cfg.cells))
        spos = {"cost": cost, "cost_exponent": cfg.cost_exponent}
    return get_mode(cfg.mode)(model, space, optimizer, seed=cfg.seed, order=cfg.order, arch_lr=cfg.arch_lr,
                              micro_batches=cfg.micro_batches, **spos)


def build_run(cfg: TrainConfig):
    """Space, supernet, data splits, weight optimizer, scheduler and mode for `cfg` (no training)."""
    space = get_space(cfg.space, **cfg.space_options)
    raw = load_dataset(cfg.dataset, cfg.data, download=cfg.download)
    splits = make_splits(raw, protocol=cfg.protocol, max_images=cfg.max_images, seed=cfg.seed)
    smallest = min(len(splits.train[1]), len(splits.val[1]))
    if cfg.batch_size > smallest:  # whole batches only: an epoch would run no step and report success
        raise UsageError(f"--batch-size {cfg.batch_size} is larger than the smallest split ({smallest} images); "
                         f"use at most {smallest} or more --max-images")
    torch.manual_seed(cfg.seed)
    model = space.build_supernet(channels=cfg.channels, cells=cfg.cells, num_classes=raw.num_classes).to(cfg.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, scheduler = make_optimizer(cfg, model)
    mode = make_mode(cfg, model, space, optimizer)
    batches = dict(
        train=TensorBatches(*splits.train, cfg.batch_size, raw.mean, raw.std, augment=True, shuffle=True,
                            seed=cfg.seed, drop_last=True, device=cfg.device),
        val=TensorBatches(*splits.val, cfg.batch_size, raw.mean, raw.std, augment=True, shuffle=True,
                          seed=cfg.seed + 1, drop_last=True, device=cfg.device),
        held_out=TensorBatches(splits.val[0][:cfg.held_out_images], splits.val[1][:cfg.held_out_images], 256,
                               raw.mean, raw.std, augment=False, shuffle=False, device=cfg.device),
    )
    return space, model, optimizer, scheduler, mode, batches


@torch.no_grad()
def held_out_accuracy(model, batches: TensorBatches, arch, weights: torch.Tensor | None = None) -> float:
    """Top-1 accuracy (%) of one path (or, with `weights`, the DARTS mixture) on a split, BN using each
    batch's statistics."""
    model.eval()
    correct = total = 0
    with batch_statistics(model):
        for x, y in batches:
            correct += (model(x, arch, weights=weights).argmax(1) == y).sum().item()
            total += len(y)
    return 100.0 * correct / max(total, 1)


def open_run(out: Path, checkpoint: str, resume: bool, what: str = "a run") -> dict[str, Any] | None:
    """The checkpoint to resume from (`resume`), or None for a fresh run; ValueError when a fresh run would
    overwrite an existing one."""
    if resume:
        return load_checkpoint(out / checkpoint)
    if (out / checkpoint).exists():
        raise UsageError(f"'{out}' already holds {what}; pass --resume to continue it or choose another --out")
    return None


def train_epoch(batches: TensorBatches, step, desc: str, epoch: int, progress: bool = True,
                clock: RunClock | None = None, world: World = World()) -> dict[str, float]:
    """One pass over `batches`, `step(x, y) -> (loss, logits)` updating the model on each batch (this
    process's shard of it, under torchrun); a progress bar shows running loss, accuracy and images/s.
    Returns train_loss, train_acc (%) of the shards, images (of every process), seconds.
    Raises FloatingPointError when the loss stops being finite, BudgetError when `clock` says the run is
    over its time limit."""
    loss_sum = correct = seen = 0
    t0 = time.perf_counter()
    bar = tqdm(batches, desc=desc, disable=not progress, leave=False, unit="batch")
    for x, y in bar:
        x, y = world.shard(x, y)
        loss, logits = step(x, y)
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss became {loss} at epoch {epoch + 1}; lower --lr")
        loss_sum += loss * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y) * world.world_size
        if clock is not None:
            clock.step_done()
        shard = seen / world.world_size
        bar.set_postfix(loss=f"{loss_sum / shard:.3f}", acc=f"{100 * correct / shard:.1f}",
                        img_s=f"{seen / (time.perf_counter() - t0):.0f}")
    shard = seen / world.world_size
    return {"train_loss": loss_sum / max(shard, 1), "train_acc": 100 * correct / max(shard, 1), "images": seen,
            "seconds": time.perf_counter() - t0}


def _cycle(batches: TensorBatches, epoch: int):
    """Endless held-out batches for the arch updates; each pass reshuffles deterministically."""
    k = 0
    while True:
        batches.set_epoch(epoch * 1000 + k)
        yield from batches
        k += 1


def train(cfg: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train (or resume) a supernet as `cfg` says; returns the summary also written to result.json. The run
    folder's `train.log` receives the run's log records. Under `torchrun`, every process calls this and
    trains its shard of each batch (see `supernet.distributed`); only rank 0 writes files."""
    world = World.from_env()
    cfg = replace(cfg, world_size=world.world_size, device=world.device(cfg.device))
    cfg.validate()
    check_divisible(cfg.batch_size, world, cfg.micro_batches, ("WORLD_SIZE", "--micro-batches"))
    info = dataset_info(cfg.dataset)
    check_size(get_space(cfg.space, **cfg.space_options), cfg.channels, cfg.cells, info.num_classes, cfg.batch_size,
               info.input_shape()[1:], cfg.budget())
    out = Path(cfg.out)
    ckpt_path = out / CHECKPOINT
    ckpt = open_run(out, CHECKPOINT, resume)
    if ckpt is not None:
        old = {**asdict(TrainConfig()), **ckpt["config"]}  # a key added since the run was made: its default
        for key in _SAME_ON_RESUME:
            if old.get(key) != getattr(cfg, key):
                raise UsageError(f"checkpoint '{ckpt_path}' was trained with {key}={old.get(key)!r}; "
                                 f"this run asks {key}={getattr(cfg, key)!r}")
        fixed_length = cfg.few_shot_edge is not None or cfg.schedule != "none" or cfg.mode == "canas"
        if fixed_length and old["epochs"] != cfg.epochs:
            what = ("a few-shot run" if cfg.few_shot_edge is not None else
                    "a canas run (its cost target anneals over the whole run)" if cfg.mode == "canas" else
                    f"a {cfg.schedule} schedule")
            raise UsageError(f"{what} keeps its --epochs on resume: '{ckpt_path}' has {old['epochs']}, "
                             f"this run asks {cfg.epochs}")
    joined = join(world, cfg.device)
    try:
        if not world.is_main:  # the other processes write nothing and show no progress bars
            result = _train(replace(cfg, progress=False), ckpt, out, world)
        else:
            result = run_in_folder(out, ckpt_path, lambda: _train(cfg, ckpt, out, world))
        barrier()  # every process done (rank 0 has written its results) before the group is torn down
        return result
    finally:
        if joined:
            leave()


def run_in_folder(out: Path, ckpt_path: Path, body: Callable[[], Any], log_name: str = LOG) -> Any:
    """`body()` with the run's log going to `out/<log_name>`; a run that fails (or is interrupted) before
    writing its first checkpoint removes the folders it created, so it leaves nothing behind: `out` itself,
    and the parents it needed only while they are empty (another run may have started in one meanwhile)."""
    created = _missing_folders(out)
    try:
        with log_to_file(out / log_name):
            return body()
    except BaseException:
        if created and not ckpt_path.exists():
            shutil.rmtree(created[0], ignore_errors=True)
            for parent in created[1:]:
                try:
                    parent.rmdir()  # only when empty
                except OSError:
                    break
        raise


def _missing_folders(path: Path) -> list[Path]:
    """The folders that creating `path` would create, innermost (`path` itself) first; [] if it exists."""
    missing, path = [], path.absolute()
    while not path.exists():
        missing.append(path)
        path = path.parent
    return missing


def _train(cfg: TrainConfig, ckpt: dict[str, Any] | None, out: Path, world: World = World()) -> dict[str, Any]:
    ckpt_path = out / CHECKPOINT
    space, model, optimizer, scheduler, mode, batches = build_run(cfg)
    start = 0
    part, split = None, None  # few-shot: the part being fine-tuned; the parent's optimizer state at the split
    metrics = _Log(out / "metrics.csv", write=world.is_main)
    if ckpt is not None:
        few = ckpt.get("few_shot")
        if few is not None:
            model, split = FewShotSupernet.split(model, few["edge"], few["choices"]), few["split"]
            part = cfg.epoch_part(ckpt["epoch"])[0]
            optimizer, scheduler = make_optimizer(cfg, model.parts[part])
            mode = make_mode(cfg, model.parts[part], space, optimizer, fixed={cfg.few_shot_edge: part})
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start = ckpt["epoch"] + 1
        if ckpt["config"].get("epochs") == cfg.epochs:
            scheduler.load_state_dict(ckpt["scheduler"])
        else:  # epochs grew: replay this run length's cosine schedule, as a run planned that long would have
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "lr_scheduler.step() before optimizer.step()"
                for _ in range(start):
                    scheduler.step()
        mode.load_state_dict(ckpt["mode"])
        set_rng_states(ckpt["rng_ranks"][world.rank] if world.distributed else ckpt["rng"])
        metrics.rows = list(ckpt.get("metrics", []))
        log.info("resuming %s from epoch %d of %d", ckpt_path, start + 1, cfg.total_epochs())
    else:
        log.info("training a %s supernet on %s (%s, C=%d, N=%d) for %d epochs into %s%s", cfg.mode, cfg.dataset,
                 cfg.space, cfg.channels, cfg.cells, cfg.total_epochs(), out,
                 f" on {world.world_size} processes" if world.distributed else "")
    if world.is_main:
        atomic_write_json(out / "config.json", asdict(cfg))
    # Rank 0 alone keeps the time budget: it decides once for the job and, failing, removes its run folder; the
    # other processes then end with the job (each timing itself could refuse on one rank only).
    clock = cfg.clock((cfg.total_epochs() - start) * len(batches["train"])) if world.is_main else RunClock(None, 0)

    for epoch in range(start, cfg.total_epochs()):
        wanted, schedule_epoch = cfg.epoch_part(epoch)
        if wanted != part:  # few-shot: split the parent now, or move on to the next part
            if split is None:
                split = {"optimizer": copy.deepcopy(optimizer.state_dict()), "scheduler": scheduler.state_dict()}
                model = FewShotSupernet.split(model, cfg.few_shot_edge, cfg.split_choices())
                log.info("few-shot split on decision %d into %d sub-supernets, %d epochs each", cfg.few_shot_edge,
                         len(model.parts), cfg.few_shot_epochs)
            generator = mode.generator.get_state()
            optimizer, scheduler = make_optimizer(cfg, model.parts[wanted])
            # Each part continues the parent's schedule and momentum from the split (copies: parts never share).
            optimizer.load_state_dict(copy.deepcopy(split["optimizer"]))
            scheduler.load_state_dict(split["scheduler"])
            mode = make_mode(cfg, model.parts[wanted], space, optimizer, fixed={cfg.few_shot_edge: wanted})
            mode.generator.set_state(generator)
            part = wanted
        if hasattr(mode, "steps_per_epoch"):  # modes whose schedule runs over steps (canas)
            mode.steps_per_epoch = len(batches["train"])
        mode.on_epoch_start(schedule_epoch, cfg.epochs)
        batches["train"].set_epoch(epoch)
        val_iter = _cycle(batches["val"], epoch) if mode.bilevel else None
        model.train()
        label = f"{cfg.mode} epoch {epoch + 1}/{cfg.total_epochs()}" + ("" if part is None else f" (part {part})")
        layout = torch.channels_last if cfg.channels_last else torch.contiguous_format

        def step(x, y):
            val = world.shard(*next(val_iter)) if val_iter else None
            val = (val[0].contiguous(memory_format=layout), val[1]) if val is not None else None
            return mode.train_step(x.contiguous(memory_format=layout), y, val)
        done = train_epoch(batches["train"], step, label, epoch, cfg.progress, clock, world)
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        evals = [held_out_accuracy(model, batches["held_out"], a) for a in mode.eval_archs()]
        summary = mode.summary()
        row = {"epoch": epoch + 1, "train_loss": done["train_loss"], "train_acc": done["train_acc"],
               "val_acc": sum(evals) / len(evals), "lr": lr, "seconds": done["seconds"],
               "images_per_s": done["images"] / max(done["seconds"], 1e-9)}
        if cfg.few_shot_edge is not None:
            row["part"] = "shared" if part is None else part
        if cfg.mode == "darts":  # what DARTS trains is the mixture; its argmax arch can lag far behind early on
            row["mixture_acc"] = held_out_accuracy(model, batches["held_out"], None, weights=mode.weights().detach())
        row.update({k: v for k, v in summary.items() if k in ("derived_arch", "skip_fraction", "tau")})
        metrics.add(row)
        state = {"config": asdict(cfg), "epoch": epoch, "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "mode": mode.state_dict(), "rng": rng_states(), "metrics": metrics.rows}
        if world.distributed:  # every process's own states, each restored on resume
            state["rng_ranks"] = gather(state["rng"])
            check_in_sync(model, mode.arch_parameters(), epoch)
        if split is not None:
            state["few_shot"] = {"edge": cfg.few_shot_edge, "choices": len(model.parts), "split": split}
        if world.is_main:
            save_checkpoint(state, ckpt_path)
        log.info("epoch %d/%d: loss %.3f train acc %.1f%% held-out acc %.1f%% (%.0f img/s)", epoch + 1,
                 cfg.total_epochs(), row["train_loss"], row["train_acc"], row["val_acc"], row["images_per_s"])
        clock.epoch_done(epoch, last=epoch + 1 == cfg.total_epochs())

    final = metrics.rows[-1] if metrics.rows else {}
    result = {"run": str(out), "space": cfg.space, "mode": cfg.mode, "dataset": cfg.dataset, "epochs": cfg.epochs,
              "val_acc": final.get("val_acc"), "train_acc": final.get("train_acc"), **mode.summary()}
    if not world.is_main:
        return result
    if getattr(mode, "sampled", None):  # enas/canas: every path the controller was rewarded for
        write_sampled(out / "sampled.csv", mode)
    atomic_write_json(out / "result.json", result)
    if "warning" in result:
        log.warning(result["warning"])
    return result


def write_sampled(path: Path, mode) -> Path:
    """The controller's rewarded paths as CSV: arch_str, encoding, held-out batch accuracy, cost, target,
    reward, epoch (one row per step, repeats kept)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    unit = mode.cost.unit if mode.cost is not None else ""
    writer.writerow(["arch_str", "encoding", "batch_acc", f"cost_{unit}" if unit else "cost", "target", "reward",
                     "epoch"])
    for r in mode.sampled:
        writer.writerow([mode.space.to_str(tuple(r["arch"])), ",".join(map(str, r["arch"])), r["acc"], r["cost"],
                         "" if r["target"] is None else r["target"], r["reward"], r["epoch"]])
    atomic_write_text(path, buf.getvalue())
    return path


def trained_run(cfg: TrainConfig, reuse: Sequence[str | Path] = ()) -> Path:
    """A folder holding a finished supernet: the first of `reuse` with a checkpoint (read as it is), else
    `cfg.out` after training it as `cfg` says (resuming an unfinished run there). What a notebook or script
    that wants "the user's supernet, or a small one" calls."""
    for folder in map(Path, reuse):
        if (folder / CHECKPOINT).is_file():
            return folder
    ckpt = Path(cfg.out) / CHECKPOINT
    if not ckpt.is_file() or load_checkpoint(ckpt)["epoch"] + 1 < cfg.total_epochs():
        train(cfg, resume=ckpt.is_file())
    return Path(cfg.out)


def load_run_config(run: str | Path) -> dict[str, Any]:
    """A run's training config: its `config.json` (cheap), or the checkpoint's copy when only a checkpoint
    file is given or the JSON is missing."""
    path = Path(run)
    folder = path if path.is_dir() else path.parent
    if (folder / "config.json").is_file() and (path.is_dir() or path.name == CHECKPOINT):
        return read_json(folder / "config.json", "run config")
    return load_checkpoint(path / CHECKPOINT if path.is_dir() else path)["config"]


def load_supernet(run: str | Path, device: str = "cpu"):
    """(space, supernet in eval mode, config dict) from a run folder or a checkpoint file."""
    path = Path(run)
    if path.is_dir():
        path = path / CHECKPOINT
    ckpt = load_checkpoint(path)
    cfg = ckpt["config"]
    space = space_from_config(cfg)
    num_classes = [v for v in ckpt["model"].values() if v.ndim == 2][-1].shape[0]  # the final linear layer
    model = space.build_supernet(channels=cfg["channels"], cells=cfg["cells"], num_classes=num_classes)
    if ckpt.get("few_shot") is not None:
        model = FewShotSupernet.split(model, ckpt["few_shot"]["edge"], ckpt["few_shot"]["choices"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise UsageError(f"checkpoint '{path}' does not fit space '{cfg['space']}' with its config") from exc
    return space, model.to(device).eval(), cfg


__all__ = ["TrainConfig", "train", "trained_run", "load_supernet", "held_out_accuracy", "list_modes"]
