"""Candidate operations of the NAS-Bench-201 cell and its fixed blocks, as in the benchmark's code.

Conv ops are ReLU -> Conv -> BN; pooling keeps the resolution; `none` has no module at all (it
contributes nothing, so nothing is computed for it).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from hwnas.core.errors import UsageError

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv(k, stride) -> BatchNorm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )


def make_op(name: str, channels: int, affine: bool = True, track_running_stats: bool = True) -> nn.Module:
    """Module for one NB201 candidate op (not `none`, which has none)."""
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, affine=affine, track_running_stats=track_running_stats)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, affine=affine, track_running_stats=track_running_stats)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise UsageError(f"unknown op '{name}'; valid: {', '.join(NB201_OPS[1:])}")


class ResidualReduction(nn.Module):
    """NB201's reduction block: a stride-2 ResNet basic block with an avg-pool + 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2, affine=affine, track_running_stats=track_running_stats)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, stride=1, affine=affine, track_running_stats=track_running_stats)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))
