"""One network class for every layer-wise space: a fixed stem, a chain of searchable layers (one decision
each, one block chosen out of that layer's candidates) and a fixed head. It serves as the weight-sharing
supernet and as a standalone subnet, like `NB201Network`:

- the supernet holds every candidate block of every layer, one set of weights per block (`ChoiceLayer`) or, where
  the space shares weights inside a layer, one full-size block per weight group that its members are cut from
  (`supernet.sharing.SharedChoiceLayer`); a subnet holds only its arch's blocks (`layers.<i>.blocks.<choice>...`),
  and inheriting a layer's weights is copying or cutting them (`block_state`), so both compute the same function;
- forwards: single path `net(x, arch)`, DARTS mixture `net(x, weights=W)` with W (layers, max choices),
  GDAS hard sample `net(x, hard=(H, index))`; entries of W/H beyond a layer's choices are ignored.

What the blocks are (MobileNetV2, ShuffleNetV2, ResNet blocks) is the space's business: it passes
`LayerSpec`s and a `make_block(name, spec)` factory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn as nn

from hwnas.core.errors import UsageError


@dataclass(frozen=True)
class LayerSpec:
    """One searchable layer: input/output channels, stride, and the names of its candidate blocks."""

    c_in: int
    c_out: int
    stride: int
    choices: tuple[str, ...]


class ChoiceLayer(nn.Module):
    """The candidate blocks of one layer, keyed by choice index (a subnet keeps only its own)."""

    def __init__(self, spec: LayerSpec, make_block: Callable[[str, LayerSpec], nn.Module],
                 keep: Sequence[int] | None = None):
        super().__init__()
        keep = range(len(spec.choices)) if keep is None else keep
        self.blocks = nn.ModuleDict({str(k): make_block(spec.choices[k], spec) for k in keep})

    def forward(self, x: torch.Tensor, choice: int) -> torch.Tensor:
        return self.blocks[str(choice)](x)

    def block_state(self, choice: int) -> dict[str, torch.Tensor]:
        """The state dict a standalone block of `choice` inherits."""
        return self.blocks[str(choice)].state_dict()

    def block(self, choice: int) -> nn.Module:
        """The block of `choice` with its weights."""
        return self.blocks[str(choice)]


class LayerwiseNetwork(nn.Module):
    """Stem -> searchable layers -> head; supernet (`arch=None`) or subnet (only `arch`'s blocks built)."""

    def __init__(self, stem: nn.Module, specs: Sequence[LayerSpec], make_block: Callable[[str, LayerSpec], nn.Module],
                 head: nn.Module, config: dict, arch: Sequence[int] | None = None,
                 make_layer: Callable[[LayerSpec], nn.Module] | None = None):
        """`make_layer(spec)` builds a supernet layer (default: `ChoiceLayer`, one set of weights per block);
        a subnet's layers are always `ChoiceLayer`s of the arch's blocks."""
        super().__init__()
        self.config = dict(config)
        self.arch = tuple(int(a) for a in arch) if arch is not None else None
        self.specs = tuple(specs)
        self.stem = stem
        if self.arch is None and make_layer is not None:
            self.layers = nn.ModuleList(make_layer(spec) for spec in self.specs)
        else:
            self.layers = nn.ModuleList(ChoiceLayer(spec, make_block, None if self.arch is None else [self.arch[i]])
                                        for i, spec in enumerate(self.specs))
        self.head = head

    def forward(self, x: torch.Tensor, arch: Sequence[int] | None = None, weights: torch.Tensor | None = None,
                hard: tuple[torch.Tensor, Sequence[int]] | None = None) -> torch.Tensor:
        """Logits. Give exactly one of `arch` (single path), `weights` (DARTS) or `hard` (GDAS); a subnet
        uses its own arch when none is given."""
        if arch is None and weights is None and hard is None:
            if self.arch is None:
                raise UsageError("a supernet forward needs arch=..., weights=... or hard=...")
            arch = self.arch
        x = self.stem(x)
        for i, layer in enumerate(self.layers):
            if arch is not None:
                x = layer(x, arch[i])
            elif weights is not None:
                x = sum(weights[i, k] * layer(x, k) for k in range(len(self.specs[i].choices)))
            else:
                h, k = hard[0][i], int(hard[1][i])
                # Only the sampled block runs; the others' weights are 0 in value but carry GDAS'
                # straight-through gradient.
                x = h[k] * layer(x, k) + (h[:len(self.specs[i].choices)].sum() - h[k])
        return self.head(x)

    def choice_parameters(self, decision: int, choice: int) -> list[nn.Parameter]:
        """The weights choice `choice` of layer `decision` trains: its block's own, or, for a member of a
        weight group, the group's shared ones (which the group's other members train too)."""
        layer = self.layers[decision]
        group = getattr(layer, "group_of_choice", {}).get(choice)
        if group is not None:
            return list(layer.groups[group].parameters())
        key = str(choice)
        return list(layer.blocks[key].parameters()) if key in layer.blocks else []

    def inherit_from(self, supernet: "LayerwiseNetwork") -> "LayerwiseNetwork":
        """Copy the weights and BN statistics this subnet's arch uses from `supernet`: stem and head by name,
        each layer's block from the supernet layer's `block_state` (copied, or cut from a shared block)."""
        own, theirs = self.state_dict(), dict(supernet.state_dict())
        if self.arch is None or len(supernet.layers) != len(self.layers):
            raise UsageError("weights are inherited by a subnet from a supernet of the same space and config")
        for i, (layer, choice) in enumerate(zip(supernet.layers, self.arch)):
            prefix = f"layers.{i}.blocks.{choice}."
            theirs.update({prefix + k: v for k, v in layer.block_state(choice).items()})
        for k, v in own.items():
            if k not in theirs or theirs[k].shape != v.shape:
                raise UsageError(f"supernet lacks parameter '{k}' of this shape: it was built with another config")
        self.load_state_dict({k: theirs[k] for k in own})
        return self

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """`nn.Module.load_state_dict`, refusing with one line a supernet checkpoint that keeps one set of weights
        per block where this space now shares them."""
        if self.arch is None:
            for i, layer in enumerate(self.layers):
                for choice in getattr(layer, "group_of_choice", {}):
                    if any(k.startswith(f"layers.{i}.blocks.{choice}.") for k in state_dict):
                        raise UsageError("this supernet checkpoint predates weight sharing inside layers (one set of "
                                         "weights per block choice); retrain it with this version of hwnas train")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
