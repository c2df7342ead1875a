"""Layer-wise MobileNetV2 space (the ProxylessNAS / FBNet style space on CIFAR).

Fixed stem: 3x3 conv (stride 1 on 32x32 inputs) to 2C channels, BN, ReLU6. Twenty searchable layers in
five stages; CIFAR defaults at C=16 (`stages`, as width multiple of C, depth, stride):

| stage | width | layers | stride | resolution (32x32 input) |
| --- | --- | --- | --- | --- |
| 1 | 24 (1.5C) | 4 | 1 | 32 |
| 2 | 32 (2C) | 4 | 2 | 16 |
| 3 | 64 (4C) | 4 | 2 | 8 |
| 4 | 96 (6C) | 4 | 1 | 8 |
| 5 | 160 (10C) | 4 | 2 | 4 |

Fixed head: 1x1 conv to 80C (1280 at C=16), BN, ReLU6, global average pooling, linear classifier.

Each layer is an inverted bottleneck (1x1 expand, k x k depthwise, 1x1 project, residual when shapes
match) with kernel k in {3, 5, 7} and expansion e in {3, 6}: blocks `k3e3, k3e6, k5e3, k5e6, k7e3, k7e6`.
Identity rule: `skip` (identity) is a seventh choice on every layer except the first of each stage,
which changes the width and/or the resolution, so the default space has 7^15 * 6^5 ~ 3.7e16 subnets
(the often-quoted 7^20 counts identity on those first layers too, which no tensor shape allows).

Weight sharing inside a layer (Once-for-All; `supernet.sharing`): the supernet keeps one block per layer at the
largest kernel and expansion; a smaller kernel is the centre of the largest one and a smaller expansion the
first hidden channels of the largest (with `kernel_transform: true`, OFA's learned kernel-transformation
matrices map each kernel size to the next smaller one). `skip` has no weights. So that every block cuts from
the same tensors, the 1x1 expansion is always there (MobileNetV2 leaves it out at expansion 1).

Hardware-tailored widths (HTAS): with `hidden` (one list of absolute expanded-channel counts per
stage, chosen by `hwnas space tailor` for C=`hidden_channels`), the blocks are `k<k>h<hidden>` instead of
`k<k>e<e>`, each cut from the widest.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import torch.nn as nn

from hwnas.core.errors import UsageError

from ..blocks import InvertedResidual, classifier_head, conv_bn
from ..limits import check_bound
from ..layerwise_net import LayerSpec
from . import register_space
from .layerwise import LayerwiseSpace

KERNELS = (3, 5, 7)
_BLOCK = re.compile(r"^k(\d+)([eh])(\d+)$")
EXPANSIONS = (3, 6)


def _hidden_lists(hidden: Any, num_stages: int) -> tuple[tuple[int, ...], ...]:
    bad = (f"space 'mobilenet': hidden must be {num_stages} lists of positive channel counts "
           f"(one per stage), got {hidden!r}")
    if not isinstance(hidden, (list, tuple)) or len(hidden) != num_stages:
        raise UsageError(bad)
    out = []
    for h in hidden:
        if (not isinstance(h, (list, tuple)) or not h
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in h)):
            raise UsageError(bad)
        out.append(tuple(sorted(set(int(v) for v in h))))
    return tuple(out)


@register_space("mobilenet")
class MobileNetSpace(LayerwiseSpace):
    """Layer-wise MobileNetV2 space (see module docstring); options `stages`, `kernels`, `expansions`,
    tailored `hidden` + `hidden_channels`, and `kernel_transform`."""

    default_stages = ((1.5, 4, 1), (2, 4, 2), (4, 4, 2), (6, 4, 1), (10, 4, 2))
    stem_multiple = 2.0
    head_multiple = 80.0
    extra_options = ("kernels", "expansions", "hidden", "hidden_channels", "kernel_transform")

    def __init__(self, stages: Sequence[Sequence] | None = None, kernels: Sequence[int] = KERNELS,
                 expansions: Sequence[int] = EXPANSIONS, hidden: Any = None, hidden_channels: int | None = None,
                 kernel_transform: bool = False, **unknown: Any):
        if unknown:
            super().__init__(stages, **unknown)  # ValueError naming the unknown option and the valid ones
        if not isinstance(kernel_transform, bool):
            raise UsageError(f"space 'mobilenet': kernel_transform must be true or false, got {kernel_transform!r}")
        self.kernel_transform = kernel_transform
        if any(isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0 for k in kernels) or not kernels:
            raise UsageError(f"space 'mobilenet': kernels must be odd positive integers, got {list(kernels)}")
        if any(isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in expansions) or not expansions:
            raise UsageError(f"space 'mobilenet': expansions must be positive integers, got {list(expansions)}")
        for k in kernels:
            check_bound("kernel", k, "space 'mobilenet': a kernel size")
        for e in expansions:
            check_bound("expansion", e, "space 'mobilenet': an expansion")
        self.kernels, self.expansions = tuple(kernels), tuple(expansions)
        n_stages = len(stages) if stages is not None else len(self.default_stages)
        self.hidden = None if hidden is None else _hidden_lists(hidden, n_stages)
        if (hidden is None) != (hidden_channels is None):
            raise UsageError("space 'mobilenet': tailored 'hidden' widths need 'hidden_channels' (the C they "
                             "were tailored for), and the other way round")
        self.hidden_channels = hidden_channels
        super().__init__(stages)
        if tuple(kernels) != KERNELS:
            self.options["kernels"] = list(self.kernels)
        if tuple(expansions) != EXPANSIONS:
            self.options["expansions"] = list(self.expansions)
        if self.hidden is not None:
            self.options.update(hidden=[list(h) for h in self.hidden], hidden_channels=int(hidden_channels))
        if kernel_transform:
            self.options["kernel_transform"] = True

    def stage_choices(self, stage: int, index: int) -> list[str]:
        if self.hidden is None:
            names = [f"k{k}e{e}" for k in self.kernels for e in self.expansions]
        else:
            names = [f"k{k}h{h}" for k in self.kernels for h in self.hidden[stage]]
        return names + (["skip"] if index > 0 else [])

    def build_supernet(self, channels: int = 16, cells: int = 5, num_classes: int = 10, **cfg: Any):
        if self.hidden_channels is not None and channels != self.hidden_channels:
            raise UsageError(f"these tailored widths were chosen for C={self.hidden_channels}; got C={channels} "
                             f"(re-run hwnas space tailor with --channels {channels})")
        return super().build_supernet(channels, cells, num_classes, **cfg)

    def shrink_phases(self) -> list[tuple[str, list[list[int]]]]:
        """Once-for-All's progressive shrinking, as (phase, allowed choices per layer): the largest block, then
        every kernel at the largest width, then skip too (elastic depth), then every width."""
        phases = []
        for phase in ("largest", "kernel", "depth", "width"):
            allowed = []
            for i in range(len(self.num_choices)):
                names = self.choices(i)
                blocks = [(j, *_BLOCK.match(n).groups()) for j, n in enumerate(names) if n != "skip"]
                k_max = max(int(k) for _, k, _, _ in blocks)
                w_max = max(int(v) for _, _, _, v in blocks)
                ok = [j for j, k, _, v in blocks if int(v) == w_max and (phase != "largest" or int(k) == k_max)]
                if phase == "width":
                    ok = [j for j, *_ in blocks]
                if phase in ("depth", "width") and "skip" in names:
                    ok.append(names.index("skip"))
                allowed.append(sorted(ok))
            phases.append((phase, allowed))
        return phases

    def make_stem(self, c_out: int) -> nn.Module:
        return conv_bn(3, c_out, 3, act=nn.ReLU6)

    def make_block(self, name: str, spec: LayerSpec) -> nn.Module:
        if name == "skip":
            return nn.Identity()
        kernel, kind, value = _BLOCK.match(name).groups()
        hidden = int(value) if kind == "h" else spec.c_in * int(value)
        return InvertedResidual(spec.c_in, spec.c_out, spec.stride, int(kernel), hidden, expand=True)

    def shared_group(self, name: str) -> str | None:
        """Every inverted bottleneck of a layer is cut from the largest one; `skip` has no weights."""
        return None if name == "skip" else "mbconv"

    def make_head(self, c_in: int, num_classes: int, channels: int) -> nn.Module:
        return classifier_head(c_in, self.width(self.head_multiple, channels), num_classes, act=nn.ReLU6)

    def width_probes(self, channels: int = 16, input_shape: Sequence[int] = (1, 3, 32, 32),
                     min_expansion: float = 2.0, max_expansion: float = 8.0, step: int = 4) -> list[dict]:
        """What hardware tailoring times, one entry per stage: a stride-1 k3 inverted bottleneck of the
        stage's width at the stage's resolution, for expanded widths `candidates` (multiples of `step`
        from min_expansion * width to max_expansion * width); `build(hidden)` gives (module, input shape)."""
        if not 0 < min_expansion < max_expansion or step < 1:
            raise UsageError(f"need 0 < min expansion < max expansion and step >= 1, got {min_expansion}, "
                             f"{max_expansion}, {step}")
        b, _, h, w = (int(v) for v in input_shape)
        probes = []
        for s, (mult, _, stride) in enumerate(self.stages):
            c = self.width(mult, channels)
            h, w = (h + stride - 1) // stride, (w + stride - 1) // stride
            lo = max(step, int(-(-min_expansion * c // step)) * step)
            candidates = list(range(lo, int(max_expansion * c) + 1, step))
            probes.append(dict(stage=s, width=c, resolution=h, candidates=candidates,
                               build=lambda x, c=c, shape=(b, c, h, w): (InvertedResidual(c, c, 1, 3, x), shape)))
        return probes

    @staticmethod
    def tailored_options(chosen: Sequence[Sequence[int]], channels: int) -> dict[str, Any]:
        """Space options that make the expanded widths of each stage the tailored `chosen` counts."""
        return {"hidden": [sorted(int(x) for x in c) for c in chosen], "hidden_channels": int(channels)}

