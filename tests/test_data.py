"""Tests for supernet.data: loading the NB201 data sets, search splits, and tensor mini-batches.

Tests on real CIFAR-10 read the prepared data (fixture `data_dir`: $HWNAS_DATA, default ./data; skipped when absent);
everything else runs on tiny fixtures written into tmp_path, and nothing touches the network.
"""
import ast
import hashlib
import io
import os
import pathlib
import pickle
import tarfile
import urllib.request

import numpy as np
import pytest
import torch

from hwnas.core.datasets import DATASETS
from hwnas.supernet import data
from hwnas.supernet.data import RawDataset, Splits, TensorBatches, data_root, load_dataset, make_splits


@pytest.fixture(scope="module")
def cifar10(data_dir) -> RawDataset:
    return load_dataset("cifar10", data_dir)


def _write_pickle(path: pathlib.Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _write_cifar100(root: pathlib.Path, n_train: int = 20, n_test: int = 10) -> None:
    rng = np.random.default_rng(1)
    for split, n in (("train", n_train), ("test", n_test)):
        _write_pickle(root / "cifar-100-python" / split, {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"fine_labels": [i % 100 for i in range(n)],
            b"coarse_labels": [i % 20 for i in range(n)],
        })


def _fake_raw(n_train: int = 1000, n_test: int = 200, hw: int = 8) -> RawDataset:
    """Images whose label is their own index, so splits can be checked for overlap."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n_train, 3, hw, hw), dtype=torch.uint8, generator=g)
    tx = torch.randint(0, 256, (n_test, 3, hw, hw), dtype=torch.uint8, generator=g)
    return RawDataset("fake", x, torch.arange(n_train), tx, torch.arange(n_test), n_train,
                      (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


# ---------------------------------------------------------------------------------------------
# module hygiene and roots


def test_data_module_imports_no_evolve_benchmarks_or_hardware():
    tree = ast.parse(pathlib.Path(data.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    bad = ("hwnas.evolve", "hwnas.benchmarks", "hwnas.hardware", "torchvision")
    assert not [m for m in imported if m.startswith(bad)]


def test_data_root_prefers_argument_then_env_then_default(monkeypatch, tmp_path):
    monkeypatch.setenv("HWNAS_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("HWNAS_DATA")
    assert data_root() == pathlib.Path("./data")


# ---------------------------------------------------------------------------------------------
# loading


def test_cifar10_loads_50000_train_and_10000_test_images_of_all_ten_classes(cifar10):
    assert cifar10.train_x.shape == (50000, 3, 32, 32) and cifar10.train_x.dtype == torch.uint8
    assert cifar10.test_x.shape == (10000, 3, 32, 32) and cifar10.test_x.dtype == torch.uint8
    assert cifar10.train_y.dtype == torch.int64 and cifar10.train_y.shape == (50000,)
    assert set(cifar10.train_y.tolist()) == set(range(10)) == set(cifar10.test_y.tolist())
    assert cifar10.num_classes == 10
    assert cifar10.mean == pytest.approx((0.4914, 0.4822, 0.4465), abs=1e-3)
    assert cifar10.std == pytest.approx((0.2470, 0.2435, 0.2616), abs=1e-3)


def test_cifar100_loads_official_layout_with_fine_labels(tmp_path):
    _write_cifar100(tmp_path)
    raw = load_dataset("cifar100", root=tmp_path)
    assert raw.train_x.shape == (20, 3, 32, 32) and raw.test_x.shape == (10, 3, 32, 32)
    assert raw.train_y.tolist() == list(range(20)) and raw.num_classes == 100
    with open(tmp_path / "cifar-100-python" / "train", "rb") as f:
        flat = pickle.load(f, encoding="bytes")[b"data"]
    assert np.array_equal(raw.train_x[3].numpy().reshape(-1), flat[3])  # CHW-flat order kept


def test_imagenet16_120_keeps_classes_1_to_120_and_shifts_labels_to_0_based(tmp_path):
    folder = tmp_path / "ImageNet16"
    labels = [1, 120, 121, 1000, 7, 500]  # 1-based over 1000 classes; 121, 1000, 500 must go
    rng = np.random.default_rng(0)
    images = {}
    for name in [f"train_data_batch_{i}" for i in range(1, 11)] + ["val_data"]:
        images[name] = rng.integers(0, 256, (len(labels), 3 * 16 * 16), dtype=np.uint8)
        _write_pickle(folder / name, {"data": images[name], "labels": labels, "mean": np.zeros(768)})
    raw = load_dataset("ImageNet16-120", root=tmp_path)
    assert raw.num_classes == 120
    assert raw.train_x.shape == (30, 3, 16, 16) and raw.test_x.shape == (3, 3, 16, 16)
    assert raw.test_y.tolist() == [0, 119, 6]
    assert raw.train_y.tolist() == [0, 119, 6] * 10
    kept = images["val_data"][[0, 1, 4]].reshape(3, 3, 16, 16)
    assert np.array_equal(raw.test_x.numpy(), kept)


def test_unknown_dataset_is_a_one_line_value_error():
    with pytest.raises(ValueError) as e:
        load_dataset("foo")
    assert str(e.value) == "unknown dataset 'foo'; valid: cifar10, cifar100, ImageNet16-120"
    assert DATASETS.list() == ["cifar10", "cifar100", "ImageNet16-120"]


@pytest.mark.parametrize("name, folder", [("cifar10", "cifar-10-batches-py"),
                                          ("cifar100", "cifar-100-python"),
                                          ("ImageNet16-120", "ImageNet16")])
def test_missing_data_dir_names_the_path_and_how_to_get_it(tmp_path, name, folder):
    with pytest.raises(FileNotFoundError) as e:
        load_dataset(name, root=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / folder) in msg and "HWNAS_DATA" in msg
    if name in ("cifar10", "cifar100"):
        assert "hwnas data download" in msg and "--download" in msg and "hwnas data prepare" in msg
    else:
        assert "NAS-Bench-201" in msg


def test_imagenet16_120_is_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("tried the network"))
    with pytest.raises(FileNotFoundError, match="NAS-Bench-201"):
        load_dataset("ImageNet16-120", root=tmp_path, download=True)


def test_corrupt_pickle_is_a_value_error_naming_the_file(tmp_path):
    _write_cifar100(tmp_path)
    bad = tmp_path / "cifar-100-python" / "test"
    bad.write_bytes(b"\x80\x02this is not a pickle")
    with pytest.raises(ValueError, match=str(bad)):
        load_dataset("cifar100", root=tmp_path)


def test_pickle_with_foreign_objects_is_rejected_not_executed(tmp_path):
    _write_cifar100(tmp_path)
    evil = tmp_path / "cifar-100-python" / "train"
    evil.write_bytes(pickle.dumps({b"data": os.getcwd, b"fine_labels": []}, protocol=2))
    with pytest.raises(ValueError, match="unexpected object"):
        load_dataset("cifar100", root=tmp_path)


# ---------------------------------------------------------------------------------------------
# download (a loopback server stands in for the official site)


def _tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


@pytest.fixture
def cifar100_at(monkeypatch):
    """`cifar100_at(url, md5)`: the registered CIFAR-100 download points at `url` with checksum `md5`."""
    import dataclasses

    info = DATASETS.get("cifar100")

    def point(url: str, md5: str) -> None:
        DATASETS.register("cifar100", dataclasses.replace(info, url=url, md5=md5), replace=True)
    yield point
    DATASETS.register("cifar100", info, replace=True)


def test_download_with_wrong_md5_is_rejected_and_leaves_nothing_behind(tmp_path, file_server, cifar100_at):
    base, server = file_server({"/cifar-100-python.tar.gz": b"not the cifar tarball"})
    cifar100_at(f"{base}/cifar-100-python.tar.gz", hashlib.md5(b"the real one").hexdigest())
    with pytest.raises(ValueError, match="md5"):
        load_dataset("cifar100", root=tmp_path, download=True)
    assert [p for p, _ in server.requests] == ["/cifar-100-python.tar.gz"]
    assert list(tmp_path.iterdir()) == []


def test_download_checks_md5_then_extracts_atomically_and_loads(tmp_path, file_server, cifar100_at):
    src = tmp_path / "src"
    _write_cifar100(src)
    blob = _tarball({f"cifar-100-python/{s}": (src / "cifar-100-python" / s).read_bytes() for s in ("train", "test")})
    base, _ = file_server({"/c.tar.gz": blob})
    cifar100_at(f"{base}/c.tar.gz", hashlib.md5(blob).hexdigest())
    root = tmp_path / "root"
    raw = load_dataset("cifar100", root=root, download=True)
    assert raw.train_x.shape == (20, 3, 32, 32)
    assert sorted(p.name for p in root.iterdir()) == ["cifar-100-python"]  # no tarball or temp files left


def test_an_interrupted_download_resumes_where_it_stopped(tmp_path, file_server, cifar100_at):
    src = tmp_path / "src"
    _write_cifar100(src, n_train=200)
    blob = _tarball({f"cifar-100-python/{s}": (src / "cifar-100-python" / s).read_bytes() for s in ("train", "test")})
    base, server = file_server({"/c.tar.gz": blob}, cut_after=len(blob) // 3)
    cifar100_at(f"{base}/c.tar.gz", hashlib.md5(blob).hexdigest())
    root = tmp_path / "root"
    with pytest.raises(RuntimeError, match="run the same command again to resume"):
        load_dataset("cifar100", root=root, download=True)
    assert (root / "c.tar.gz.part").stat().st_size == len(blob) // 3
    raw = load_dataset("cifar100", root=root, download=True)  # asks only for the rest
    assert raw.train_x.shape == (200, 3, 32, 32)
    assert server.requests[-1] == ("/c.tar.gz", f"bytes={len(blob) // 3}-")
    assert sorted(p.name for p in root.iterdir()) == ["cifar-100-python"]


@pytest.mark.parametrize("evil", ["../evil", "/tmp/hwnas_evil_abs"])
def test_download_rejects_archive_members_outside_the_root(tmp_path, file_server, cifar100_at, evil):
    blob = _tarball({"cifar-100-python/train": b"x", evil: b"pwned"})
    base, _ = file_server({"/c.tar.gz": blob})
    cifar100_at(f"{base}/c.tar.gz", hashlib.md5(blob).hexdigest())
    root = tmp_path / "root"
    with pytest.raises(ValueError, match="unsafe member"):
        load_dataset("cifar100", root=root, download=True)
    assert list(root.iterdir()) == [] and not (tmp_path / "evil").exists()


# ---------------------------------------------------------------------------------------------
# splits


def test_search_protocol_splits_cifar10_train_set_into_two_25k_halves(cifar10):
    s = make_splits(cifar10, "search")
    assert len(s.train[0]) == len(s.train[1]) == 25000
    assert len(s.val[0]) == len(s.val[1]) == 25000
    assert len(s.test[1]) == 10000
    counts = torch.bincount(s.train[1], minlength=10)
    assert counts.min() > 2300 and counts.max() < 2700  # a random half keeps classes balanced


def test_search_halves_are_disjoint_cover_the_train_set_and_depend_only_on_seed():
    raw = _fake_raw()
    s = make_splits(raw, "search", seed=3)
    train, val = set(s.train[1].tolist()), set(s.val[1].tolist())
    assert len(train) == len(val) == 500 and not train & val and train | val == set(range(1000))
    assert torch.equal(s.train[0], raw.train_x[s.train[1]])  # images travel with their labels
    assert torch.equal(make_splits(raw, "search", seed=3).train[1], s.train[1])
    assert not torch.equal(make_splits(raw, "search", seed=4).train[1], s.train[1])
    assert torch.equal(s.test[1], raw.test_y)


def test_max_images_caps_train_val_and_test():
    raw = _fake_raw()
    full = make_splits(raw, "search", seed=0)
    s = make_splits(raw, "search", max_images=50, seed=0)
    assert [len(p[1]) for p in (s.train, s.val, s.test)] == [50, 50, 50]
    assert torch.equal(s.train[1], full.train[1][:50]) and torch.equal(s.val[1], full.val[1][:50])
    assert set(s.test[1].tolist()) <= set(range(200))
    assert len(make_splits(raw, "search", max_images=10**6).train[1]) == 500


def test_full_protocol_trains_on_everything_and_validates_on_the_test_set():
    raw = _fake_raw()
    s = make_splits(raw, "full")
    assert sorted(s.train[1].tolist()) == list(range(1000))
    assert s.val[1] is s.test[1] and torch.equal(s.test[1], raw.test_y)


def test_bad_protocol_and_max_images_are_value_errors():
    raw = _fake_raw()
    with pytest.raises(ValueError, match="valid: search, full"):
        make_splits(raw, "nb201")
    with pytest.raises(ValueError, match="max_images"):
        make_splits(raw, max_images=0)


# ---------------------------------------------------------------------------------------------
# mini-batches


def _batches(x, y, **kw) -> TensorBatches:
    args = dict(batch_size=16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), augment=True, shuffle=True,
                seed=7)
    args.update(kw)
    return TensorBatches(x, y, **args)


def _epoch(batches: TensorBatches, epoch: int):
    batches.set_epoch(epoch)
    xs, ys = zip(*batches)
    return torch.cat(xs), torch.cat(ys)


def test_same_epoch_gives_identical_batches_and_other_epochs_differ():
    raw = _fake_raw(100)
    b = _batches(raw.train_x, raw.train_y)
    x0, y0 = _epoch(b, 0)
    x1, y1 = _epoch(b, 1)
    x0_again, y0_again = _epoch(b, 0)
    assert torch.equal(x0, x0_again) and torch.equal(y0, y0_again)
    assert not torch.equal(y0, y1) and not torch.equal(x0, x1)
    x0_new, _ = _epoch(_batches(raw.train_x, raw.train_y), 0)  # a fresh object (a resumed run)
    assert torch.equal(x0, x0_new)


def test_epoch_stream_does_not_depend_on_batch_size():
    raw = _fake_raw(100)
    x8, y8 = _epoch(_batches(raw.train_x, raw.train_y, batch_size=8), 2)
    x32, y32 = _epoch(_batches(raw.train_x, raw.train_y, batch_size=32), 2)
    assert torch.equal(x8, x32) and torch.equal(y8, y32)


def test_len_counts_batches_with_and_without_drop_last():
    raw = _fake_raw(100)
    assert len(_batches(raw.train_x, raw.train_y, batch_size=16)) == 7
    assert len(_batches(raw.train_x, raw.train_y, batch_size=16, drop_last=True)) == 6
    assert sum(len(y) for _, y in _batches(raw.train_x, raw.train_y, batch_size=16, drop_last=True)) == 96
    assert [len(y) for _, y in _batches(raw.train_x, raw.train_y, batch_size=16)][-1] == 4


def test_without_shuffle_or_augment_batches_are_the_normalised_images_in_order():
    raw = _fake_raw(40)
    x, y = _epoch(_batches(raw.train_x, raw.train_y, augment=False, shuffle=False), 5)
    assert torch.equal(y, raw.train_y)
    assert torch.allclose(x, (raw.train_x.float() / 255 - 0.5) / 0.25)


def _crops_of(img: np.ndarray, pad: int) -> list[np.ndarray]:
    h, w = img.shape[1:]
    padded = np.pad(img, ((0, 0), (pad, pad), (pad, pad)))
    crops = [padded[:, dy:dy + h, dx:dx + w] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
    return crops + [c[:, :, ::-1] for c in crops]


def test_augmented_images_are_real_crops_of_the_zero_padded_image_flipped_or_not(cifar10):
    x, y = cifar10.train_x[:32], cifar10.train_y[:32]
    b = _batches(x, y, batch_size=32, mean=cifar10.mean, std=cifar10.std, shuffle=False)
    xb, yb = next(iter(b))
    assert torch.equal(yb, y)
    assert xb.shape == (32, 3, 32, 32) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    mean, std = torch.tensor(cifar10.mean).view(3, 1, 1), torch.tensor(cifar10.std).view(3, 1, 1)
    pixels = ((xb * std + mean) * 255).round().to(torch.uint8).numpy()
    moved = 0
    for i in range(32):
        src = x[i].numpy()
        matches = [k for k, c in enumerate(_crops_of(src, 4)) if np.array_equal(c, pixels[i])]
        assert matches, f"batch image {i} is not a crop of its padded source"
        moved += 40 not in matches  # index 40 = centre crop, not flipped
    assert moved > 16  # augmentation really changes most images


def test_normalised_batch_is_roughly_zero_mean_unit_std(cifar10):
    b = TensorBatches(cifar10.train_x[:2000], cifar10.train_y[:2000], 2000, cifar10.mean, cifar10.std,
                      augment=False, shuffle=True)
    xb, _ = next(iter(b))
    assert xb.mean(dim=(0, 2, 3)).abs().max() < 0.1
    assert (xb.std(dim=(0, 2, 3)) - 1).abs().max() < 0.1


def test_imagenet16_sized_images_use_2_pixel_padding():
    raw = _fake_raw(64, hw=16)
    b = _batches(raw.train_x, raw.train_y, batch_size=64, shuffle=False, mean=(0, 0, 0), std=(1 / 255,) * 3)
    xb, _ = next(iter(b))
    pixels = xb.round().to(torch.uint8).numpy()
    for i in range(64):
        assert any(np.array_equal(c, pixels[i]) for c in _crops_of(raw.train_x[i].numpy(), 2))


def test_bad_inputs_are_value_errors():
    raw = _fake_raw(10)
    with pytest.raises(ValueError, match="uint8"):
        _batches(raw.train_x.float(), raw.train_y)
    with pytest.raises(ValueError, match="batch_size"):
        _batches(raw.train_x, raw.train_y, batch_size=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batches_are_gpu_resident_and_equal_the_cpu_ones():
    raw = _fake_raw(100)
    cpu = _batches(raw.train_x, raw.train_y)
    gpu = _batches(raw.train_x, raw.train_y, device="cuda")
    assert gpu.x.is_cuda and gpu.y.is_cuda
    xc, yc = _epoch(cpu, 3)
    xg, yg = _epoch(gpu, 3)
    assert xg.is_cuda and yg.is_cuda
    assert torch.equal(yc, yg.cpu()) and torch.allclose(xc, xg.cpu(), atol=1e-5)


def test_splits_dataclass_holds_three_pairs():
    s = make_splits(_fake_raw(), "search", max_images=4)
    assert isinstance(s, Splits) and all(len(pair) == 2 for pair in (s.train, s.val, s.test))
