"""Shared fixtures. Real data comes from $HWNAS_DATA (default: <repo>/data, where the README's install
command prepares it)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HWNAS_DATA", str(REPO / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["HWNAS_DATA"])
    if not (path / "cifar-10-batches-py").is_dir():
        pytest.skip(f"no prepared data in {path} (python ../shared/tools/prepare_data.py {path})")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The `shared/data` folder beside the repo (or $HWNAS_SHARED) holding the raw benchmark exports."""
    candidates = []
    if os.environ.get("HWNAS_SHARED"):
        shared = Path(os.environ["HWNAS_SHARED"])
        candidates += [shared / "data", shared]
    candidates.append(REPO.parent / "shared" / "data")
    for base in candidates:
        if (base / "nb201").is_dir():
            return base
    pytest.skip("shared/data not found beside the repo (set HWNAS_SHARED)")


@pytest.fixture(autouse=True)
def one_thread():
    """Two cores are shared with other work: single-threaded runs are steadier and barely slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_run(data_dir, tmp_path_factory) -> Path:
    """A tiny trained SPOS supernet (C=4, N=1, 256 images, 1 epoch; a few seconds), one per test module
    so that proxy caches never leak between modules. Its folder is named `spos`."""
    from supernet.trainer import TrainConfig, train

    out = tmp_path_factory.mktemp("run") / "spos"
    train(TrainConfig(mode="spos", channels=4, cells=1, max_images=256, epochs=1, batch_size=64, out=str(out),
                      data=str(data_dir), progress=False))
    return out


@pytest.fixture
def crash_after_checkpoint(monkeypatch):
    """`crash_after_checkpoint(module)`: that module's next `atomic_torch_save` writes its checkpoint and
    then raises KeyboardInterrupt (a run killed right after an epoch); later saves work normally again."""
    def arm(module):
        save = module.atomic_torch_save

        def save_then_crash(obj, path):
            save(obj, path)
            monkeypatch.setattr(module, "atomic_torch_save", save)
            raise KeyboardInterrupt
        monkeypatch.setattr(module, "atomic_torch_save", save_then_crash)
    return arm
