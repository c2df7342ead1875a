"""The Single Path One-Shot ShuffleNetV2 space (Guo et al., 2020), on CIFAR.

Fixed stem: 3x3 conv to C channels (stride 1 on 32x32 inputs), BN, ReLU. Twenty searchable layers in
four stages with SPOS' depths 4, 4, 8, 4; CIFAR defaults at C=16 (`stages`: width multiple of C, depth,
stride): 64 (4C) x4 stride 1, 160 (10C) x4 stride 2, 320 (20C) x8 stride 2, 640 (40C) x4 stride 2, i.e.
SPOS' ImageNet widths with the first downsampling left out for 32x32 images. Fixed head: 1x1 conv to
64C (1024 at C=16), BN, ReLU, global average pooling, linear classifier.

Choices per layer (`supernet.blocks.ShuffleUnit`): `shuffle3`, `shuffle5`, `shuffle7` (ShuffleNetV2 units
with a k x k depthwise conv) and `xception` (three depthwise 3x3 + pointwise pairs), plus `skip` (identity)
as a fifth choice on every layer except the first of each stage, which changes width and/or resolution:
4^4 * 5^16 ~ 3.9e13 subnets (4^20 ~ 1.1e12 without identity). Widths are kept even (channel split).

Weight sharing inside a layer (`supernet.sharing`): `shuffle3` and `shuffle5` are cut from `shuffle7`, whose
depthwise kernels they take the centre of (all their other weights have the same shapes, so they are the
same tensors); `xception` keeps weights of its own, and `skip` has none.
"""
from __future__ import annotations

import torch.nn as nn

from ..blocks import ShuffleUnit, classifier_head, conv_bn
from ..layerwise_net import LayerSpec
from . import register_space
from .layerwise import LayerwiseSpace

BLOCKS = {"shuffle3": (3, False), "shuffle5": (5, False), "shuffle7": (7, False), "xception": (3, True)}


@register_space("shufflenet")
class ShuffleNetSpace(LayerwiseSpace):
    """SPOS ShuffleNetV2 space (see module docstring); option `stages`."""

    default_stages = ((4, 4, 1), (10, 4, 2), (20, 8, 2), (40, 4, 2))
    stem_multiple = 1.0
    head_multiple = 64.0
    width_divisor = 2

    def stage_choices(self, stage: int, index: int) -> list[str]:
        return list(BLOCKS) + (["skip"] if index > 0 else [])

    def make_stem(self, c_out: int) -> nn.Module:
        return conv_bn(3, c_out, 3)

    def make_block(self, name: str, spec: LayerSpec) -> nn.Module:
        if name == "skip":
            return nn.Identity()
        kernel, xception = BLOCKS[name]
        return ShuffleUnit(spec.c_in, spec.c_out, spec.stride, kernel, xception)

    def make_head(self, c_in: int, num_classes: int, channels: int) -> nn.Module:
        return classifier_head(c_in, self.width(self.head_multiple, channels), num_classes)

    def shrink_phases(self) -> list[tuple[str, list[list[int]]]]:
        """Progressive shrinking adapted to this space, as (phase, allowed choices per layer): the largest
        shared unit (`shuffle7`), then every kernel of the shared units, then `skip` too (depth), then
        `xception`. Random per-layer mixing of blocks that share no weights is what keeps a full-depth
        supernet from learning at CPU budgets, so the unshared Xception comes last."""
        phases = []
        for phase, names in (("largest", {"shuffle7"}), ("kernel", {"shuffle3", "shuffle5", "shuffle7"}),
                             ("depth", {"shuffle3", "shuffle5", "shuffle7", "skip"}),
                             ("xception", {"shuffle3", "shuffle5", "shuffle7", "skip", "xception"})):
            phases.append((phase, [[j for j, n in enumerate(self.choices(i)) if n in names]
                                   for i in range(len(self.num_choices))]))
        return phases

    def shared_group(self, name: str) -> str | None:
        """The shuffle units share one set of weights (kernels cut from the 7x7); Xception and skip do not."""
        return "shuffle" if name.startswith("shuffle") else None
