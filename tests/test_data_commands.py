"""`hwnas data prepare` (from a local mirror) and `hwnas data download` (from a loopback server standing in for
the public sources): what they write is what the loaders read."""
from __future__ import annotations

import hashlib
import io
import pickle

import numpy as np
import pandas as pd
import pytest

from hwnas.cli import main
from hwnas.data import N_ARCHS, nb201_accuracy_table

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def _nats_export() -> pd.DataFrame:
    """A NATS-Bench accuracy export of the official layout (row i = arch index i)."""
    from hwnas.supernet.spaces import get_space

    space = get_space("nb201")
    strs = [space.to_str(space.from_index(i)) for i in range(N_ARCHS)]
    acc = np.linspace(10, 94, N_ARCHS)
    return pd.DataFrame({"CIFAR10TestAccuracy200Epochs": acc, "CIFAR100TestAccuracy200Epochs": acc - 20,
                         "ImageNetTestAccuracy200Epochs": acc - 50, "ArchitectureString": strs})


def _jpeg_pack(path, n_train: int = 10, n_test: int = 5) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    parts = {}
    for split, n in (("train", n_train), ("test", n_test)):
        blobs = []
        for _ in range(n):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, format="JPEG")
            blobs.append(buf.getvalue())
        parts[f"{split}_jpeg"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        parts[f"{split}_offsets"] = np.cumsum([0] + [len(b) for b in blobs])
        parts[f"{split}_labels"] = np.arange(n) % 10
    np.savez(path, **parts, class_names=np.array([f"c{i}" for i in range(10)]))


def test_prepare_converts_the_shared_mirror_layout(tmp_path, capsys):
    pytest.importorskip("PIL")
    from hwnas.benchmarks.tables.hwnasbench import HWNASBench
    from hwnas.benchmarks.tables.nb201_truth import NB201Truth
    from hwnas.supernet.data import load_dataset

    mirror = tmp_path / "mirror"
    (mirror / "nb201").mkdir(parents=True)
    (mirror / "hw").mkdir()
    (mirror / "cifar10").mkdir()
    nats = _nats_export()
    nats.to_csv(mirror / "nb201" / "nats_bench_tss_test_acc_200ep.csv", index=False)
    lat4 = pd.DataFrame({"arch_index": range(N_ARCHS), "arch_str": nats.ArchitectureString,
                         "fpga": 1.0, "eyeriss": 2.0, "raspi4": 3.0, "pixel3": 4.0})
    lat4.to_csv(mirror / "hw" / "hwnasbench_cifar10_latency_4devices.csv", index=False)
    pd.DataFrame({"arch_index": [1, 2], "edgegpu_latency": [5.0, 6.0], "edgetpu_latency": [-1.0, 7.0]}).to_csv(
        mirror / "hw" / "hwnasbench_nb201_cifar10_partial.csv", index=False)
    _jpeg_pack(mirror / "cifar10" / "cifar10_jpeg_q75_packed.npz")
    root = tmp_path / "data"
    assert main(["data", "prepare", "--from", str(mirror), "--dir", str(root), "--quiet"]) == 0
    assert "nb201: prepared" in capsys.readouterr().out
    truth = NB201Truth.load(root / "nb201_accuracy.csv")
    assert truth.accuracy([nats.ArchitectureString[7]], "cifar100").tolist() == [nats.CIFAR100TestAccuracy200Epochs[7]]
    hw = HWNASBench.load(root / "HW-NAS-Bench-v1_0.pickle")
    got = hw.lookup(list(nats.ArchitectureString[:3]), "edgetpu_latency")
    assert np.isnan(got[0]) and np.isnan(got[1]) and got[2] == 7.0  # missing, and HW-NAS-Bench's -1 for missing
    assert hw.lookup([nats.ArchitectureString[5]], "fpga_latency").tolist() == [1.0]
    raw = load_dataset("cifar10", root)
    assert raw.train_x.shape == (10, 3, 32, 32) and sorted(raw.test_y.tolist()) == [0, 1, 2, 3, 4]
    # what the root holds is kept
    assert main(["data", "prepare", "--from", str(mirror), "--dir", str(root), "--quiet"]) == 0
    assert "nb201: present" in capsys.readouterr().out


def test_prepare_copies_the_official_files_and_refuses_a_mirror_without_them(tmp_path, capsys):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    nb201_accuracy_table(_nats_export()).to_csv(mirror / "nb201_accuracy.csv", index=False)
    (mirror / "HW-NAS-Bench-v1_0.pickle").write_bytes(pickle.dumps({"nasbench201": {}}))
    root = tmp_path / "data"
    assert main(["data", "prepare", "--from", str(mirror), "--dir", str(root), "--only", "nb201", "hwnasbench",
                 "--quiet"]) == 0
    assert (root / "nb201_accuracy.csv").read_bytes() == (mirror / "nb201_accuracy.csv").read_bytes()
    assert main(["data", "prepare", "--from", str(mirror), "--dir", str(root), "--only", "cifar10", "--quiet"]) == 1
    assert "holds no form of CIFAR-10" in capsys.readouterr().err
    assert main(["data", "prepare", "--from", str(mirror), "--only", "svhn"]) == 2
    assert "unknown data item 'svhn'; valid: nb201, hwnasbench, cifar10, cifar100" in capsys.readouterr().err
    assert main(["data", "prepare", "--from", str(tmp_path / "nowhere")]) == 1


def test_download_fetches_the_nb201_table_checked_against_its_sha256(tmp_path, file_server, monkeypatch, capsys):
    import hwnas.data as data

    csv = _nats_export().to_csv(index=False).encode()
    base, server = file_server({"/nats.csv": csv})
    monkeypatch.setattr(data, "NATS_200_URL", f"{base}/nats.csv")
    monkeypatch.setattr(data, "NATS_200_SHA256", "0" * 64)
    root = tmp_path / "data"
    assert main(["data", "download", "--dir", str(root), "--only", "nb201", "--quiet"]) == 1
    assert "is corrupt: sha256" in capsys.readouterr().err and not (root / "nb201_accuracy.csv").exists()
    monkeypatch.setattr(data, "NATS_200_SHA256", hashlib.sha256(csv).hexdigest())
    assert main(["data", "download", "--dir", str(root), "--only", "nb201", "--quiet"]) == 0
    table = pd.read_csv(root / "nb201_accuracy.csv")
    assert len(table) == N_ARCHS and list(table.columns[:3]) == ["arch_index", "arch_str", "cifar10_test_200"]
    assert sorted(p.name for p in root.iterdir()) == ["nb201_accuracy.csv"]  # the download itself is gone
    requests = len(server.requests)
    assert main(["data", "download", "--dir", str(root), "--only", "nb201", "--quiet"]) == 0
    assert len(server.requests) == requests  # already there: no request
