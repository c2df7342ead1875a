"""Few-shot NAS (Zhao, Wang, Guo, Yang, Tian, Krishnamurthy, Zhu and Wang, "Few-shot Neural Architecture Search",
ICML 2021): one supernet shares weights between archs that differ on every decision, and co-adaptation between
very different paths is what makes its proxy rank badly. Few-shot NAS splits the trained supernet on one
decision (an NB201 edge, a layer) into one sub-supernet per choice of that decision, each a copy of the parent
fine-tuned only on paths that take its choice; an arch is then scored by the sub-supernet of its choice.

`FewShotSupernet` holds the sub-supernets and routes every single-path forward to the right one; the trainer
(`--few-shot-edge K --few-shot-epochs F`) makes the split and fine-tunes each part, and `route` is what proxy
evaluation and export use to inherit an arch's weights.
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn as nn

from hwnas.core.errors import UsageError


class FewShotSupernet(nn.Module):
    """Sub-supernets, one per choice of decision `edge`; `forward(x, arch)` runs the part `arch[edge]` selects."""

    def __init__(self, parts: Sequence[nn.Module], edge: int):
        super().__init__()
        if not parts:
            raise UsageError("a few-shot supernet needs at least one sub-supernet")
        self.edge = int(edge)
        self.parts = nn.ModuleList(parts)
        self.config = dict(getattr(parts[0], "config", {}))

    @classmethod
    def split(cls, parent: nn.Module, edge: int, choices: int) -> "FewShotSupernet":
        """`choices` independent copies of `parent` (weights, BN statistics), split on decision `edge`."""
        return cls([copy.deepcopy(parent) for _ in range(choices)], edge)

    def route(self, arch: Sequence[int]) -> nn.Module:
        """The sub-supernet that owns `arch`: the one of its choice on the split decision."""
        choice = int(arch[self.edge])
        if not 0 <= choice < len(self.parts):
            raise UsageError(f"arch {tuple(arch)} takes choice {choice} on the split decision {self.edge}; "
                             f"this few-shot supernet has parts 0..{len(self.parts) - 1}")
        return self.parts[choice]

    def forward(self, x: torch.Tensor, arch: Sequence[int] | None = None, **mixture) -> torch.Tensor:
        if arch is None or any(v is not None for v in mixture.values()):
            raise UsageError("a few-shot supernet scores single paths only (arch=...); its parts are SPOS supernets")
        return self.route(arch)(x, arch)


def route(supernet: nn.Module, arch: Sequence[int]) -> nn.Module:
    """The network whose weights `arch` inherits: its sub-supernet when `supernet` is split, else `supernet`."""
    return supernet.route(arch) if isinstance(supernet, FewShotSupernet) else supernet


def check_split(edge: int, num_choices: Sequence[int]) -> int:
    """`edge` as a decision index of a space with `num_choices`; UsageError naming the valid range."""
    if not 0 <= int(edge) < len(num_choices):
        raise UsageError(f"--few-shot-edge {edge} is not a decision of this space; valid: 0..{len(num_choices) - 1}")
    return int(num_choices[int(edge)])


__all__ = ["FewShotSupernet", "route", "check_split"]
