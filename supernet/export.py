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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn as nn

from hwnas.core.files import atomic_write_bytes
from hwnas.core.registry import Registry
from hwnas.core.errors import CorruptFileError

from .checkpoint import load_torch_file, save_checkpoint
from .spaces import space_from_config
from .spaces.base import Arch

@dataclass(frozen=True)
class ExportFormat:
    """A file format a subnet is exported to: `write(model, description, out, input_shape) -> Path` writes it
    atomically; `run(path, x) -> logits` loads the file back and runs it (what `check_export` compares)."""

    name: str
    write: Callable[[nn.Module, dict, Path, tuple[int, ...]], Path]
    run: Callable[[Path, torch.Tensor], torch.Tensor]
    doc: str


EXPORTS: Registry[ExportFormat] = Registry("export format")


def list_formats() -> list[str]:
    """Names of the export formats."""
    return EXPORTS.list()


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
    return EXPORTS.get(fmt).write(model.eval(), description, Path(out), tuple(input_shape))


def _write_state_dict(model: nn.Module, description: dict, out: Path, input_shape: tuple[int, ...]) -> Path:
    return save_checkpoint({**description, "state_dict": model.state_dict()}, out)


def _write_torchscript(model: nn.Module, description: dict, out: Path, input_shape: tuple[int, ...]) -> Path:
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(model, (torch.zeros(input_shape),)), buf)
    return atomic_write_bytes(out, buf.getvalue())


def _write_onnx(model: nn.Module, description: dict, out: Path, input_shape: tuple[int, ...]) -> Path:
    from hwnas.hardware.measure import onnx_bytes

    return atomic_write_bytes(out, onnx_bytes(model, input_shape, dynamic_batch=True))


def _run_onnx(path: Path, x: torch.Tensor) -> torch.Tensor:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"x": x.numpy()})[0])


def _run_torchscript(path: Path, x: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path))(x)


def load_state_dict_export(path: str | Path) -> nn.Module:
    """Rebuild the eval-mode subnet saved by `export_subnet(..., "state_dict", ...)`."""
    blob = load_torch_file(path, "state_dict export")
    missing = {"space", "arch", "net", "state_dict"} - set(blob)
    if missing:
        raise CorruptFileError(f"'{path}' is not an hwnas state_dict export (missing {sorted(missing)})")
    space = space_from_config(blob)
    model = space.build_subnet(space.from_str(blob["arch"]), **blob["net"])
    model.load_state_dict(blob["state_dict"])
    return model.eval()


@torch.no_grad()
def check_export(model: nn.Module, path: str | Path, fmt: str, x: torch.Tensor) -> float:
    """Largest absolute difference between `model(x)` and the exported file's output on `x` (onnx runs in
    onnxruntime, torchscript in torch.jit, state_dict through `load_state_dict_export`)."""
    expected = model.eval()(x)
    got = EXPORTS.get(fmt).run(Path(path), x)
    return float((got - expected).abs().max())


for _fmt in (
    ExportFormat("state_dict", _write_state_dict, lambda path, x: load_state_dict_export(path)(x),
                 "a torch file {space, space_options, arch, net, state_dict}, rebuilt from our code"),
    ExportFormat("torchscript", _write_torchscript, _run_torchscript, "torch.jit.trace of the eval-mode subnet"),
    ExportFormat("onnx", _write_onnx, _run_onnx, "opset 17, input x with a dynamic batch, output y"),
):
    EXPORTS.register(_fmt.name, _fmt)
