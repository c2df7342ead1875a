"""Export a chosen subnet as a standalone model with the weights it inherits from a trained supernet.

Formats:
- `state_dict`: a torch file {"space", "space_options", "arch", "net", "state_dict"}; `load_state_dict_export` rebuilds the
  module from our code (the most portable between our versions: no pickled classes);
- `torchscript`: `torch.jit.trace` of the eval-mode subnet, loadable with `torch.jit.load` without hwnas
  (TorchScript is deprecated upstream but still what many C++/mobile runtimes load);
- `onnx`: opset 17, input `x` with a dynamic batch dimension, output `y` (logits); runs in onnxruntime.

Every file is written atomically. BatchNorm statistics are recalibrated on a few training batches (the
proxy evaluation's recipe): a weight-shared path's inherited statistics are wrong for any one subnet.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from .atomic import atomic_write_bytes
from .checkpoint import atomic_torch_save
from .spaces import space_from_config
from .spaces.base import Arch

FORMATS = ("state_dict", "torchscript", "onnx")


def subnet_from_run(run: str | Path, arch: Arch | str, calib_batches: int = 4, data: str | None = None
                    ) -> tuple[nn.Module, dict]:
    """(eval-mode subnet with inherited weights, description {"space", "arch", "net", "dataset", "bn"}) from
    a run folder; BN statistics recalibrated on `calib_batches` training batches (0: the supernet's own)."""
    from .evaluate import ProxyEvaluator, ProxySettings

    bn = "recalibrate" if calib_batches > 0 else "inherit"
    ev = ProxyEvaluator(run, ProxySettings(bn_mode=bn, calib_batches=max(calib_batches, 1)), data=data,
                        progress=False)
    arch = ev.space.parse(arch)
    net = {k: ev.supernet.config[k] for k in ("channels", "cells", "num_classes")}
    description = {"space": ev.space.name, "space_options": ev.space.options, "arch": ev.space.to_str(arch), "net": net,
                   "dataset": ev.config["dataset"], "bn": f"{bn} ({calib_batches} batches)" if calib_batches else bn}
    return ev.subnet(arch), description


def export_subnet(model: nn.Module, description: dict, fmt: str, out: str | Path,
                  input_shape: Sequence[int] = (1, 3, 32, 32)) -> Path:
    """Write `model` in format `fmt` (see module docstring) to `out`, atomically."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format '{fmt}'; valid: {', '.join(FORMATS)}")
    model = model.eval()
    out = Path(out)
    x = torch.zeros(tuple(input_shape))
    if fmt == "state_dict":
        return atomic_torch_save({**description, "state_dict": model.state_dict()}, out)
    if fmt == "torchscript":
        buf = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.jit.save(torch.jit.trace(model, (x,)), buf)
        return atomic_write_bytes(out, buf.getvalue())
    from hardware.measure import onnx_bytes

    return atomic_write_bytes(out, onnx_bytes(model, input_shape, dynamic_batch=True))


def load_state_dict_export(path: str | Path) -> nn.Module:
    """Rebuild the eval-mode subnet saved by `export_subnet(..., "state_dict", ...)`."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    missing = {"space", "arch", "net", "state_dict"} - set(blob)
    if missing:
        raise ValueError(f"'{path}' is not an hwnas state_dict export (missing {sorted(missing)})")
    space = space_from_config(blob)
    model = space.build_subnet(space.from_str(blob["arch"]), **blob["net"])
    model.load_state_dict(blob["state_dict"])
    return model.eval()


@torch.no_grad()
def check_export(model: nn.Module, path: str | Path, fmt: str, x: torch.Tensor) -> float:
    """Largest absolute difference between `model(x)` and the exported file's output on `x` (onnx runs in
    onnxruntime, torchscript in torch.jit, state_dict through `load_state_dict_export`)."""
    expected = model.eval()(x)
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
    elif fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            got = torch.jit.load(str(path))(x)
    else:
        got = load_state_dict_export(path)(x)
    return float((got - expected).abs().max())
