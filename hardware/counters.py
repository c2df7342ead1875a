"""Model-size and compute counters: parameters, FLOPs (torch's own FlopCounterMode), size in MB (fp32 and
int8), peak activation memory of a forward pass.

Imports nothing of ours; works on any `nn.Module`.
"""
from __future__ import annotations

import weakref

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode


def module_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a module with neither)."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def count_params(model: nn.Module) -> int:
    """Number of parameters (weights and biases; BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def params_m(model: nn.Module) -> float:
    """Parameters in millions."""
    return count_params(model) / 1e6


@torch.no_grad()
def flops_m(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> float:
    """Forward FLOPs in millions for one input of `input_shape`, as torch's FlopCounterMode counts them
    (one multiply-accumulate = 2 FLOPs; convolutions and matmuls only). A module with `counts_no_flops = True`
    (a pooling layer computed as a fixed-kernel convolution for speed) counts none, as the pooling it
    stands for would not."""
    was_training = model.training
    model.eval()
    x = torch.zeros(input_shape, device=module_device(model))
    with FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    # FlopCounterMode names a module '<root class>.<path>'; subtract what the exempt modules counted.
    per_module = counter.get_flop_counts()
    root = type(model).__name__
    exempt = sum(sum(per_module.get(f"{root}.{name}" if name else root, {}).values())
                 for name, module in model.named_modules() if getattr(module, "counts_no_flops", False))
    return (counter.get_total_flops() - exempt) / 1e6


def size_mb(model: nn.Module, bytes_per_param: int = 4) -> float:
    """Size of the parameters in MB (10^6 bytes): 4 bytes each for fp32, 1 for int8."""
    return count_params(model) * bytes_per_param / 1e6


def size_int8_mb(model: nn.Module) -> float:
    """Size in MB (10^6 bytes) after post-training int8 quantisation as deployed (TFLite/ONNX QDQ style):
    conv and linear weights 1 byte each plus a 4-byte scale and zero point per output channel, their
    biases int32 (4 bytes), BatchNorm folded into the preceding conv (0 bytes), anything else fp32."""
    total = 0
    for module in model.modules():
        own = dict(module.named_parameters(recurse=False))
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            w = own.pop("weight")
            total += w.numel() + 8 * w.shape[0]
            b = own.pop("bias", None)
            total += 4 * b.numel() if b is not None else 0
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            own.clear()
        total += 4 * sum(p.numel() for p in own.values())
    return total / 1e6


class _LiveTensors(TorchDispatchMode):
    """Tracks the bytes of storages created inside the mode that are still alive, and their peak."""

    def __init__(self, baseline: int):
        super().__init__()
        self.live, self.peak = baseline, baseline
        self._refs: dict[int, list] = {}  # storage pointer -> [bytes, number of live tensors on it]

    def _release(self, ptr: int) -> None:
        entry = self._refs.get(ptr)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self._refs[ptr]

    def _track(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr == 0:
            return
        if ptr in self._refs:
            self._refs[ptr][1] += 1
        else:
            self._refs[ptr] = [storage.nbytes(), 1]
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        weakref.finalize(t, self._release, ptr)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t)
        return out


@torch.no_grad()
def peak_activation_mb(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> float:
    """Peak memory in MB (10^6 bytes) held by activations during one inference forward pass: the input
    plus every intermediate tensor while it is alive (parameters excluded). On CUDA this is torch's own
    `max_memory_allocated` above the weights; on the CPU, where torch keeps no such counter, each
    operator's outputs are tracked until they are freed (same definition, exact for eager execution)."""
    was_training = model.training
    model.eval()
    device = module_device(model)
    try:
        x = torch.zeros(input_shape, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device) - x.untyped_storage().nbytes()
            model(x)
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated(device) - base) / 1e6
        with _LiveTensors(baseline=x.untyped_storage().nbytes()) as tracker:
            out = model(x)
            del out
        return tracker.peak / 1e6
    finally:
        model.train(was_training)


def count_all(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> dict[str, float]:
    """Every counter of `model` for inputs of `input_shape`: params_m, flops_m (one image), size_mb,
    size_int8_mb, peak_mem_mb (the whole batch), as `hwnas measure` reports them."""
    return {"params_m": params_m(model), "flops_m": flops_m(model, (1, *input_shape[1:])),
            "size_mb": size_mb(model), "size_int8_mb": size_int8_mb(model),
            "peak_mem_mb": peak_activation_mb(model, input_shape)}
