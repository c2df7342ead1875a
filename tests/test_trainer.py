"""The trainer: exact resume, one-line errors, the run folder's files, and load_supernet.

Tiny runs (C=8, N=1, 512 images, batch 64) on real CIFAR-10 from $HWNAS_DATA (skipped when missing).
"""
from __future__ import annotations

import csv
import json
import math
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

import hwnas.supernet.trainer as trainer
from hwnas.supernet.checkpoint import _safe_globals, load_checkpoint
from hwnas.supernet.trainer import TrainConfig, build_run, held_out_accuracy, load_supernet, train

TINY = dict(channels=8, cells=1, max_images=512, batch_size=64, progress=False)
TIMING = ("seconds", "images_per_s")



def _cfg(data_dir, out, **kw) -> TrainConfig:
    return TrainConfig(**{**TINY, "data": str(data_dir), "out": str(out), **kw})


@pytest.fixture(scope="module")
def spos_run(tmp_path_factory, data_dir):
    """One finished 2-epoch SPOS run, shared read-only (tests that write copy it first)."""
    torch.set_num_threads(1)
    cfg = _cfg(data_dir, tmp_path_factory.mktemp("spos") / "run", mode="spos", epochs=2)
    return cfg, train(cfg)


def _assert_same(a, b, path: str = "") -> None:
    """Nested dicts/lists/tuples equal, every tensor torch.equal."""
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys differ"
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), f"{path} differs"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _assert_runs_equal(run_a, run_b) -> None:
    a = load_checkpoint(run_a / "supernet.pt")
    b = load_checkpoint(run_b / "supernet.pt")
    assert a["epoch"] == b["epoch"]
    for key in ("model", "optimizer", "scheduler", "mode"):
        _assert_same(a[key], b[key], key)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING} for r in rows]  # noqa: E731
    assert strip(a["metrics"]) == strip(b["metrics"])


# ---------------------------------------------------------------------------------------------
# exact resume


@pytest.mark.parametrize("mode", ["spos", "darts", "gdas", "fbnet"])
def test_resumed_run_equals_uninterrupted_run(mode, data_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    extra = {}
    if mode == "fbnet":  # a per-choice latency table where each op's cost grows with its index
        from hwnas.hardware.choice_costs import ChoiceCosts

        table = ChoiceCosts([[float(op) for op in range(5)] for _ in range(6)], intercept=1.0)
        extra = {"latency_table": str(table.save(tmp_path / "costs.json")), "size_limit_mb": 0.05}
    train(_cfg(data_dir, a, mode=mode, epochs=2, **extra))
    train(_cfg(data_dir, b, mode=mode, epochs=1, **extra))
    result = train(_cfg(data_dir, b, mode=mode, epochs=2, **extra), resume=True)
    _assert_runs_equal(a, b)
    assert result["epochs"] == 2 and json.loads((b / "config.json").read_text())["epochs"] == 2
    if mode != "spos":
        assert not torch.equal(load_checkpoint(a / "supernet.pt")["mode"]["alpha"],
                               build_run(_cfg(data_dir, a, mode=mode, epochs=2, **extra))[4].alpha.detach())


@pytest.mark.parametrize("mode", ["spos", "gdas", "canas"])
def test_run_interrupted_after_a_checkpoint_resumes_exactly(mode, data_dir, tmp_path, crash_after_checkpoint):
    a, b = tmp_path / "a", tmp_path / "b"
    train(_cfg(data_dir, a, mode=mode, epochs=2))
    crash_after_checkpoint(trainer)
    with pytest.raises(KeyboardInterrupt):  # killed after the first checkpoint
        train(_cfg(data_dir, b, mode=mode, epochs=2))
    assert load_checkpoint(b / "supernet.pt")["epoch"] == 0 and not (b / "result.json").exists()
    train(_cfg(data_dir, b, mode=mode, epochs=2), resume=True)
    _assert_runs_equal(a, b)
    if mode == "canas":  # the controller and every path it sampled resume too; its length is fixed
        assert (a / "sampled.csv").read_text() == (b / "sampled.csv").read_text()
        with pytest.raises(ValueError, match="a canas run .* keeps its --epochs on resume"):
            train(_cfg(data_dir, b, mode=mode, epochs=3), resume=True)


# ---------------------------------------------------------------------------------------------
# one-line errors


def test_resume_with_another_config_names_the_key(spos_run, tmp_path):
    cfg, _ = spos_run
    run = tmp_path / "run"
    shutil.copytree(cfg.out, run)
    for key, value in (("channels", 16), ("max_images", 256), ("mode", "gdas"), ("seed", 1)):
        with pytest.raises(ValueError, match=rf"trained with {key}=.*this run asks {key}=") as info:
            train(TrainConfig(**{**asdict(cfg), "out": str(run), "epochs": 3, key: value}), resume=True)
        assert "\n" not in str(info.value)
    assert load_checkpoint(run / "supernet.pt")["epoch"] == 1  # nothing was overwritten


def test_training_into_a_folder_that_holds_a_run_needs_resume(spos_run, tmp_path):
    cfg, _ = spos_run
    run = tmp_path / "run"
    shutil.copytree(cfg.out, run)
    before = (run / "supernet.pt").read_bytes()
    with pytest.raises(ValueError, match="already holds a run; pass --resume"):
        train(TrainConfig(**{**asdict(cfg), "out": str(run)}))
    assert (run / "supernet.pt").read_bytes() == before


@pytest.mark.parametrize("key, value, valid", [
    ("mode", "nasnet", ["spos", "darts", "gdas"]),
    ("space", "nb301", ["nb201"]),
    ("dataset", "mnist", ["cifar10", "cifar100", "ImageNet16-120"]),
])
def test_unknown_mode_space_or_dataset_lists_the_valid_ones(key, value, valid, tmp_path):
    with pytest.raises(ValueError) as info:
        train(TrainConfig(**{**TINY, "out": str(tmp_path / "run"), key: value}))
    msg = str(info.value)
    assert f"unknown {key} '{value}'" in msg and "valid:" in msg and "\n" not in msg
    assert all(v in msg for v in valid)
    assert not (tmp_path / "run").exists()


def test_corrupt_checkpoint_is_a_value_error(spos_run, tmp_path):
    cfg, _ = spos_run
    run = tmp_path / "run"
    shutil.copytree(cfg.out, run)
    ckpt = run / "supernet.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # truncated, as by a full disk
    with pytest.raises(ValueError, match="is corrupt or not a hwnas checkpoint"):
        load_checkpoint(ckpt)
    with pytest.raises(ValueError, match="is corrupt"):
        train(TrainConfig(**{**asdict(cfg), "out": str(run), "epochs": 3}), resume=True)
    with pytest.raises(ValueError, match="is corrupt"):
        load_supernet(run)
    ckpt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="is corrupt"):
        load_checkpoint(ckpt)
    torch.save({"weights": torch.zeros(1)}, ckpt)
    with pytest.raises(ValueError, match="is not a hwnas supernet checkpoint"):
        load_checkpoint(ckpt)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nowhere.pt")


def test_missing_data_dir_is_a_file_not_found_error(tmp_path):
    missing = tmp_path / "no-data"
    with pytest.raises(FileNotFoundError, match="cifar10 data not found") as info:
        train(TrainConfig(**{**TINY, "data": str(missing), "out": str(tmp_path / "run")}))
    assert str(missing) in str(info.value)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# the run folder


def test_run_folder_holds_metrics_config_and_result(spos_run):
    cfg, result = spos_run
    run = Path(cfg.out)
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for r in rows:
        assert {"epoch", "train_loss", "train_acc", "val_acc", "images_per_s"} <= set(r)
        assert math.isfinite(float(r["train_loss"])) and float(r["images_per_s"]) > 0
        assert 0 <= float(r["train_acc"]) <= 100 and 0 <= float(r["val_acc"]) <= 100
    assert json.loads((run / "config.json").read_text()) == json.loads(json.dumps(asdict(cfg)))
    saved = json.loads((run / "result.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["val_acc"] == pytest.approx(float(rows[-1]["val_acc"]))
    assert saved["mode"] == "spos" and saved["epochs"] == 2
    leftovers = [p.name for p in run.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert not leftovers
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "metrics.csv", "result.json",
                                                     "supernet.pt", "train.log"]
    log = (run / "train.log").read_text()
    assert "epoch 1/2: loss" in log and "epoch 2/2: loss" in log


def test_load_supernet_round_trip_gives_the_same_held_out_accuracy(spos_run):
    cfg, result = spos_run
    space, model, config = load_supernet(cfg.out)
    assert not model.training and config == load_checkpoint(Path(cfg.out) / "supernet.pt")["config"]
    # The trainer logged the mean held-out accuracy of SPOS' fixed arch panel from its in-memory model.
    _, _, _, _, mode, batches = build_run(TrainConfig.from_dict(config))
    accs = [held_out_accuracy(model, batches["held_out"], arch) for arch in mode.eval_archs()]
    assert sum(accs) / len(accs) == pytest.approx(result["val_acc"], abs=1e-9)
    # Held-out evaluation leaves the loaded weights and BN statistics untouched.
    again = load_supernet(cfg.out)[1]
    for (k, v), (k2, v2) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    arch = space.from_index(1)
    held_out = batches["held_out"]
    assert held_out_accuracy(model, held_out, arch) == held_out_accuracy(again, held_out, arch)


def test_channels_last_training_computes_what_the_default_layout_does(data_dir, tmp_path):
    """`--channels-last` (the default) changes the memory layout only: one SPOS step from the same weights
    gives the same loss, and the same update of every weight to float rounding (BatchNorm's backward
    amplifies rounding: the updates agree to 1% of their norm, where another path or batch would differ
    entirely)."""
    after, before = {}, {}
    for cl in (False, True):
        cfg = _cfg(data_dir, tmp_path / str(cl), mode="spos", channels_last=cl)
        _, model, _, _, mode, batches = build_run(cfg)
        assert model.stem[0].weight.is_contiguous(memory_format=torch.channels_last) == cl
        x, y = next(iter(batches["train"]))
        before[cl] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        layout = torch.channels_last if cl else torch.contiguous_format
        model.train()
        loss, _ = mode.train_step(x.contiguous(memory_format=layout), y)
        after[cl] = (loss, {k: v.detach().clone() for k, v in model.state_dict().items()})
    assert after[True][0] == pytest.approx(after[False][0], rel=1e-5)
    for k, v in after[False][1].items():
        assert torch.equal(before[True][k], before[False][k])
        if not v.is_floating_point():
            continue
        update = v - before[False][k]
        gap = after[True][1][k] - v
        assert gap.norm() <= 0.01 * update.norm() + 1e-7, k


class _Payload:
    """What a crafted checkpoint would run on load: it creates a file."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_a_crafted_pickle_in_a_checkpoint_is_refused_without_running(spos_run, tmp_path, capsys):
    from hwnas.cli import main as cli_main

    cfg, _ = spos_run
    run = tmp_path / "run"
    shutil.copytree(cfg.out, run)
    ckpt, marker = run / "supernet.pt", tmp_path / "pwned"
    state = load_checkpoint(ckpt)
    torch.save({**state, "extra": _Payload(marker)}, ckpt)
    with pytest.raises(ValueError, match=r"names '[\w.]+'; refused without running it"):
        load_checkpoint(ckpt)
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    for argv in (["search", "--supernet", str(run), "--target", "fpga", "--pop-size", "4", "--generations", "1",
                  "--out", str(tmp_path / "fronts")],
                 ["export", "--supernet", str(run), "--arch", cell, "--format", "state_dict",
                  "--out", str(tmp_path / "net.pt")],
                 ["train", "--resume", "--out", str(run), "--epochs", "3"]):
        assert cli_main(argv) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "refused without running it" in err[0], err
    assert not marker.exists()


def test_a_flipped_byte_in_a_checkpoint_is_refused(spos_run, tmp_path, capsys, flip_weight_byte):
    """torch's zip reader does not check the weights' bytes; the checkpoint's checksum does."""
    from hwnas.cli import main as cli_main

    cfg, _ = spos_run
    run = tmp_path / "run"
    shutil.copytree(cfg.out, run)
    ckpt = run / "supernet.pt"
    state = load_checkpoint(ckpt)
    weight = max(state["model"].values(), key=lambda t: t.numel())
    flip_weight_byte(ckpt, weight)
    with torch.serialization.safe_globals(_safe_globals()):
        assert torch.load(ckpt, weights_only=True)  # torch itself loads the changed file without a word
    with pytest.raises(ValueError, match=r"fails its checksum"):
        load_checkpoint(ckpt)
    assert cli_main(["search", "--supernet", str(run), "--target", "fpga", "--pop-size", "4", "--generations", "1",
                     "--out", str(tmp_path / "fronts")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fails its checksum" in err[0] and str(ckpt) in err[0], err
    # a checkpoint from before checksums (no digest stored) still loads
    torch.save(state, ckpt)
    assert load_checkpoint(ckpt)["epoch"] == state["epoch"]


def test_a_batch_larger_than_the_split_is_refused_before_training(data_dir, tmp_path):
    cfg = TrainConfig(mode="spos", channels=4, cells=1, max_images=100, batch_size=128, data=str(data_dir),
                      out=str(tmp_path / "run"), progress=False)
    with pytest.raises(ValueError, match=r"--batch-size 128 is larger than the smallest split \(100 images\)"):
        train(cfg)
    assert not (tmp_path / "run" / "result.json").exists()
