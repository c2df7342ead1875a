"""Time a model's forward pass on a target: `cpu`, `cuda`, `onnxruntime` or `onnxruntime-cuda`.

Protocol (the one HW-NAS-Bench and the LUT papers use, made explicit): `warmup` untimed runs, then
`repeats` timed runs of one forward pass on random input of `input_shape` (batch 1 by default). We report
the median (robust to the odd slow run a scheduler causes), the interquartile range, mean, standard
deviation and coefficient of variation (std / mean). A measurement whose CV exceeds `cv_threshold` is
repeated, up to `max_attempts` times; the attempt with the lowest CV is kept and, if even that one is
above the threshold, flagged `noisy` rather than silently trusted.

- `cpu`: PyTorch eager on the CPU, under `torch.no_grad()`, with a fixed thread count (`threads`,
  default: PyTorch's current setting) restored afterwards; wall clock by `time.perf_counter`.
- `cuda`: CUDA events around each run, synchronised, so the GPU's asynchronous queue is timed.
- `onnxruntime[-cuda]`: the model is exported to ONNX (opset 17, TorchScript exporter) and timed in an
  `InferenceSession` with the CPU (or CUDA) execution provider; `threads` sets its intra-op threads.

Imports nothing of ours but `hwnas.core`.
"""
from __future__ import annotations

import io
import os
import platform
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from hwnas.core.errors import UsageError
from hwnas.core.registry import Registry

from .counters import module_device



@dataclass
class Timing:
    """Statistics of one measurement (times in milliseconds)."""

    target: str
    median_ms: float
    iqr_ms: float
    mean_ms: float
    std_ms: float
    cv: float
    min_ms: float
    runs: int
    warmup: int
    batch_size: int
    input_shape: tuple[int, ...]
    threads: int | None
    noisy: bool
    attempts: int

    def to_dict(self) -> dict:
        """JSON-ready dict (input_shape as a list)."""
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_times(cls, times_ms: Sequence[float], **info) -> "Timing":
        """Statistics of per-run times; `info` fills the remaining fields."""
        t = np.asarray(times_ms, dtype=float)
        q1, med, q3 = np.percentile(t, [25, 50, 75])
        mean = float(t.mean())
        std = float(t.std(ddof=1)) if len(t) > 1 else 0.0
        return cls(median_ms=float(med), iqr_ms=float(q3 - q1), mean_ms=mean, std_ms=std,
                   cv=std / mean if mean > 0 else 0.0, min_ms=float(t.min()), runs=len(t), **info)


@dataclass(frozen=True)
class Target:
    """A place to time a model: `runner(model, input_shape, threads)` returns a closure doing one forward pass
    and returning its time in ms; `unavailable()` says why this machine cannot time on it (None when it can);
    `describe()` adds what identifies the target beyond the host (GPU name, library version)."""

    name: str
    runner: Callable[[nn.Module, tuple[int, ...], int | None], Callable[[], float]]
    unavailable: Callable[[], str | None]
    describe: Callable[[], dict]
    doc: str


TARGETS: Registry[Target] = Registry("target")


def check_target(target: str) -> None:
    """UsageError naming `target` and the valid ones if it is unknown or unavailable on this machine."""
    reason = TARGETS.get(target).unavailable()
    if reason:
        raise UsageError(f"target '{target}' {reason}")


def list_targets(available_only: bool = False) -> list[str]:
    """Registered measurement targets (those this machine can time on, with `available_only`)."""
    return [t for t in TARGETS.list() if not available_only or TARGETS.get(t).unavailable() is None]


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


MAX_THREADS = 1024


def check_threads(threads: int | None, what: str = "--threads") -> int | None:
    """`threads` (None: PyTorch's default) if it is an integer in 1..MAX_THREADS; UsageError otherwise."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or not 1 <= threads <= MAX_THREADS):
        raise UsageError(f"{what} must be an integer in 1..{MAX_THREADS}, got {threads!r}")
    return threads


def describe_target(target: str = "cpu", threads: int | None = None) -> dict:
    """What a measurement ran on: host, CPU, library versions, threads, GPU. Part of every cache key
    and LUT file, so numbers from different machines or settings are never mixed."""
    check_target(target)
    d = {"target": target, "host": platform.node(), "machine": platform.machine(), "cpu": _cpu_name(),
         "cpu_count": os.cpu_count(), "torch": torch.__version__,
         "threads": threads if threads is not None else torch.get_num_threads()}
    return {**d, **TARGETS.get(target).describe()}


def onnx_bytes(model: nn.Module, input_shape: Sequence[int], opset: int = 17, dynamic_batch: bool = False) -> bytes:
    """The model exported to ONNX (TorchScript exporter: fast and dependency-free), input 'x', output 'y';
    with `dynamic_batch` the first dimension of both is left free."""
    x = torch.zeros(tuple(input_shape), device=module_device(model))
    axes = {"x": {0: "batch"}, "y": {0: "batch"}} if dynamic_batch else None
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=opset, input_names=["x"],
                          output_names=["y"], dynamic_axes=axes)
    return buf.getvalue()


def _cpu_runner(model: nn.Module, input_shape: tuple[int, ...], threads: int | None) -> Callable[[], float]:
    model = model.cpu()
    x = torch.randn(input_shape)

    def run() -> float:
        t0 = time.perf_counter()
        model(x)
        return (time.perf_counter() - t0) * 1e3
    return run


def _cuda_runner(model: nn.Module, input_shape: tuple[int, ...], threads: int | None) -> Callable[[], float]:
    model = model.cuda()
    x = torch.randn(input_shape, device="cuda")
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def run() -> float:
        start.record()
        model(x)
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end)
    return run


def _onnxruntime_runner(provider: str):
    def make(model: nn.Module, input_shape: tuple[int, ...], threads: int | None) -> Callable[[], float]:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        session = ort.InferenceSession(onnx_bytes(model.cpu(), input_shape), opts, providers=[provider])
        feed = {session.get_inputs()[0].name:
                np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)}

        def run() -> float:
            t0 = time.perf_counter()
            session.run(None, feed)
            return (time.perf_counter() - t0) * 1e3
        return run
    return make


def _no_gpu() -> str | None:
    return None if torch.cuda.is_available() else "needs a CUDA GPU, and torch sees none here; use cpu or onnxruntime"


def _no_onnxruntime(provider: str | None = None) -> str | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return "needs onnxruntime: pip install -e \".[onnx]\""
    if provider and provider not in ort.get_available_providers():
        return f"needs onnxruntime-gpu ({provider} is missing)"
    return None


def _gpu_name() -> dict:
    return {"gpu": torch.cuda.get_device_name(0)}


def _onnxruntime_version() -> dict:
    import onnxruntime as ort

    return {"onnxruntime": ort.__version__}


for _target in (
    Target("cpu", _cpu_runner, lambda: None, dict, "PyTorch eager on the CPU, fixed thread count, wall clock"),
    Target("cuda", _cuda_runner, _no_gpu, _gpu_name, "PyTorch eager on the GPU, timed with CUDA events"),
    Target("onnxruntime", _onnxruntime_runner("CPUExecutionProvider"), _no_onnxruntime, _onnxruntime_version,
           "the exported ONNX graph in onnxruntime's CPU execution provider"),
    Target("onnxruntime-cuda", _onnxruntime_runner("CUDAExecutionProvider"),
           lambda: _no_gpu() or _no_onnxruntime("CUDAExecutionProvider"),
           lambda: {**_gpu_name(), **_onnxruntime_version()},
           "the exported ONNX graph in onnxruntime's CUDA execution provider"),
):
    TARGETS.register(_target.name, _target)


@torch.no_grad()
def measure(model: nn.Module, target: str = "cpu", input_shape: Sequence[int] = (1, 3, 32, 32),
            warmup: int = 10, repeats: int = 50, threads: int | None = None, cv_threshold: float = 0.1,
            max_attempts: int = 3) -> Timing:
    """Time `model` on `target` (see module docstring for the protocol); the model is put in eval mode."""
    check_target(target)
    if repeats < 1 or warmup < 0 or max_attempts < 1:
        raise UsageError(f"need repeats >= 1, warmup >= 0, max_attempts >= 1; got {repeats}, {warmup}, {max_attempts}")
    shape = tuple(int(s) for s in input_shape)
    was_training, device = model.training, module_device(model)
    model.eval()
    check_threads(threads, "threads")
    old_threads = torch.get_num_threads()
    if threads is not None and target == "cpu":
        torch.set_num_threads(threads)
    try:
        run = TARGETS.get(target).runner(model, shape, threads)
        best: Timing | None = None
        for attempt in range(1, max_attempts + 1):
            for _ in range(warmup):
                run()
            timing = Timing.from_times([run() for _ in range(repeats)], target=target, warmup=warmup,
                                       batch_size=shape[0], input_shape=shape,
                                       threads=threads if threads is not None else old_threads,
                                       noisy=False, attempts=attempt)
            if best is None or timing.cv < best.cv:
                best = timing
            if timing.cv <= cv_threshold:
                break
        best.attempts = attempt
        best.noisy = best.cv > cv_threshold
        return best
    finally:
        torch.set_num_threads(old_threads)
        model.to(device).train(was_training)
