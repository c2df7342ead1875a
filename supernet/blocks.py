"""Building blocks of the layer-wise spaces: MobileNetV2 inverted bottlenecks, ShuffleNetV2 / Xception
units, ResNet basic and bottleneck blocks, and the lighter blocks of the ResNet-block space. Every block
maps (c_in, H, W) to (c_out, H / stride, W / stride); convolutions have no bias (BN follows)."""
from __future__ import annotations

import torch
import torch.nn as nn


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
            act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Conv (same padding) -> BN -> optional activation."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    """Identity when shapes match, else ResNet's projection: 1x1 conv (stride) + BN."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return conv_bn(c_in, c_out, 1, stride, act=None)


def classifier_head(c_in: int, c_mid: int | None, num_classes: int, act: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Optional 1x1 conv to `c_mid` + BN + activation, then global average pooling and a linear layer."""
    layers: list[nn.Module] = []
    if c_mid:
        layers.append(conv_bn(c_in, c_mid, 1, act=act))
        c_in = c_mid
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand to `hidden` (left out when hidden == c_in, unless `expand`), BN, ReLU6;
    k x k depthwise (stride), BN, ReLU6; 1x1 project, BN; plus the input when stride is 1 and widths match."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int, hidden: int, expand: bool | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        if expand or (expand is None and hidden != c_in):
            layers.append(conv_bn(c_in, hidden, 1, act=nn.ReLU6))
        layers += [conv_bn(hidden, hidden, kernel, stride, groups=hidden, act=nn.ReLU6),
                   conv_bn(hidden, c_out, 1, act=None)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


def _shuffle_branch(c_in: int, c_out: int, stride: int, kernel: int, xception: bool) -> nn.Sequential:
    if xception:  # three (depthwise 3x3 -> pointwise) pairs; the first depthwise conv strides
        layers = [conv_bn(c_in, c_in, 3, stride, groups=c_in, act=None), conv_bn(c_in, c_out, 1),
                  conv_bn(c_out, c_out, 3, groups=c_out, act=None), conv_bn(c_out, c_out, 1),
                  conv_bn(c_out, c_out, 3, groups=c_out, act=None), conv_bn(c_out, c_out, 1)]
    else:  # pointwise -> depthwise k x k -> pointwise
        layers = [conv_bn(c_in, c_out, 1), conv_bn(c_out, c_out, kernel, stride, groups=c_out, act=None),
                  conv_bn(c_out, c_out, 1)]
    return nn.Sequential(*layers)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit (shuffle-k) or its Xception variant, as in Single Path One-Shot.

    Shapes kept (stride 1, c_in == c_out): half the channels pass, the other half go through the branch.
    Otherwise both halves of the output are computed from the whole input: a projection branch
    (depthwise k x k with the stride, pointwise) gives c_out // 2 channels and the main branch the rest.
    The halves are concatenated and their channels shuffled (2 groups)."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int = 3, xception: bool = False):
        super().__init__()
        self.split = stride == 1 and c_in == c_out
        if self.split:
            half = c_in // 2
            self.proj = None
            self.main = _shuffle_branch(c_in - half, c_out - half, 1, kernel, xception)
        else:
            self.proj = nn.Sequential(conv_bn(c_in, c_in, kernel, stride, groups=c_in, act=None),
                                      conv_bn(c_in, c_out // 2, 1))
            self.main = _shuffle_branch(c_in, c_out - c_out // 2, stride, kernel, xception)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.split:
            half = x.shape[1] // 2
            y = torch.cat([x[:, :half], self.main(x[:, half:])], dim=1)
        else:
            y = torch.cat([self.proj(x), self.main(x)], dim=1)
        b, c, h, w = y.shape
        if c % 2:
            return y
        return y.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)


class BasicBlock(nn.Module):
    """ResNet basic block: two k x k conv-BN (ReLU between), inner width `mid`, shortcut, ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int = 3, mid: int | None = None):
        super().__init__()
        mid = mid or c_out
        self.body = nn.Sequential(conv_bn(c_in, mid, kernel, stride), conv_bn(mid, c_out, kernel, act=None))
        self.shortcut = shortcut(c_in, c_out, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


def basic_stack(c_in: int, c_out: int, stride: int, depth: int, kernel: int = 3, mid: int | None = None
                ) -> nn.Sequential:
    """`depth` basic blocks (a ResNet stage); the first carries the stride and width change."""
    return nn.Sequential(*(BasicBlock(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1, kernel, mid)
                           for i in range(depth)))


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 to c_out / 4, 3x3 (stride), 1x1 to c_out, shortcut, ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        mid = max(1, c_out // 4)
        self.body = nn.Sequential(conv_bn(c_in, mid, 1), conv_bn(mid, mid, 3, stride), conv_bn(mid, c_out, 1, act=None))
        self.shortcut = shortcut(c_in, c_out, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class Pooling(nn.Module):
    """3x3 max or average pooling with the stride, then a 1x1 conv-BN when the width changes."""

    def __init__(self, c_in: int, c_out: int, stride: int, kind: str):
        super().__init__()
        pool = nn.MaxPool2d(3, stride, 1) if kind == "max" else nn.AvgPool2d(3, stride, 1, count_include_pad=False)
        self.body = nn.Sequential(pool, *([conv_bn(c_in, c_out, 1, act=None)] if c_in != c_out else []))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Inception(nn.Module):
    """Inception-style block: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3 | 3x3 max pool -> 1x1 branches, each
    with the stride, concatenated (a quarter of c_out each, the pool branch takes the remainder)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        q = max(1, c_out // 4)
        self.branches = nn.ModuleList([
            conv_bn(c_in, q, 1, stride),
            nn.Sequential(conv_bn(c_in, q, 1), conv_bn(q, q, 3, stride)),
            nn.Sequential(conv_bn(c_in, q, 1), conv_bn(q, q, 3), conv_bn(q, q, 3, stride)),
            nn.Sequential(nn.MaxPool2d(3, stride, 1), conv_bn(c_in, c_out - 3 * q, 1)),
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)
