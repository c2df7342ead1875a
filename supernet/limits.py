"""Size checks before anything is built: hard bounds on every size a user or a remote request can give, and an
estimate of a network's parameters and training memory checked against a budget.

One layer shared by the CLI (`hwnas train`, `hwnas measure`), the Python API (`train`, `check_size`) and the
measurement agent: an absurd `--channels 1000000` or `stages=[[1, 1000000000, 1]]` is one line naming the
value and the limit, not an allocator traceback or a build that never ends.

The estimate builds the network on PyTorch's `meta` device (shapes only, no memory, no arithmetic):
parameters are counted exactly, training memory as weights, gradients and one optimizer buffer (3 x 4 bytes
per parameter) plus every module's output kept for the backward pass (4 bytes per element). The outputs are
first bounded quickly (every module as wide as the widest, at the input's spatial size); only when that bound
is over the limit does one forward pass of the largest path on the meta device count them exactly (meta
kernels are slow: 0.1-1 s). That ignores allocator overhead and temporaries, so the exact count is a lower
bound; the default budget leaves room for that.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from hwnas.core.config import option
from hwnas.core.errors import BudgetError, UsageError, brief

#: Hard bounds (inclusive) on sizes, whatever the budget: far above any network this tool is for, low enough
#: that checking them and building the estimate stays instant.
BOUNDS: dict[str, tuple[int, int]] = {
    "channels": (1, 2048), "cells": (1, 64), "num_classes": (1, 100_000), "batch_size": (1, 65_536),
    "stage_depth": (1, 64), "layers": (1, 512), "kernel": (1, 15), "expansion": (1, 64),
    "input_size": (1, 4096), "warmup": (0, 10_000), "repeats": (1, 100_000),
}
#: Width multiples of a layer-wise stage (times --channels)
MAX_WIDTH_MULTIPLE = 64.0


def check_bound(name: str, value: Any, what: str | None = None) -> int:
    """`value` as an int within `BOUNDS[name]`; BudgetError naming it and the valid range otherwise."""
    lo, hi = BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BudgetError(f"{what or name} must be an integer in {lo}..{hi}, got {value!r}")
    return value


@dataclass(frozen=True)
class SizeBudget:
    """The most a network may need before hwnas refuses to build it: parameters, and training memory
    (the estimate of `estimate_size`) in GB. `None`: no limit of that kind."""

    max_params: float | None = 500e6
    max_memory_gb: float | None = None  # None: this machine's physical memory

    def memory_limit_gb(self) -> tuple[float | None, str]:
        """The memory limit in GB and where it comes from."""
        if self.max_memory_gb is not None:
            return float(self.max_memory_gb), "--max-memory-gb"
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, "this machine's memory; --max-memory-gb"
        except (ValueError, OSError, AttributeError):  # no sysconf (Windows): no memory limit
            return None, ""

    def validate(self) -> "SizeBudget":
        for key in ("max_params", "max_memory_gb"):
            _check_positive(key, getattr(self, key))
        return self


def _check_positive(key: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value) or not value > 0):
        raise BudgetError(f"--{key.replace('_', '-')} must be a positive number, got {value!r}")


@dataclass
class RunBudget:
    """The budget flags of a training run (`hwnas train`, `hwnas retrain`): size checked before anything is
    built, time checked from the first training steps."""

    max_params: float | None = option(500e6, help="refuse a network with more parameters than this (counted "
                                                  "before anything is built)")
    max_memory_gb: float | None = option(None, help="refuse a run whose estimated training memory (weights, "
                                                    "gradients, momentum, activations at --batch-size) is above "
                                                    "this many GB (default: this machine's memory)")
    max_seconds: float | None = option(None, help="refuse a run whose training steps, timed over the first few "
                                                  "and extrapolated, would take longer than this; a run past it "
                                                  "stops after its epoch's checkpoint (default: no limit)")

    def budget(self) -> SizeBudget:
        """The size budget this run is checked against before its network is built."""
        _check_positive("max_seconds", self.max_seconds)
        return SizeBudget(max_params=self.max_params, max_memory_gb=self.max_memory_gb).validate()

    def clock(self, total_steps: int) -> "RunClock":
        """A `RunClock` for the `total_steps` training steps this invocation has still to run."""
        return RunClock(self.max_seconds, total_steps)


class RunClock:
    """`--max-seconds` for a training run. A step's time is the median of steps 2-4 (the first warms caches
    and allocators up); after the 4th step the rest of the run is extrapolated from it and refused above the
    limit, before any checkpoint is written, so a refused fresh run leaves nothing. The held-out scoring
    after each epoch is not in the estimate; at each epoch end, a run already past the limit stops after its
    checkpoint (`--resume` continues it)."""

    MEASURED = (1, 4)  # steps [1, 4): the 2nd to the 4th

    def __init__(self, max_seconds: float | None, total_steps: int):
        self.max_seconds, self.total_steps = max_seconds, int(total_steps)
        self.start = time.perf_counter()
        self._steps, self._last, self._times = 0, self.start, []

    def step_done(self) -> None:
        """Call after each training step; raises BudgetError when the extrapolated run is over the limit."""
        now = time.perf_counter()
        if self.max_seconds is None:
            return
        if self.MEASURED[0] <= self._steps < self.MEASURED[1]:
            self._times.append(now - self._last)
        self._steps += 1
        self._last = now
        if self._steps == self.MEASURED[1] and self._steps < self.total_steps:
            per_step = sorted(self._times)[len(self._times) // 2]
            estimate = now - self.start + per_step * (self.total_steps - self._steps)
            if estimate > self.max_seconds:
                raise BudgetError(f"the run's {self.total_steps} training steps would take about "
                                  f"{_duration(estimate)} ({per_step:.3g} s per step over steps 2-4); the limit "
                                  f"is {self.max_seconds:g} s (--max-seconds)")

    def epoch_done(self, epoch: int, last: bool) -> None:
        """Call after an epoch's checkpoint; raises BudgetError when the run is past the limit and not done."""
        elapsed = time.perf_counter() - self.start
        if self.max_seconds is not None and not last and elapsed > self.max_seconds:
            raise BudgetError(f"stopped after epoch {epoch + 1}: {elapsed:.0f} s elapsed, over the limit of "
                              f"{self.max_seconds:g} s (--max-seconds); --resume continues from its checkpoint")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def largest_path(space) -> tuple[int, ...]:
    """The arch with the most parameters: a layer-wise space's `largest_arch`; in a cell space, every edge a
    3x3 convolution (spaces without `largest_arch` are cell spaces, whose samplers must not see one)."""
    if hasattr(space, "largest_arch"):
        return tuple(space.largest_arch())
    ops = list(getattr(space, "ops", ()))
    if "nor_conv_3x3" in ops:
        return (ops.index("nor_conv_3x3"),) * len(space.num_choices)
    return tuple(n - 1 for n in space.num_choices)


def estimate_size(space, channels: int, cells: int, num_classes: int = 10, batch_size: int = 1,
                  input_shape: Sequence[int] = (3, 32, 32), arch: Sequence[int] | None = None,
                  supernet: bool = True, training: bool = True, exact: bool = True) -> dict[str, float]:
    """Parameters and memory of `space`'s supernet (or, with `supernet=False`, of the subnet `arch`, default
    the largest) at these sizes, from a build on the meta device: {"params", "activation_gb", "memory_gb",
    "exact"}. Memory: with `training`, weights, gradients and a momentum buffer, else the weights alone; plus
    the activations: with `exact`, every module's output of one meta forward pass (about 0.1-1 s: meta
    kernels are slow), else the quick upper bound "every module outputs the largest feature map" (the
    input's spatial size at the widest layer). The sizes are checked against `BOUNDS` first."""
    check_bound("channels", channels, "--channels")
    check_bound("cells", cells, "--cells")
    check_bound("num_classes", num_classes)
    check_bound("batch_size", batch_size, "batch size")
    for size in input_shape[1:]:
        check_bound("input_size", int(size), "input size")
    arch = tuple(arch) if arch is not None else largest_path(space)
    with torch.device("meta"):
        net = (space.build_supernet(channels=channels, cells=cells, num_classes=num_classes) if supernet else
               space.build_subnet(arch, channels=channels, cells=cells, num_classes=num_classes))
    params = sum(p.numel() for p in net.parameters())
    leaves = [m for m in net.modules() if not list(m.children())]
    if exact:
        elements = _output_elements(net, leaves, (batch_size, *map(int, input_shape)), arch if supernet else None)
    else:
        widest = max([int(input_shape[0])] + [getattr(m, attr) for m in leaves
                                              for attr in ("out_channels", "num_features", "out_features")
                                              if isinstance(getattr(m, attr, None), int)])
        elements = len(leaves) * batch_size * widest * math.prod(int(v) for v in input_shape[1:])
    activation_gb = elements * 4 / 1e9
    per_param = 12 if training else 4
    return {"params": float(params), "activation_gb": activation_gb,
            "memory_gb": activation_gb + params * per_param / 1e9, "exact": bool(exact)}


def _output_elements(net, leaves, shape: tuple[int, ...], arch) -> int:
    """Elements of every leaf module's output in one forward pass of `net` (on the meta device)."""
    kept = [0]

    def count(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            kept[0] += output.numel()

    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        x = torch.empty(shape, device="meta")
        with torch.no_grad():
            net(x, arch) if arch is not None else net(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise UsageError(f"the model does not take input_shape {list(shape)}: {brief(exc, 300)}") from None
    finally:
        for h in hooks:
            h.remove()
    return kept[0]


def check_size(space, channels: int, cells: int, num_classes: int = 10, batch_size: int = 1,
               input_shape: Sequence[int] = (3, 32, 32), budget: SizeBudget | None = None, supernet: bool = True,
               arch: Sequence[int] | None = None, training: bool = True) -> dict[str, float]:
    """`estimate_size`, refused with one line (BudgetError) naming the estimate and the limit when it is over
    `budget` (default `SizeBudget()`). Returns the estimate."""
    budget = (budget or SizeBudget()).validate()
    est = estimate_size(space, channels, cells, num_classes, batch_size, input_shape, arch, supernet, training,
                        exact=False)
    what = f"{'supernet' if supernet else 'subnet'} of '{space.name}' at C={channels}, N={cells}"
    if budget.max_params is not None and est["params"] > budget.max_params:
        raise BudgetError(f"the {what} has {est['params'] / 1e6:.1f}M parameters; the limit is "
                          f"{budget.max_params / 1e6:g}M (--max-params)")
    limit, source = budget.memory_limit_gb()
    if limit is not None and est["memory_gb"] > limit:  # the quick bound is over: the exact count decides
        est = estimate_size(space, channels, cells, num_classes, batch_size, input_shape, arch, supernet, training)
    if limit is not None and est["memory_gb"] > limit:
        raise BudgetError(f"the {what} needs about {est['memory_gb']:.1f} GB to {'train' if training else 'run'} "
                          f"at batch {batch_size} (input {list(input_shape)}); the limit is {limit:.3g} GB ({source})")
    return est
