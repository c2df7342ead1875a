"""Shared part of the layer-wise spaces (MobileNetV2, ShuffleNetV2, ResNet blocks): a stem, stages of
searchable layers, a head; one integer decision per layer picks that layer's block.

Layout: `stages` is a list of (width multiple of C, depth, stride); a stage's first layer applies the
stride and changes the width, the others keep both. C is the `channels` net option (the spaces' CIFAR
defaults are written for C=16); the `cells` option belongs to cell spaces and is ignored here.

Arch strings name each layer's block, joined by '-', e.g. `k3e6-k5e3-skip-...`. Encodings are the
choice indices in each layer's candidate tuple. There are no isomorphisms to merge (`canonical` is the
identity): an identity block at different positions leaves different weights in use.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn

from hwnas.core.errors import BudgetError, UsageError

from ..layerwise_net import LayerSpec, LayerwiseNetwork
from ..limits import MAX_WIDTH_MULTIPLE, check_bound
from ..sharing import SharedChoiceLayer
from .base import Arch, SearchSpace


def _layout(stages: Any, name: str) -> tuple[tuple[float, int, int], ...]:
    """`stages` checked: a non-empty list of (width multiple > 0, depth >= 1, stride 1 or 2)."""
    bad = (f"space '{name}': stages must be a list of [width multiple > 0, depth >= 1, stride 1|2], "
           f"got {stages!r}")
    if not isinstance(stages, (list, tuple)) or not stages:
        raise UsageError(bad)
    out = []
    for st in stages:
        if not isinstance(st, (list, tuple)) or len(st) != 3:
            raise UsageError(bad)
        mult, depth, stride = st
        if (isinstance(mult, bool) or not isinstance(mult, (int, float)) or mult <= 0 or isinstance(depth, bool)
                or not isinstance(depth, int) or depth < 1 or stride not in (1, 2)):
            raise UsageError(bad)
        if mult > MAX_WIDTH_MULTIPLE:
            raise BudgetError(f"space '{name}': a stage's width multiple must be at most {MAX_WIDTH_MULTIPLE:g}, "
                              f"got {mult!r}")
        check_bound("stage_depth", depth, f"space '{name}': a stage's depth")
        out.append((float(mult), int(depth), int(stride)))
    check_bound("layers", sum(d for _, d, _ in out), f"space '{name}': the total number of layers")
    return tuple(out)


class LayerwiseSpace(SearchSpace):
    """Base class; a subclass sets `default_stages`, `stem_multiple`, `head_multiple` and implements
    `stage_choices`, `make_stem`, `make_block` and `make_head`."""

    default_stages: tuple[tuple[float, int, int], ...] = ()
    stem_multiple: float = 1.0
    head_multiple: float | None = None  # width of a final 1x1 conv before pooling (None: no such conv)
    width_divisor: int = 1              # widths are rounded to a multiple of this
    extra_options: tuple[str, ...] = ()  # options a subclass accepts beyond `stages`

    def __init__(self, stages: Sequence[Sequence] | None = None, **options: Any):
        unknown = sorted(set(options) - set(self.extra_options))
        if unknown:
            valid = ", ".join(("stages",) + self.extra_options)
            raise UsageError(f"unknown option '{unknown[0]}' for space '{self.name}'; valid: {valid}")
        self.stages = _layout(self.default_stages if stages is None else stages, self.name)
        self.options = {} if stages is None else {"stages": [list(s) for s in self.stages]}
        self._layer_choices: list[tuple[str, ...]] = []
        self._layer_stage: list[int] = []
        for s, (_, depth, _) in enumerate(self.stages):
            for j in range(depth):
                self._layer_choices.append(tuple(self.stage_choices(s, j)))
                self._layer_stage.append(s)

    # --- what a subclass defines -----------------------------------------------------------------
    def stage_choices(self, stage: int, index: int) -> Sequence[str]:
        """Candidate block names of layer `index` (0-based) of stage `stage`."""
        raise NotImplementedError

    def make_stem(self, c_out: int) -> nn.Module:
        raise NotImplementedError

    def make_block(self, name: str, spec: LayerSpec) -> nn.Module:
        raise NotImplementedError

    def make_head(self, c_in: int, num_classes: int, channels: int) -> nn.Module:
        """Head after the last layer (`c_in` channels); `channels` is C, for widths given as multiples."""
        raise NotImplementedError

    def shared_group(self, name: str) -> str | None:
        """The weight group block `name` is cut from inside its layer (`supernet.sharing`), or None for a block
        with weights of its own (the default: no sharing)."""
        return None

    kernel_transform: bool = False  # OFA's learned kernel transformation between kernel sizes of a group

    # --- layout --------------------------------------------------------------------------------------
    def width(self, multiple: float, channels: int) -> int:
        """round(multiple * C) to a multiple of `width_divisor` (at least one divisor)."""
        d = self.width_divisor
        return max(d, int(round(multiple * channels / d)) * d)

    def layer_specs(self, channels: int = 16) -> list[LayerSpec]:
        """Every searchable layer's channels, stride and candidates at C=`channels`."""
        specs, c_in, i = [], self.width(self.stem_multiple, channels), 0
        for mult, depth, stride in self.stages:
            c_out = self.width(mult, channels)
            for j in range(depth):
                specs.append(LayerSpec(c_in, c_out, stride if j == 0 else 1, self._layer_choices[i]))
                c_in, i = c_out, i + 1
        return specs

    def layer_stage(self, layer: int) -> int:
        """The stage layer `layer` belongs to."""
        return self._layer_stage[layer]

    def choices(self, layer: int) -> tuple[str, ...]:
        """Candidate block names of layer `layer`."""
        return self._layer_choices[layer]

    def is_skip(self, decision: int, choice: int) -> bool:
        return self._layer_choices[decision][choice] == "skip"

    @property
    def num_choices(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self._layer_choices)

    # --- block sizes (the sandwich rule) -------------------------------------------------------------
    def choice_params(self, layer: int, channels: int = 16) -> list[int]:
        """Parameters of each candidate block of layer `layer` at C=`channels` (built on the meta device)."""
        key = (layer, channels)
        cache = self.__dict__.setdefault("_choice_params", {})
        if key not in cache:
            spec = self.layer_specs(channels)[layer]
            with torch.device("meta"):
                cache[key] = [sum(p.numel() for p in self.make_block(n, spec).parameters()) for n in spec.choices]
        return cache[key]

    def largest_arch(self) -> Arch:
        """Each layer's block with the most parameters (the sandwich rule's largest path)."""
        return tuple(int(max(range(n), key=lambda k: (self.choice_params(i)[k], -k)))
                     for i, n in enumerate(self.num_choices))

    def smallest_arch(self) -> Arch:
        """Each layer's block with the fewest parameters (`skip` where a layer has it)."""
        return tuple(int(min(range(n), key=lambda k: (self.choice_params(i)[k], k)))
                     for i, n in enumerate(self.num_choices))

    # --- strings -------------------------------------------------------------------------------------
    def to_str(self, arch: Arch) -> str:
        arch = self.validate(arch)
        return "-".join(self._layer_choices[i][a] for i, a in enumerate(arch))

    def from_str(self, text: str) -> Arch:
        names = text.strip().split("-")
        if len(names) != len(self._layer_choices):
            raise UsageError(f"arch {text!r} names {len(names)} blocks; space '{self.name}' has "
                             f"{len(self._layer_choices)} layers (block names joined by '-')")
        arch = []
        for i, (name, valid) in enumerate(zip(names, self._layer_choices)):
            if name not in valid:
                raise UsageError(f"unknown block {name!r} at layer {i} of '{self.name}'; valid: {', '.join(valid)}")
            arch.append(valid.index(name))
        return tuple(arch)

    # --- networks ------------------------------------------------------------------------------------
    def _network(self, channels: int, cells: int, num_classes: int, arch: Arch | None) -> LayerwiseNetwork:
        specs = self.layer_specs(channels)
        config = dict(channels=channels, cells=cells, num_classes=num_classes)
        shared = any(self.shared_group(n) is not None for n in set().union(*(s.choices for s in specs)))
        make_layer = None
        if shared:
            def make_layer(spec: LayerSpec) -> nn.Module:
                return SharedChoiceLayer(spec.choices, lambda name: self.make_block(name, spec), self.shared_group,
                                         self.kernel_transform)
        return LayerwiseNetwork(self.make_stem(specs[0].c_in), specs, self.make_block,
                                self.make_head(specs[-1].c_out, num_classes, channels), config, arch=arch,
                                make_layer=make_layer)

    def build_supernet(self, channels: int = 16, cells: int = 5, num_classes: int = 10,
                       **cfg: Any) -> LayerwiseNetwork:
        return self._network(channels, cells, num_classes, None)

    def build_subnet(self, arch: Arch, supernet: nn.Module | None = None, **cfg: Any) -> LayerwiseNetwork:
        arch = self.parse(arch)
        if supernet is not None:
            return self._network(**{**supernet.config, **cfg}, arch=arch).inherit_from(supernet)
        net = {k: cfg[k] for k in ("channels", "cells", "num_classes") if k in cfg}
        return self._network(**{"channels": 16, "cells": 5, "num_classes": 10, **net}, arch=arch)

    # --- per-block latency tables -----------------------------------------------------------------------
    def _block_key(self, layer: int, name: str) -> str:
        first = layer == 0 or self._layer_stage[layer - 1] != self._layer_stage[layer]
        return f"stage{self._layer_stage[layer] + 1}.{'first' if first else 'rest'}/{name}"

    @torch.no_grad()
    def latency_blocks(self, input_shape: Sequence[int] = (1, 3, 32, 32), channels: int = 16, cells: int = 5,
                       num_classes: int = 10, **cfg: Any) -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
        """`stem`, `head` and, per stage, each block at the stage's first layer (`stage<s>.first/<block>`,
        which changes width and/or resolution) and at its other layers (`stage<s>.rest/<block>`, which all
        see the same shape)."""
        net = self.build_supernet(channels, cells, num_classes).eval()
        b, c, h, w = (int(v) for v in input_shape)
        x = net.stem(torch.zeros(1, c, h, w))
        blocks: dict[str, tuple[nn.Module, tuple[int, ...]]] = {"stem": (net.stem, (b, c, h, w))}
        for i, (layer, spec) in enumerate(zip(net.layers, net.specs)):
            for k, name in enumerate(spec.choices):
                key = self._block_key(i, name)
                if key not in blocks:
                    blocks[key] = (layer.block(k), (b, *x.shape[1:]))
            x = layer(x, 0)
        blocks["head"] = (net.head, (b, *x.shape[1:]))
        return blocks

    def arch_blocks(self, arch: Arch, **cfg: Any) -> list[str]:
        """`stem`, each layer's chosen block (names as in `latency_blocks`) and `head`."""
        arch = self.parse(arch)
        return ["stem", *(self._block_key(i, self._layer_choices[i][a]) for i, a in enumerate(arch)), "head"]
