"""What a training mode is: how one batch updates the supernet's weights (and architecture parameters).

One trainer loop (`supernet.trainer`) serves every mode; a mode plugs in through `train_step`,
`eval_archs`, `summary` and its `state_dict` (the checkpointables beyond the model and the weight
optimizer, which the trainer owns).
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from hwnas.core.registry import Registry

from .. import distributed
from ..spaces.base import Arch, SearchSpace

GRAD_CLIP = 5.0


def register_mode(name: str):
    """Class decorator adding a training mode to `MODES` under `name` (and setting its `name`)."""
    def wrap(cls):
        cls.name = name
        return MODES.register(name, cls)
    return wrap


class TrainingMode:
    """Base class: uniform defaults; subclasses override `train_step` and, if they learn an arch, the rest.

    `model` is the supernet; `replica` is what a weight step's forward pass goes through: the supernet under
    DistributedDataParallel inside a `torchrun` job (its backward averages the weight gradients across
    processes), the supernet itself otherwise. Architecture steps use `model` and `arch_step_ready`."""

    name = ""
    uses_every_choice = False  # True: each forward pass touches every weight (a mixture: DARTS, FBNet)
    bilevel = False  # True: each step also takes a batch of the held-out split for the arch update

    def __init__(self, model: nn.Module, space: SearchSpace, weight_optimizer: torch.optim.Optimizer,
                 seed: int = 0, micro_batches: int = 1, **options: Any):
        self.model = model
        self.micro_batches = int(micro_batches)
        device = next(model.parameters()).device
        self.replica = distributed.wrap(model, str(device), find_unused=not self.uses_every_choice)
        self.space = space
        self.weight_optimizer = weight_optimizer
        self.generator = torch.Generator().manual_seed(seed)
        self.epoch, self.epochs = 0, 1
        self.options = options

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        """Called before each epoch (0-based) of `epochs`."""
        self.epoch, self.epochs = epoch, epochs

    def train_step(self, x: torch.Tensor, y: torch.Tensor, val: tuple[torch.Tensor, torch.Tensor] | None = None
                   ) -> tuple[float, torch.Tensor]:
        """Update on one batch; returns (loss, logits)."""
        raise NotImplementedError

    def weight_step(self, x: torch.Tensor, y: torch.Tensor, forward: Callable[[torch.Tensor], torch.Tensor]
                    ) -> tuple[float, torch.Tensor]:
        """One weight step on the cross-entropy of `forward(x)`, the batch split in `micro_batches` equal
        slices whose gradients accumulate (each slice's BatchNorm sees that slice, as each process of a
        `torchrun` job sees its shard); returns (loss, logits)."""
        self.weight_optimizer.zero_grad(set_to_none=True)
        chunks = list(zip(x.chunk(self.micro_batches), y.chunk(self.micro_batches)))
        losses, outputs = [], []
        for i, (xc, yc) in enumerate(chunks):
            # DDP averages across processes once, at the last slice's backward
            last = i == len(chunks) - 1 or not hasattr(self.replica, "no_sync")
            with nullcontext() if last else self.replica.no_sync():
                logits = forward(xc)
                loss = cross_entropy(logits, yc) * (len(yc) / len(y))
                loss.backward()
            losses.append(loss.item())
            outputs.append(logits.detach())
        self.finish_weight_step()
        return sum(losses), outputs[0] if len(outputs) == 1 else torch.cat(outputs)

    def finish_weight_step(self) -> None:
        """Clip (norm 5) the gradients a backward left and step the network weights."""
        nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        self.weight_optimizer.step()

    def arch_step_ready(self, params: list[torch.Tensor]) -> None:
        """Before an architecture optimizer's step: average its gradients across processes (no-op in one)."""
        distributed.sync_grads(params)

    def eval_archs(self) -> list[Arch]:
        """Archs whose held-out accuracy the trainer logs each epoch."""
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """What the run learned, for the log and `result.json` (derived arch for DARTS/GDAS)."""
        return {}

    def arch_parameters(self) -> list[torch.Tensor]:
        return []

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class ArchParameterMode(TrainingMode):
    """Shared part of DARTS and GDAS: architecture logits alpha (edges x ops) trained with Adam on the
    held-out split, a derived arch (argmax per edge), and a warning when it collapses to skips."""

    bilevel = True

    def __init__(self, model, space, weight_optimizer, seed=0, arch_lr: float = 3e-4,
                 arch_weight_decay: float = 1e-3, **options):
        super().__init__(model, space, weight_optimizer, seed=seed, **options)
        shape = (len(space.num_choices), max(space.num_choices))
        self.alpha = nn.Parameter(1e-3 * torch.randn(shape, generator=self.generator))
        # Layers with fewer choices than the widest one (a layer-wise space's identity rule) mask the rest.
        self.valid = torch.arange(shape[1]).unsqueeze(0) < torch.tensor(space.num_choices).unsqueeze(1)
        self.arch_optimizer = torch.optim.Adam([self.alpha], lr=arch_lr, betas=(0.5, 0.999),
                                               weight_decay=arch_weight_decay)

    def arch_parameters(self) -> list[torch.Tensor]:
        return [self.alpha]

    def logits(self) -> torch.Tensor:
        """alpha with each decision's out-of-range entries at -inf (softmax gives them 0)."""
        return self.alpha.masked_fill(~self.valid, float("-inf"))

    def derived_arch(self) -> Arch:
        return tuple(int(i) for i in self.logits().detach().argmax(dim=1))

    def eval_archs(self) -> list[Arch]:
        return [self.derived_arch()]

    def summary(self) -> dict[str, Any]:
        arch = self.derived_arch()
        frac = sum(self.space.is_skip(i, a) for i, a in enumerate(arch)) / len(arch)
        zero = sum(self.space.is_zero(i, a) for i, a in enumerate(arch)) / len(arch)
        out = {"derived_arch": self.space.to_str(arch), "skip_fraction": frac, "zero_fraction": zero,
               "alpha_softmax": torch.softmax(self.logits().detach(), dim=1).tolist()}
        if frac + zero >= 0.5:
            out["warning"] = (f"derived arch collapsed towards identity or zero ops ({frac + zero:.0%} of "
                              "decisions): a known failure of differentiable NAS")
        return out

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "alpha": self.alpha.detach().clone(),
                "arch_optimizer": self.arch_optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.alpha.copy_(state["alpha"])
        self.arch_optimizer.load_state_dict(state["arch_optimizer"])


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y)


def fixed_panel(space: SearchSpace, seed: int, k: int, alive: Any = None, pin: Any = None) -> list[Arch]:
    """`k` archs drawn with a fixed seed, each passed through `pin` (if given), skipping those `alive` rejects
    (e.g. cells with no live edge)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out: list[Arch] = []
    while len(out) < k:
        a = space.sample(rng)
        a = pin(a) if pin is not None else a
        if alive is None or alive(a):
            out.append(a)
    return out


def as_arch(indices: Sequence[int]) -> Arch:
    return tuple(int(i) for i in indices)


MODES: Registry[type[TrainingMode]] = Registry("mode")
