"""BatchNorm handling for weight-shared subnets: batch statistics, or recalibrated running statistics."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import torch
import torch.nn as nn

BN_MODES = ("recalibrate", "batch", "inherit")


def _bns(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


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
