"""BatchNorm handling for weight-shared subnets: batch statistics, or recalibrated running statistics."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_MODES = ("recalibrate", "batch", "inherit")


def _bns(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def scaled_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """`scale * bn(x)` in one BatchNorm kernel: the scalar `scale` (a DARTS or GDAS op weight) becomes the
    per-channel affine weight (times bn's own, if any), so no separate multiplication runs forward or backward;
    dL/dscale comes out of BatchNorm's weight gradient. Running statistics, momentum and train/eval behave as
    in `bn(x)` (the same logic as `torch.nn.modules.batchnorm._BatchNorm.forward`)."""
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    use_batch = bn.training or (bn.running_mean is None and bn.running_var is None)
    keep = not bn.training or bn.track_running_stats
    # contiguous: the CPU channels-last kernels read a stride-0 (expanded) weight wrongly (NaN losses)
    weight = scale.expand(x.shape[1]).contiguous() if bn.weight is None else bn.weight * scale
    bias = None if bn.bias is None else bn.bias * scale
    return F.batch_norm(x, bn.running_mean if keep else None, bn.running_var if keep else None, weight, bias,
                        use_batch, momentum, bn.eps)


@contextmanager
def batch_statistics(model: nn.Module) -> Iterator[nn.Module]:
    """Evaluate with each batch's own BN statistics, leaving the stored running statistics untouched."""
    saved = [(m, m.training, m.momentum) for m in _bns(model)]
    buffers = [(m, m.num_batches_tracked.clone()) for m in _bns(model) if m.num_batches_tracked is not None]
    try:
        for m, _, _ in saved:
            m.train()
            m.momentum = 0.0  # running = 1 * running + 0 * batch: unchanged
        yield model
    finally:
        for m, training, momentum in saved:
            m.train(training)
            m.momentum = momentum
        for m, n in buffers:
            m.num_batches_tracked.copy_(n)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor], forward: Callable[[torch.Tensor], torch.Tensor]) -> int:
    """Reset BN running statistics and re-estimate them as the exact average over `batches`
    (OFA's recipe for inherited subnets). Returns the number of images seen; leaves the model in eval mode."""
    bns = _bns(model)
    saved = [(m, m.momentum) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    seen = 0
    try:
        for x in batches:
            forward(x)
            seen += len(x)
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.eval()
    return seen


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> int:
    """Fold every eval-mode BatchNorm that directly follows a convolution inside an `nn.Sequential` into that
    convolution (`torch.nn.utils.fusion.fuse_conv_bn_eval`), in place: the same function to float rounding,
    one pass over the activations fewer. Only for scoring with running statistics (not `batch_statistics`).
    Returns the number of folded pairs."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and not bn.training
                    and bn.running_mean is not None and not conv.training):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
                folded += 1
    return folded
