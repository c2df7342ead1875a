"""Tabular benchmarks: NB201 ground truth, HW-NAS-Bench, a user's device table.

Data-dependent tests read the prepared data (fixture `data_dir`: $HWNAS_DATA, default ./data; skipped when
absent); the official HW-NAS-Bench example values
come from $HWNAS_SHARED or ../shared/data beside the repository (skipped when absent).
"""
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.benchmarks.tables.device_table import DeviceTable
from hwnas.benchmarks.tables.hwnasbench import HW_DEVICES, HW_METRICS, HWNASBench
from hwnas.benchmarks.tables.nb201_truth import TRUTH_DATASETS, NB201Truth

ARCH0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
ARCH1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
ARCH_ABSENT = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"  # not in the fixture tables


@pytest.fixture(scope="module")
def truth(data_dir) -> NB201Truth:
    return NB201Truth.load(data_dir / "nb201_accuracy.csv")


@pytest.fixture(scope="module")
def hwnb(data_dir) -> HWNASBench:
    return HWNASBench.load(data_dir / "HW-NAS-Bench-v1_0.pickle")


# ---------------------------------------------------------------- NB201 truth
@pytest.mark.parametrize(
    "dataset, best, index",
    [("cifar10", 94.3733, 6111), ("cifar100", 73.5133, 9930), ("ImageNet16-120", 47.3111, 857)],
)
def test_nb201_optimum_matches_published_value(truth, dataset, best, index):
    col = truth.frame[dataset]
    assert len(truth) == 15625
    assert col.idxmax() == index
    assert col.max() == pytest.approx(best, abs=1e-4)
    arch = truth.frame.loc[index, "arch_str"]
    assert truth.accuracy([arch], dataset)[0] == pytest.approx(best, abs=1e-4)
    assert truth.error([arch], dataset)[0] == pytest.approx(100 - best, abs=1e-4)


def test_nb201_lookup_by_arch_str_ignores_surrounding_whitespace(truth):
    assert truth.datasets() == list(TRUTH_DATASETS)
    got = truth.accuracy([f"  {ARCH1}\n", ARCH0], "cifar10")
    assert got == pytest.approx([93.66, 85.8633333], abs=1e-4)
    assert truth.index_of([ARCH0, ARCH1]).tolist() == [0, 1]


def test_nb201_unknown_arch_or_dataset_is_a_one_line_error(truth):
    with pytest.raises(KeyError, match="nor_conv_5x5") as e:
        truth.accuracy(["|nor_conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="'cifar11'.*cifar10, cifar100, ImageNet16-120") as e:
        truth.accuracy([ARCH0], "cifar11")
    assert "\n" not in str(e.value)


def test_nb201_from_csv_accepts_plain_dataset_names_and_row_order(tmp_path):
    f = tmp_path / "acc.csv"
    pd.DataFrame({"ArchitectureString": [ARCH0, ARCH1], "cifar10": [85.0, 93.0]}).to_csv(f, index=False)
    t = NB201Truth.load(f)
    assert t.datasets() == ["cifar10"]
    assert t.frame.index.tolist() == [0, 1]
    assert t.accuracy([ARCH1]).tolist() == [93.0]


def test_nb201_load_of_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv") as e:
        NB201Truth.load(tmp_path / "nope.csv")
    assert "\n" not in str(e.value)


class _FakeNATS:
    """The slice of the nats_bench tss API that from_nats uses: 2 archs, 12- and 200-epoch results."""

    meta_archs = [ARCH0, ARCH1]

    def __len__(self):
        return len(self.meta_archs)

    def arch(self, i):
        return self.meta_archs[i]

    def get_more_info(self, i, dataset, hp="12", is_random=True):
        assert is_random is False
        if hp == "12" and dataset == "ImageNet16-120":
            raise ValueError("no 12-epoch ImageNet results in this copy")
        base = {"cifar10": 90.0, "cifar10-valid": 80.0, "cifar100": 70.0, "ImageNet16-120": 40.0}[dataset]
        acc = base + i - (10.0 if hp == "12" else 0.0)
        return {"test-accuracy": acc, "valid-accuracy": acc - 1.0}


def test_nb201_from_nats_reads_mean_accuracies_and_caches_them(tmp_path, monkeypatch):
    import nats_bench

    calls = []
    monkeypatch.setattr(nats_bench, "create", lambda path, space, fast_mode=False, verbose=True: (
        calls.append((path, space, fast_mode)) or _FakeNATS()))
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    bench = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    bench.mkdir()

    t = NB201Truth.load(bench)
    assert calls == [(str(bench), "tss", True)]
    assert t.frame["arch_str"].tolist() == [ARCH0, ARCH1]
    assert t.accuracy([ARCH1], "cifar10").tolist() == [91.0]
    assert t.accuracy([ARCH0, ARCH1], "ImageNet16-120").tolist() == [40.0, 41.0]
    assert t.accuracy([ARCH1], "cifar10_valid_12").tolist() == [70.0]
    assert "imagenet16_120_test_12" not in t.accuracy_columns()  # all missing -> dropped
    assert len(list((tmp_path / "cache").glob("*.csv"))) == 1

    again = NB201Truth.from_nats(bench)  # from the cache: nats_bench is not called again
    assert len(calls) == 1
    pd.testing.assert_frame_equal(again.frame, t.frame)


# ---------------------------------------------------------------- HW-NAS-Bench
@pytest.mark.parametrize("arch_index", [1, 2])
def test_hwnasbench_matches_official_example_values(hwnb, arch_index, shared_data):
    examples = json.loads((shared_data / "hw" / "hwnasbench_official_example_values.json").read_text())["records"]
    records = [r for r in examples if r["arch_index"] == arch_index]
    checked = 0
    for rec in records:
        if rec["dataset"] not in hwnb.datasets():
            continue  # the prepared pickle holds cifar10 only
        frame = hwnb.frame(rec["dataset"])
        assert frame.loc[arch_index, "arch_str"] == rec["arch_str"]
        for metric in hwnb.metrics(rec["dataset"]):
            got = hwnb.lookup([rec["arch_str"]], metric, rec["dataset"])[0]
            # rel 1e-6: the prepared pickle stores some columns rounded (raspi4 to 6 significant digits)
            assert got == pytest.approx(rec["metrics"][metric], rel=1e-6), (rec["dataset"], metric)
            checked += 1
    assert checked >= 10


def test_hwnasbench_coverage_reflects_missing_values(hwnb):
    cov = hwnb.coverage("cifar10")
    assert cov["fpga_latency"] == 1.0
    assert cov["edgetpu_latency"] < 1.0  # -1 in the official file, NaN in the prepared one
    if hwnb.datasets() == ["cifar10"]:  # the prepared partial file lacks 3071 archs' edgegpu values
        assert cov["edgegpu_latency"] < 1.0
    for device in HW_DEVICES:
        for kind in HW_METRICS[device]:
            assert f"{device}_{kind}" in hwnb.metrics("cifar10")


def test_hwnasbench_negative_values_become_nan(tmp_path):
    data = {"nasbench201": {"cifar10": {
        "config": [{"arch_str": ARCH0, "C": 16}, {"arch_str": ARCH1, "C": 16}],
        "edgetpu_latency": [0.95, -1.0],
        "fpga_latency": np.array([2.5, 3.0]),
    }}, "fbnet": {"ignored": 1}}
    f = tmp_path / "hw.pickle"
    f.write_bytes(pickle.dumps(data))
    bench = HWNASBench.load(f)
    assert bench.datasets() == ["cifar10"]
    got = bench.lookup([ARCH1, f" {ARCH0} "], "edgetpu_latency")
    assert math.isnan(got[0]) and got[1] == 0.95
    assert bench.coverage().to_dict() == {"edgetpu_latency": 0.5, "fpga_latency": 1.0}
    assert bench.metrics() == ["edgetpu_latency", "fpga_latency"]


def test_hwnasbench_bad_names_are_one_line_errors(tmp_path):
    data = {"nasbench201": {"cifar10": {"config": [{"arch_str": ARCH0}], "fpga_latency": [2.5]}}}
    bench = HWNASBench.from_dict(data)
    with pytest.raises(ValueError, match="'gpu_latency'.*fpga_latency") as e:
        bench.lookup([ARCH0], "gpu_latency")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="'cifar1000'.*cifar10") as e:
        bench.lookup([ARCH0], "fpga_latency", dataset="cifar1000")
    assert "\n" not in str(e.value)
    with pytest.raises(KeyError, match="not in HW-NAS-Bench"):
        bench.lookup(["|none~0|"], "fpga_latency")


class _Touch:
    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_a_crafted_hwnasbench_pickle_is_refused_without_running(tmp_path):
    """The table is a pickle; reading it builds plain data and numpy arrays only."""
    marker = tmp_path / "pwned"
    good = {"nasbench201": {"cifar10": {"config": [{"arch_str": ARCH0}], "fpga_latency": np.array([2.5])}}}
    path = tmp_path / "HW-NAS-Bench-v1_0.pickle"
    path.write_bytes(pickle.dumps(good))
    assert HWNASBench.from_pickle(path).lookup([ARCH0], "fpga_latency")[0] == 2.5  # numpy arrays load
    path.write_bytes(pickle.dumps({**good, "x": _Touch(marker)}))
    with pytest.raises(ValueError, match=r"names 'pathlib\.Path.touch'|names '[\w.]+'; refused without running"):
        HWNASBench.from_pickle(path)
    assert not marker.exists()


def test_hwnasbench_missing_file_names_url(tmp_path):
    with pytest.raises(FileNotFoundError, match="HW-NAS-Bench-v1_0.pickle") as e:
        HWNASBench.load(tmp_path / "HW-NAS-Bench-v1_0.pickle")
    assert "\n" not in str(e.value) and "https://" in str(e.value)


# ---------------------------------------------------------------- device table
def test_device_table_round_trip_with_missing_arch_gives_nan(tmp_path):
    f = tmp_path / "jetson_nano.csv"
    f.write_text(f"arch_str,latency_ms,energy_mJ\n {ARCH0} ,1.5,3\n{ARCH1},2.5,\n")
    table = DeviceTable.from_csv(f)
    assert table.name == "jetson_nano"
    assert table.metrics() == ["latency_ms", "energy_mJ"]
    got = table.lookup([ARCH1, ARCH_ABSENT, ARCH0], "latency_ms")
    assert got[0] == 2.5 and math.isnan(got[1]) and got[2] == 1.5
    assert math.isnan(table.lookup([ARCH1], "energy_mJ")[0])
    assert DeviceTable.from_csv(f, name="nano").name == "nano"


def test_device_table_rejects_bad_files_in_one_line(tmp_path):
    no_arch = tmp_path / "a.csv"
    no_arch.write_text("arch,latency_ms\nx,1\n")
    with pytest.raises(ValueError, match="no arch_str column") as e:
        DeviceTable.from_csv(no_arch)
    assert "\n" not in str(e.value)
    text = tmp_path / "b.csv"
    text.write_text(f"arch_str,latency_ms\n{ARCH0},fast\n")
    with pytest.raises(ValueError, match="'latency_ms' is not numeric") as e:
        DeviceTable.from_csv(text)
    assert "\n" not in str(e.value)
    ok = tmp_path / "c.csv"
    ok.write_text(f"arch_str,latency_ms\n{ARCH0},1\n")
    with pytest.raises(ValueError, match="'energy'.*latency_ms"):
        DeviceTable.from_csv(ok).lookup([ARCH0], "energy")


def test_device_table_treats_non_finite_values_as_missing_and_refuses_non_utf8(tmp_path, caplog):
    f = tmp_path / "board.csv"
    f.write_text(f"arch_str,latency_ms\n{ARCH0},inf\n{ARCH1},-Infinity\n{ARCH_ABSENT},2\n")
    with caplog.at_level("WARNING"):
        table = DeviceTable.from_csv(f)
    assert np.isnan(table.lookup([ARCH0, ARCH1], "latency_ms")).all()
    assert table.lookup(ARCH_ABSENT, "latency_ms")[0] == 2.0
    assert "2 non-finite value(s)" in caplog.text and "count as missing" in caplog.text
    latin = tmp_path / "latin.csv"
    latin.write_bytes(f"arch_str,latency_ms\n{ARCH0},1\n".encode() + b"\xe9t\xe9,2\n")
    with pytest.raises(ValueError, match="not UTF-8 text") as e:
        DeviceTable.from_csv(latin)
    assert "\n" not in str(e.value)


def test_hwnasbench_download_is_checked_against_its_git_blob_id(tmp_path, file_server):
    import hashlib

    from hwnas.benchmarks.tables.hwnasbench import HWNASBENCH_URL, download_pickle

    assert "/393bb8a02554dcd28e091fbbdb4d7aefe590018a/" in HWNASBENCH_URL  # a pinned commit, not a branch
    blob = pickle.dumps({"nasbench201": {"cifar10": {"config": [{"arch_str": ARCH0}], "fpga_latency": [2.5]}}})
    git_id = hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest()  # what `git hash-object` prints
    base, _ = file_server({"/hw.pickle": blob})
    dest = tmp_path / "out" / "HW-NAS-Bench-v1_0.pickle"
    with pytest.raises(ValueError, match="corrupt: git-blob-sha1"):
        download_pickle(dest, url=f"{base}/hw.pickle", git_blob_sha1="0" * 40, progress=False)
    assert list(dest.parent.iterdir()) == []
    download_pickle(dest, url=f"{base}/hw.pickle", git_blob_sha1=git_id, progress=False)
    assert dest.read_bytes() == blob and [p.name for p in dest.parent.iterdir()] == [dest.name]
    assert HWNASBench.load(dest).lookup([ARCH0], "fpga_latency").tolist() == [2.5]
