"""Candidate operations of the NAS-Bench-201 cell and its fixed blocks, as in the benchmark's code.

Conv ops are ReLU -> Conv -> BN; pooling keeps the resolution; `none` has no module at all (it
contributes nothing, so nothing is computed for it).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from hwnas.core.errors import UsageError

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv(k, stride) -> BatchNorm. `forward(x, activated=True)` takes an input whose ReLU is already
    computed (a node's ReLU shared by the convolutions it feeds); `scale` returns `scale` times the output,
    folded into the BatchNorm (`supernet.bn.scaled_batch_norm`)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )

    def forward(self, x: torch.Tensor, activated: bool = False, scale: torch.Tensor | None = None) -> torch.Tensor:
        y = self[1](x if activated else self[0](x))
        if scale is None:
            return self[2](y)
        from .bn import scaled_batch_norm

        return scaled_batch_norm(self[2], y, scale)


def make_op(name: str, channels: int, affine: bool = True, track_running_stats: bool = True) -> nn.Module:
    """Module for one NB201 candidate op (not `none`, which has none)."""
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, affine=affine, track_running_stats=track_running_stats)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, affine=affine, track_running_stats=track_running_stats)
    if name == "avg_pool_3x3":
        return AvgPool3x3()
    raise UsageError(f"unknown op '{name}'; valid: {', '.join(NB201_OPS[1:])}")


class AvgPool3x3(nn.Module):
    """NB201's `avg_pool_3x3`: 3x3 average pooling, stride 1, padding 1, padded positions not counted
    (`nn.AvgPool2d(3, 1, 1, count_include_pad=False)`), computed as a depthwise convolution with a ones kernel
    times each position's inverse window size. Same function to float rounding (the sum's order differs), with
    no parameters, so checkpoints are unchanged. On CPU, where PyTorch's pooling kernel is slower than a 3x3
    convolution at NB201's shapes, the op alone is 3.5-5x `nn.AvgPool2d` and scoring a cell 1.18x
    (`benchmarks/results/proxy_speed.md`).
    FLOP counters count it as the pooling it is (none), not as a convolution, and exports (traced) hold
    `nn.AvgPool2d`'s own op."""

    counts_no_flops = True

    def __init__(self):
        super().__init__()
        self._consts: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _constants(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c, h, w = x.shape[1:]
        key = (c, h, w, x.dtype, x.device)
        if key not in self._consts:
            kernel = torch.ones(c, 1, 3, 3, dtype=x.dtype, device=x.device)
            ones = torch.ones(1, 1, h, w, dtype=x.dtype, device=x.device)
            count = F.conv2d(ones, torch.ones(1, 1, 3, 3, dtype=x.dtype, device=x.device), padding=1)
            self._consts[key] = (kernel, count.reciprocal())
        return self._consts[key]

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled `x`; with `scale` (a scalar tensor), `scale` times it, the scalar folded into the small
        inverse-count map instead of a pass over the output (a DARTS op weight)."""
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            # Exports (TorchScript, ONNX) carry the standard pooling op that deployment tools know.
            y = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
            return y if scale is None else y * scale
        kernel, inverse_count = self._constants(x)
        return F.conv2d(x, kernel, padding=1, groups=x.shape[1]) * (
            inverse_count if scale is None else inverse_count * scale)


class ResidualReduction(nn.Module):
    """NB201's reduction block: a stride-2 ResNet basic block with an avg-pool + 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2, affine=affine, track_running_stats=track_running_stats)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, stride=1, affine=affine, track_running_stats=track_running_stats)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))
