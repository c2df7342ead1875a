"""Data-parallel training under torchrun (gloo, 2 CPU processes, tiny configs): what a user who moves a run
to several processes relies on. Each torchrun job takes a few seconds (two interpreters importing torch)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hwnas.supernet.checkpoint import load_checkpoint
from hwnas.supernet.spaces import get_space
from hwnas.supernet.trainer import TrainConfig, train

TINY = ["--channels", "4", "--cells", "1", "--batch-size", "64", "--quiet"]

# Each rank records every file it opens for writing, renames or creates under the run folder (Python's audit
# hooks see each one) in writes_rank<R>.txt, so a test can tell that rank 0 writes and rank 1 does not.
_AUDIT = '''
import os, sys
if "RANK" in os.environ:
    _watch = os.environ["HWNAS_TEST_WATCH"]
    _log = os.path.join(os.environ["HWNAS_TEST_AUDIT"], "writes_rank" + os.environ["RANK"] + ".txt")
    def _hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path, mode, flags = (list(args) + [None, 0])[:3]
            writing = (mode and any(c in str(mode) for c in "wax+")) or (flags or 0) & (os.O_WRONLY | os.O_RDWR)
        elif event in ("os.rename", "os.replace", "os.mkdir", "os.remove", "shutil.rmtree"):
            path, writing = args[0], True
        else:
            return
        if writing and os.fsdecode(os.fspath(path)).startswith(_watch):
            with open(_log, "a") as f:
                f.write(f"{event} {os.fsdecode(os.fspath(path))}\\n")
    sys.addaudithook(_hook)
'''


def torchrun(args: list[str], tmp_path: Path, data_dir: Path, watch: Path, wait: bool = True):
    """`torchrun --nproc-per-node 2 -m hwnas train ARGS` on gloo, one thread per process."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_AUDIT)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(site), str(repo)]),
           "HWNAS_TEST_WATCH": str(watch), "HWNAS_TEST_AUDIT": str(tmp_path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
           "-m", "hwnas", "train", *args, "--data", str(data_dir)]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return out


def assert_only_rank0_wrote(tmp_path: Path) -> None:
    """Rank 0's audit saw its checkpoint written (the hook works); rank 1's saw no write at all."""
    rank0 = tmp_path / "writes_rank0.txt"
    assert rank0.is_file() and "supernet.pt" in rank0.read_text()
    assert not (tmp_path / "writes_rank1.txt").exists()


def parameters(run: Path) -> dict[str, torch.Tensor]:
    """The trained supernet's parameters (not BatchNorm's running statistics, which follow each process's
    shard) by name."""
    ckpt = load_checkpoint(run / "supernet.pt")
    cfg = ckpt["config"]
    net = get_space(cfg["space"]).build_supernet(channels=cfg["channels"], cells=cfg["cells"], num_classes=10)
    names = {name for name, _ in net.named_parameters()}
    return {k: v for k, v in ckpt["model"].items() if k in names}


def test_two_processes_train_what_one_process_trains_with_two_micro_batches(tmp_path, data_dir):
    """The property the design relies on: every rank trains the same path on its half of the global batch,
    so 2 processes compute the update of 1 process whose batch is split in 2 micro-batches (BatchNorm sees
    each half in both). Parameters agree to float rounding (the all-reduce sums in another order)."""
    two = tmp_path / "two"
    torchrun([*TINY, "--max-images", "512", "--epochs", "2", "--out", str(two)], tmp_path, data_dir, two)
    one = tmp_path / "one"
    train(TrainConfig(channels=4, cells=1, batch_size=64, max_images=512, epochs=2, micro_batches=2, out=str(one),
                      data=str(data_dir), progress=False))
    a, b = parameters(two), parameters(one)
    assert a.keys() == b.keys() and len(a) > 10
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-6, worst
    # ... and really trained: the weights moved from their initial values by far more than that
    torch.manual_seed(0)
    init = get_space("nb201").build_supernet(channels=4, cells=1, num_classes=10).state_dict()
    assert max(float((a[k] - init[k]).abs().max()) for k in a) > 1e-3
    config = json.loads((two / "config.json").read_text())
    assert config["world_size"] == 2 and json.loads((one / "config.json").read_text())["world_size"] == 1
    assert_only_rank0_wrote(tmp_path)
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())


def test_a_killed_and_resumed_two_process_run_equals_an_uninterrupted_one(tmp_path, data_dir):
    args = [*TINY, "--max-images", "4096", "--epochs", "4"]
    whole = tmp_path / "whole"
    torchrun([*args, "--out", str(whole)], tmp_path, data_dir, whole)
    cut = tmp_path / "cut"
    proc = torchrun([*args, "--out", str(cut)], tmp_path, data_dir, cut, wait=False)
    deadline = time.monotonic() + 240
    while not (cut / "supernet.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    # torchrun and both workers, mid-run (torchrun starts its workers in sessions of their own)
    found = subprocess.run(["pgrep", "-f", str(cut)], capture_output=True, text=True).stdout.split()
    for pid in [proc.pid, *map(int, found)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.communicate()
    assert (cut / "supernet.pt").exists() and not (cut / "result.json").exists(), "not killed mid-run"
    assert load_checkpoint(cut / "supernet.pt")["epoch"] < 3
    torchrun([*args, "--out", str(cut), "--resume"], tmp_path, data_dir, cut)
    a, b = load_checkpoint(whole / "supernet.pt"), load_checkpoint(cut / "supernet.pt")
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert torch.equal(a["mode"]["generator"], b["mode"]["generator"])
    assert len(a["rng_ranks"]) == 2
    assert_only_rank0_wrote(tmp_path)


@pytest.mark.parametrize("mode", ["darts", "gdas", "enas"])
def test_modes_with_architecture_steps_keep_every_process_in_sync(mode, tmp_path, data_dir):
    """Architecture parameters (DARTS, GDAS) and the ENAS controller's reward are all-reduced by hand; the
    trainer checks at each checkpoint that both processes hold identical weights and architecture
    parameters, and fails the run otherwise."""
    out = tmp_path / mode
    log = torchrun([*TINY, "--mode", mode, "--max-images", "512", "--epochs", "2", "--out", str(out)], tmp_path,
                   data_dir, out)
    assert "networks differ" not in log
    assert json.loads((out / "result.json").read_text())["mode"] == mode


def test_a_global_batch_that_does_not_split_evenly_is_one_line(tmp_path, data_dir):
    proc = torchrun([*TINY[:-3], "--batch-size", "63", "--max-images", "512", "--out", str(tmp_path / "x"), "--quiet"],
                    tmp_path, data_dir, tmp_path / "x", wait=False)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "--batch-size 63 must be a multiple of WORLD_SIZE x --micro-batches = 2" in out
    assert not (tmp_path / "x").exists()


def test_a_distributed_run_over_its_time_budget_fails_and_leaves_nothing(tmp_path, data_dir):
    out = tmp_path / "slow"
    proc = torchrun([*TINY, "--max-images", "512", "--epochs", "1000", "--max-seconds", "5", "--out", str(out)],
                    tmp_path, data_dir, out, wait=False)
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert "the limit is 5 s (--max-seconds)" in log
    assert not out.exists()


def test_micro_batches_leave_a_one_slice_run_unchanged_and_are_checked(tmp_path, data_dir):
    """--micro-batches 1 is today's step exactly (bit for bit), and a bad value is refused."""
    runs = []
    for name, extra in (("plain", {}), ("one", {"micro_batches": 1})):
        out = tmp_path / name
        train(TrainConfig(channels=4, cells=1, batch_size=64, max_images=256, epochs=1, out=str(out),
                          data=str(data_dir), progress=False, **extra))
        runs.append(load_checkpoint(out / "supernet.pt")["model"])
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    with pytest.raises(ValueError, match="--micro-batches must be an integer >= 1, got 0"):
        TrainConfig(micro_batches=0).validate()
    with pytest.raises(ValueError, match="--micro-batches is not for --sampler sandwich"):
        TrainConfig(space="mobilenet", sampler="sandwich", micro_batches=2).validate()
