"""Export: a subnet with inherited (BN-recalibrated) weights as ONNX / TorchScript / state_dict computes the
same function as in PyTorch, and the CLI refuses bad values in one line."""
from __future__ import annotations

import pytest
import torch

from hwnas.cli import main
from hwnas.supernet.export import check_export, export_subnet, load_state_dict_export, subnet_from_run

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "state_dict"])
def test_exported_subnet_matches_pytorch(run, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    model, desc = subnet_from_run(run, ARCH, calib_batches=2)
    assert desc["arch"] == ARCH and desc["net"] == {"channels": 4, "cells": 1, "num_classes": 10}
    path = export_subnet(model, desc, fmt, tmp_path / f"subnet.{fmt}")
    x = torch.randn(5, 3, 32, 32)  # another batch size than the export's example input
    assert check_export(model, path, fmt, x) <= 1e-4
    assert not list(tmp_path.glob(".*tmp*"))  # nothing half-written left behind


def test_recalibrated_bn_differs_from_the_supernets_and_state_dict_round_trips(run, tmp_path):
    recal, desc = subnet_from_run(run, ARCH, calib_batches=2)
    inherited, _ = subnet_from_run(run, ARCH, calib_batches=0)
    key = next(k for k in recal.state_dict() if k.endswith("running_mean"))
    assert not torch.equal(recal.state_dict()[key], inherited.state_dict()[key])
    back = load_state_dict_export(export_subnet(recal, desc, "state_dict", tmp_path / "s.pt"))
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), recal.state_dict().values()))


def test_export_cli_writes_and_checks(run, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    pytest.importorskip("onnxruntime")
    assert main(["export", "--supernet", str(run), "--arch", ARCH, "--format", "onnx", "--out", str(out),
                 "--calib-batches", "1"]) == 0
    text = capsys.readouterr().out
    assert out.exists() and "max |difference|" in text
    for bad, needle in ((["--format", "tflite"], "unknown export format 'tflite'"),
                        (["--arch", "|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown op 'bogus'")):
        args = ["export", "--supernet", str(run), "--arch", ARCH, "--out", str(tmp_path / "x"), *bad]
        exc_code = main(args)
        err = capsys.readouterr().err
        assert exc_code == 2 and needle in err and err.count("\n") == 1
        assert not (tmp_path / "x").exists()


def test_a_flipped_byte_in_a_state_dict_export_is_refused(run, tmp_path, flip_weight_byte):
    model, desc = subnet_from_run(run, ARCH, calib_batches=0)
    path = export_subnet(model, desc, "state_dict", tmp_path / "s.pt")
    flip_weight_byte(path, max(model.state_dict().values(), key=lambda t: t.numel()))
    with pytest.raises(ValueError, match=r"state_dict export '.*s\.pt' fails its checksum"):
        load_state_dict_export(path)
