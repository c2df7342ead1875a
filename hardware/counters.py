"""Model-size and compute counters: parameters, FLOPs (torch's own FlopCounterMode), size in MB.

Imports nothing of ours; works on any `nn.Module`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    """Number of parameters (weights and biases; BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def params_m(model: nn.Module) -> float:
    """Parameters in millions."""
    return count_params(model) / 1e6


@torch.no_grad()
def flops_m(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> float:
    """Forward FLOPs in millions for one input of `input_shape`, as torch's FlopCounterMode counts them
    (one multiply-accumulate = 2 FLOPs; convolutions and matmuls only)."""
    was_training = model.training
    model.eval()
    x = torch.zeros(input_shape, device=next(model.parameters()).device)
    with FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops() / 1e6


def size_mb(model: nn.Module, bytes_per_param: int = 4) -> float:
    """Size of the parameters in MB (10^6 bytes): 4 bytes each for fp32, 1 for int8."""
    return count_params(model) * bytes_per_param / 1e6
