"""`hwnas retrain`: exact resume, the run folder's result, one-line errors, the command line.

Tiny runs (C=4, N=1, 256 images, batch 64) on real CIFAR-10 from $HWNAS_DATA (skipped when missing).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import hwnas.supernet.retrain as retrain_module
from hwnas.cli import main
from hwnas.cli.options import parse_space_options
from hwnas.supernet.checkpoint import load_checkpoint
from hwnas.supernet.retrain import RetrainConfig, load_retrained, retrain

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
TINY = dict(channels=4, cells=1, max_images=256, batch_size=64, progress=False)
TIMING = ("seconds", "images_per_s")


def _cfg(data_dir, out, **kw) -> RetrainConfig:
    return RetrainConfig(**{"arch": ARCH, **TINY, "data": str(data_dir), "out": str(out), **kw})


def _strip_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_dir):
    """One uninterrupted 2-epoch run, shared read-only."""
    torch.set_num_threads(1)
    cfg = _cfg(data_dir, tmp_path_factory.mktemp("retrain") / "run", epochs=2)
    return cfg, retrain(cfg)


def test_resumed_run_equals_uninterrupted_run(finished_run, data_dir, tmp_path, crash_after_checkpoint):
    cfg, _ = finished_run
    crash_after_checkpoint(retrain_module)
    with pytest.raises(KeyboardInterrupt):  # killed right after epoch 1's checkpoint
        retrain(_cfg(data_dir, tmp_path, epochs=2))
    assert load_checkpoint(tmp_path / "retrain.pt")["epoch"] == 0
    assert not (tmp_path / "result.json").exists()

    resumed = retrain(_cfg(data_dir, tmp_path, epochs=2), resume=True)
    a = load_checkpoint(Path(cfg.out) / "retrain.pt")
    b = load_checkpoint(tmp_path / "retrain.pt")
    assert a["epoch"] == b["epoch"] == 1
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert _strip_timing(a["metrics"]) == _strip_timing(b["metrics"])
    with open(tmp_path / "metrics.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2]
    assert resumed["test_acc"] == finished_run[1]["test_acc"]


def test_result_reports_accuracy_params_flops_and_latency(finished_run):
    cfg, result = finished_run
    saved = json.loads((Path(cfg.out) / "result.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert 0 <= result["test_acc"] <= 100 and result["test_images"] == 256 and result["train_images"] == 256
    assert result["params_m"] > 0 and result["flops_m"] > 0 and result["latency_ms_cpu"] > 0
    assert result["latency"]["batch_size"] == 1 and result["arch"] == ARCH and result["epochs"] == 2
    with open(Path(cfg.out) / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "train_loss", "train_acc", "test_acc", "lr", "seconds", "images_per_s"]
    assert float(rows[-1]["test_acc"]) == pytest.approx(result["test_acc"])
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.1, 0.05])  # cosine to 0 over 2 epochs

    _, model, config = load_retrained(cfg.out)
    assert config["arch"] == ARCH and not model.training
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(result["params_m"])


def test_bad_values_raise_one_line_naming_them(data_dir, tmp_path, finished_run):
    with pytest.raises(ValueError, match="bad --arch for space 'nb201'"):
        _cfg(data_dir, tmp_path, arch="|conv_9x9~0|").validate()
    with pytest.raises(ValueError, match="--epochs must be an integer >= 1, got 0"):
        _cfg(data_dir, tmp_path, epochs=0).validate()
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; valid: cifar10"):
        _cfg(data_dir, tmp_path, dataset="mnist").validate()
    with pytest.raises(ValueError, match="unknown space 'nope'; valid:"):
        _cfg(data_dir, tmp_path, space="nope").validate()
    cfg, _ = finished_run
    with pytest.raises(ValueError, match="already holds a retraining run; pass --resume"):
        retrain(_cfg(data_dir, cfg.out, epochs=2))
    with pytest.raises(ValueError, match="was trained with lr=0.1; this run asks lr=0.2"):
        retrain(_cfg(data_dir, cfg.out, epochs=2, lr=0.2), resume=True)
    with pytest.raises(ValueError, match="--space-option 'stages' must look like KEY=JSON"):
        parse_space_options(["stages"])
    assert parse_space_options(["stages=[[1,1,1]]", 'hidden="narrow"']) == {"stages": [[1, 1, 1]], "hidden": "narrow"}


def test_cli_retrains_end_to_end_and_rejects_bad_values(data_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["retrain", "--arch", ARCH, "--channels", "4", "--cells", "1", "--max-images", "256", "--batch-size",
            "64", "--epochs", "1", "--data", str(data_dir), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert json.loads((out / "result.json").read_text())["epochs"] == 1

    exc_code = main(argv)
    assert exc_code != 0 and "pass --resume" in capsys.readouterr().err
    exc_code = main([*argv[:-3], "--out", str(tmp_path / "other"), "--epochs", "0"])
    assert exc_code != 0 and "--epochs must be an integer >= 1, got 0" in capsys.readouterr().err
    exc_code = main(["retrain", "--arch", "nonsense", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert exc_code != 0 and "bad --arch" in err and len(err.strip().splitlines()) == 1
