"""Data-parallel supernet training under `torchrun`: one process per device, `DistributedDataParallel`
for the weights, gloo on the CPU and nccl on CUDA.

`hwnas train` started by `torchrun --nproc-per-node N` finds `WORLD_SIZE`, `RANK` and `LOCAL_RANK` in its
environment and joins the process group itself; there is no other flag. What every rank does:

- **Data**: `--batch-size` is the *global* batch. Every rank draws the same global batch (the data set is
  resident in memory and its order and augmentation depend only on (seed, epoch), see `TensorBatches`) and
  trains on its contiguous 1/N slice. That is what a `DistributedSampler` gives (disjoint shards, reshuffled
  per epoch by `set_epoch`), with one more property: the sequence of global batches is exactly the one a
  single process would see, which makes a distributed run reproducible, resumable, and comparable with a
  one-process run.
- **Paths**: SPOS (and every sampling mode) draws the *same* path on every rank, from the mode's seeded
  generator, which every rank holds in the same state. Gradients of one path then average across ranks to
  the gradient of the global batch on that path, exactly as in one process with the global batch split in
  N micro-batches (`--micro-batches N`). The alternative, a different path per rank with
  `find_unused_parameters`, trains N paths per step but makes the result depend on the number of
  processes, so a run could not be reproduced on another machine; hwnas keeps the semantics of SPOS (one
  path per step) and gains speed from the larger global batch.
- **Weights** go through DDP (`find_unused_parameters=True`: a path leaves the other choices' weights
  unused; because every rank uses the same path, those are unused on all ranks and keep `grad=None`, so
  SGD skips them as it does in one process). **Architecture parameters** (DARTS, GDAS, FBNet, HTAS) and the
  ENAS/CANAS controller's reward are all-reduced by hand (`sync_grads`, `mean`): their steps run on the
  unwrapped network, outside DDP's reducer.
- **Files**: only rank 0 creates the run folder and writes config, log, metrics, checkpoints and results,
  atomically as always. Each checkpoint holds every rank's RNG states, and a resumed run restores each
  rank's own, so a resumed distributed run equals an uninterrupted one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch
import torch.distributed as dist

from hwnas.core.errors import UsageError


@dataclass(frozen=True)
class World:
    """This process's place in a `torchrun` job (world_size 1, rank 0 outside one)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "World":
        """The world `torchrun` describes in the environment; UsageError on values that cannot be."""
        try:
            world = cls(int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0)),
                        int(os.environ.get("LOCAL_RANK", 0)))
        except ValueError:
            raise UsageError(f"WORLD_SIZE, RANK and LOCAL_RANK must be integers, got "
                             f"{[os.environ.get(k) for k in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK')]}") from None
        if world.world_size < 1 or not 0 <= world.rank < world.world_size:
            raise UsageError(f"RANK must be in 0..WORLD_SIZE-1, got RANK={world.rank}, WORLD_SIZE={world.world_size}")
        return world

    def device(self, device: str) -> str:
        """`device` for this rank: `cuda` becomes `cuda:LOCAL_RANK` (one GPU per process)."""
        return f"cuda:{self.local_rank}" if self.distributed and device == "cuda" else device

    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's contiguous 1/world_size slice of a global batch."""
        if not self.distributed:
            return x, y
        n = len(y) // self.world_size
        sl = slice(self.rank * n, (self.rank + 1) * n)
        return x[sl], y[sl]


def join(world: World, device: str) -> bool:
    """Join the process group of `world` (gloo on the CPU, nccl on CUDA) unless already in one; True when
    this call joined it (and `leave` should end it)."""
    if not world.distributed or dist.is_initialized():
        return False
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend)
    return True


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def wrap(model: torch.nn.Module, device: str, find_unused: bool = True) -> torch.nn.Module:
    """`model` under DistributedDataParallel when this process is in a group of several, else `model`.
    `find_unused`: a forward pass may leave parameters unused (a single path); False for mixtures that use
    every choice (DARTS, FBNet), which spares DDP a traversal of the graph per step."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(device).index] if device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


def sync_grads(params: Iterable[torch.Tensor]) -> None:
    """Average the `.grad` of `params` across ranks, as DDP does for the weights (no-op in one process).
    Every rank must hold a grad for the same parameters."""
    if not active():
        return
    size = dist.get_world_size()
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(size)


def mean(value: float) -> float:
    """The mean of a number across ranks (e.g. a reward measured on each rank's shard)."""
    if not active():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item()) / dist.get_world_size()


def gather(obj) -> list:
    """Every rank's `obj`, in rank order (one process: [obj])."""
    if not active():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if active():
        dist.barrier()


def check_in_sync(model: torch.nn.Module, extra: Sequence[torch.Tensor], epoch: int) -> None:
    """RuntimeError unless every rank holds bit-identical weights and `extra` tensors (architecture
    parameters): the invariant data-parallel training keeps, checked at each checkpoint (one digest per
    rank, gathered). Buffers are left out: BatchNorm's running statistics follow each rank's shard, and DDP
    broadcasts rank 0's before every forward pass."""
    import hashlib

    h = hashlib.sha256()
    for t in [*model.parameters(), *extra]:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    digests = gather(h.hexdigest())
    if len(set(digests)) > 1:
        raise RuntimeError(f"the processes' networks differ after epoch {epoch + 1} (digests {digests}): "
                           "data-parallel training lost sync; please report this")


def check_divisible(batch_size: int, world: World, micro_batches: int = 1, names: Sequence[str] = ()) -> None:
    """UsageError unless the global batch splits evenly into world_size x micro_batches slices."""
    parts = world.world_size * micro_batches
    if batch_size % parts:
        what = " x ".join(names) or "parts"
        raise UsageError(f"--batch-size {batch_size} must be a multiple of {what} = {parts} (each process "
                         "and micro-batch takes an equal slice of the global batch)")


__all__ = ["World", "join", "leave", "active", "wrap", "sync_grads", "mean", "gather", "barrier",
           "check_divisible", "check_in_sync"]
