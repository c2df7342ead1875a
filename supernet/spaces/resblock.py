"""The LuffyNet block-wise space: ResNet-18's macro structure with each of its four stages replaced by a
searchable layer that picks one of 14 blocks; 14^4 = 38,416 subnets.

Fixed layers: the stem (3x3 conv to C channels, stride 1 on 32x32 inputs, BN, ReLU) and the head (global
average pooling, linear classifier). Searchable layers, CIFAR defaults at C=16 (`stages`: width multiple of
C, depth, stride): 16 (C) stride 1, 32 (2C) stride 2, 64 (4C) stride 2, 128 (8C) stride 2 (ResNet-18's
64-128-256-512 at C=64). Every block maps the layer's input width to its output width with its stride,
so all 14 fit every layer:

| # | block | what it is |
| --- | --- | --- |
| 0 | `skip` | identity; where width or resolution change, ResNet's projection shortcut (1x1 conv + BN) |
| 1 | `basic1` | 1 ResNet basic block (two 3x3 conv-BN, shortcut) |
| 2 | `basic2` | 2 basic blocks (ResNet-18's own stage) |
| 3 | `basic3` | 3 basic blocks |
| 4 | `basic4` | 4 basic blocks |
| 5 | `basic2k5` | 2 basic blocks with 5x5 kernels |
| 6 | `basic2half` | 2 basic blocks with half the inner width |
| 7 | `conv` | plain conv: 3x3 conv-BN-ReLU |
| 8 | `dwsep` | depthwise-separable conv: 3x3 depthwise-BN-ReLU, 1x1 conv-BN-ReLU |
| 9 | `maxpool` | 3x3 max pooling (+ 1x1 conv-BN where the width changes) |
| 10 | `avgpool` | 3x3 average pooling (+ 1x1 conv-BN where the width changes) |
| 11 | `inception` | Inception-style: 1x1, 1x1-3x3, 1x1-3x3-3x3 and pool-1x1 branches, concatenated |
| 12 | `bottleneck` | ResNet bottleneck (1x1 to a quarter, 3x3, 1x1 back, shortcut) |
| 13 | `mbconv` | MobileNetV2 inverted bottleneck, 3x3 depthwise, expansion 6 |

Widths are kept multiples of 4 (the Inception block's four branches).
"""
from __future__ import annotations

import torch.nn as nn

from ..blocks import (
    Bottleneck,
    Inception,
    InvertedResidual,
    Pooling,
    basic_stack,
    classifier_head,
    conv_bn,
    shortcut,
)
from hwnas.core.errors import UsageError

from ..layerwise_net import LayerSpec
from . import register_space
from .layerwise import LayerwiseSpace

BLOCKS = ("skip", "basic1", "basic2", "basic3", "basic4", "basic2k5", "basic2half", "conv", "dwsep", "maxpool",
          "avgpool", "inception", "bottleneck", "mbconv")


def make_resblock(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """Block `name` (one of BLOCKS, see the module's table) from c_in to c_out channels with `stride`."""
    if name == "skip":
        return shortcut(c_in, c_out, stride)
    if name.startswith("basic"):
        depth = int(name[5])
        return basic_stack(c_in, c_out, stride, depth, kernel=5 if name.endswith("k5") else 3,
                           mid=max(1, c_out // 2) if name.endswith("half") else None)
    if name == "conv":
        return conv_bn(c_in, c_out, 3, stride)
    if name == "dwsep":
        return nn.Sequential(conv_bn(c_in, c_in, 3, stride, groups=c_in), conv_bn(c_in, c_out, 1))
    if name in ("maxpool", "avgpool"):
        return Pooling(c_in, c_out, stride, name[:3])
    if name == "inception":
        return Inception(c_in, c_out, stride)
    if name == "bottleneck":
        return Bottleneck(c_in, c_out, stride)
    if name == "mbconv":
        return InvertedResidual(c_in, c_out, stride, 3, 6 * c_in)
    raise UsageError(f"unknown block {name!r}; valid: {', '.join(BLOCKS)}")


@register_space("resblock")
class ResBlockSpace(LayerwiseSpace):
    """LuffyNet's ResNet-block space (see module docstring for the 14 blocks); option `stages`."""

    default_stages = ((1, 1, 1), (2, 1, 2), (4, 1, 2), (8, 1, 2))
    stem_multiple = 1.0
    width_divisor = 4

    def stage_choices(self, stage: int, index: int) -> tuple[str, ...]:
        return BLOCKS

    def make_stem(self, c_out: int) -> nn.Module:
        return conv_bn(3, c_out, 3)

    def make_block(self, name: str, spec: LayerSpec) -> nn.Module:
        return make_resblock(name, spec.c_in, spec.c_out, spec.stride)

    def make_head(self, c_in: int, num_classes: int, channels: int) -> nn.Module:
        return classifier_head(c_in, None, num_classes)
