"""Hardware: timing protocol, counters, per-block lookup tables and the measured-latency objectives."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
import torch.nn as nn

from hwnas.cli import main
from hwnas.evolve.objectives.measured import MeasureSettings
from hwnas.evolve.objectives import get_objective
from hwnas.evolve.sources import Sources
from hwnas.evolve.pareto import non_dominated_mask
from hwnas.evolve.search import search
from hwnas.hardware import counters
from hwnas.hardware.lut import LatencyTable, build_table, rank_agreement
from hwnas.hardware.measure import Timing, check_target, measure
from hwnas.supernet.spaces import get_space

SPACE = get_space("nb201")
SMALL = {"channels": 4, "cells": 1, "num_classes": 10}
HEAVY = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
LIGHT = "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def test_timing_statistics_of_known_times():
    t = Timing.from_times([1.0, 2.0, 3.0, 4.0, 5.0], target="cpu", warmup=0, batch_size=1, input_shape=(1, 3, 8, 8),
                          threads=1, noisy=False, attempts=1)
    assert (t.median_ms, t.iqr_ms, t.mean_ms, t.min_ms, t.runs) == (3.0, 2.0, 3.0, 1.0, 5)
    assert t.cv == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1) / 3)
    assert json.loads(json.dumps(t.to_dict()))["input_shape"] == [1, 3, 8, 8]


class _Jittery(nn.Module):
    """Sleeps 1 and 4 ms in turn: a spread far above any sane threshold in every attempt (a random choice
    could draw six of eight runs alike, whose interquartile range is then near zero)."""

    def __init__(self):
        super().__init__()
        self._turn = 0

    def forward(self, x):
        self._turn += 1
        time.sleep(0.001 if self._turn % 2 else 0.004)
        return x


def test_noisy_measurement_is_repeated_then_flagged():
    t = measure(_Jittery(), "cpu", (1, 1), warmup=0, repeats=8, cv_threshold=0.01, max_attempts=3)
    assert t.attempts == 3 and t.noisy
    t = measure(_Jittery(), "cpu", (1, 1), warmup=0, repeats=8, cv_threshold=10.0, max_attempts=3)
    assert t.attempts == 1 and not t.noisy


def test_cpu_and_onnxruntime_time_a_subnet_and_restore_threads():
    pytest.importorskip("onnxruntime")
    net = SPACE.build_subnet(SPACE.from_str(HEAVY), **SMALL)
    before = torch.get_num_threads()
    for target in ("cpu", "onnxruntime"):
        t = measure(net, target, warmup=2, repeats=5, threads=1)
        assert t.median_ms > 0 and t.runs == 5 and t.batch_size == 1 and t.target == target
    assert torch.get_num_threads() == before and net.training


def test_unknown_or_missing_targets_are_named():
    with pytest.raises(ValueError, match="unknown target 'tpu'; valid: cpu, cuda"):
        check_target("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs a CUDA GPU"):
            check_target("cuda")


def test_peak_activation_memory_follows_tensor_lifetimes():
    x_bytes, conv_out = 3 * 32 * 32 * 4, 64 * 32 * 32 * 4
    net = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 8, 3, padding=1))
    # conv1's output is still alive while ReLU writes a new tensor of the same size
    assert counters.peak_activation_mb(net) * 1e6 == x_bytes + 2 * conv_out
    inplace = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(64, 8, 3, padding=1))
    assert counters.peak_activation_mb(inplace) * 1e6 == x_bytes + conv_out + 8 * 32 * 32 * 4


def test_int8_size_counts_one_byte_per_weight_and_folds_batchnorm():
    net = nn.Sequential(nn.Conv2d(3, 16, 3, bias=False), nn.BatchNorm2d(16), nn.Flatten(), nn.Linear(16, 10))
    weights, channels, bias = 3 * 16 * 9 + 16 * 10, 16 + 10, 10
    assert counters.size_int8_mb(net) * 1e6 == weights + 8 * channels + 4 * bias
    assert counters.size_mb(net) * 1e6 == 4 * counters.count_params(net)


def test_lut_blocks_cover_exactly_what_a_subnet_runs():
    """Sum of the blocks' FLOPs = the whole subnet's FLOPs, for random archs: arch_blocks lists every op
    the network executes, once per occurrence, and nothing else."""
    net_cfg = {"channels": 8, "cells": 2, "num_classes": 10}
    blocks = SPACE.latency_blocks((1, 3, 32, 32), **net_cfg)
    flops = {name: counters.flops_m(m, shape) for name, (m, shape) in blocks.items()}
    rng = np.random.default_rng(0)
    for arch in [SPACE.sample(rng) for _ in range(15)] + [SPACE.from_str(LIGHT), SPACE.from_str(HEAVY)]:
        subnet = SPACE.build_subnet(arch, **net_cfg)
        assert sum(flops[b] for b in SPACE.arch_blocks(arch, **net_cfg)) == pytest.approx(counters.flops_m(subnet))


def test_lut_round_trips_through_json_and_csv(tmp_path):
    blocks = SPACE.latency_blocks((1, 3, 32, 32), **SMALL)
    table = build_table(blocks, "cpu", warmup=1, repeats=3, threads=1, meta={"space": "nb201", "net": SMALL})
    assert set(table.entries) == set(blocks) and table.target["threads"] == 1
    arch = SPACE.from_str(HEAVY)
    for suffix in (".json", ".csv"):
        back = LatencyTable.load(table.save(tmp_path / f"lut{suffix}"))
        assert back.meta == table.meta and back.target == table.target
        assert back.predict(SPACE.arch_blocks(arch, **SMALL)) == pytest.approx(table.predict(SPACE.arch_blocks(arch, **SMALL)))
    with pytest.raises(ValueError, match="block 'nope' is not in this lookup table"):
        table.predict(["stem", "nope"])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="is not a latency lookup table"):
        LatencyTable.load(tmp_path / "bad.json")


def test_rank_agreement_on_known_rankings():
    a = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert rank_agreement(a, a)["kendall"] == pytest.approx(1.0)
    assert rank_agreement(a, a[::-1])["spearman"] == pytest.approx(-1.0)
    one_swap = rank_agreement(a, [1.0, 2.0, 3.0, 5.0, 4.0])
    assert one_swap["kendall"] == pytest.approx(0.8)  # 9 concordant, 1 discordant pair of 10
    assert rank_agreement([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])["median_ratio"] == pytest.approx(2.0)


def test_lut_sum_ranks_measured_latency_of_very_different_archs():
    """Archs from 0 to 6 convs per cell: the LUT's order must agree with measurement (loose bar, the
    machine may be busy)."""
    net_cfg = {"channels": 16, "cells": 2, "num_classes": 10}
    table = build_table(SPACE.latency_blocks((1, 3, 32, 32), **net_cfg), "cpu", warmup=3, repeats=15, threads=1)
    archs = [(1, 0, 0, 0, 0, 0), (3, 0, 0, 0, 0, 0), (3, 1, 3, 0, 0, 3), (3, 3, 3, 3, 0, 3), (3, 3, 3, 3, 3, 3)]
    pred = [table.predict(SPACE.arch_blocks(a, **net_cfg)) for a in archs]
    meas = [measure(SPACE.build_subnet(a, **net_cfg), "cpu", warmup=3, repeats=15, threads=1).median_ms for a in archs]
    assert rank_agreement(pred, meas)["spearman"] >= 0.7


@pytest.fixture
def measured_ctx(tmp_path):
    return Sources(net={"channels": 4, "cells": 1}, progress=False,
                            measure=MeasureSettings(warmup=1, repeats=3, threads=1),
                            latency_cache=str(tmp_path / "latency.sqlite"))


def test_measured_latency_objective_is_cached_per_canonical_arch(measured_ctx):
    obj = get_objective("measured_latency:cpu", measured_ctx)
    assert obj.column == "measured_latency_cpu_ms" and obj.unit == "ms"
    a, b = SPACE.from_str(HEAVY), SPACE.from_str(LIGHT)
    values = obj([a, b, a])
    assert np.all(values > 0) and values[0] == values[2] and obj.fn.misses == 2
    # a fresh objective (another search, another device) reads the disk cache instead of measuring
    again = get_objective("measured_latency:cpu", measured_ctx)
    assert np.array_equal(again([b, a]), values[[1, 0]]) and again.fn.misses == 0 and again.fn.hits == 2


def test_isomorphic_archs_share_one_measurement(measured_ctx):
    obj = get_objective("measured_latency:cpu", measured_ctx)
    a = SPACE.from_str("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")
    b = SPACE.from_str("|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|")
    iso = [x for x in SPACE.all_archs() if SPACE.canonical(x) == SPACE.canonical(a) and x != a]
    assert iso, "test needs an arch with isomorphic twins"
    vals = obj([a, iso[0], b])
    assert vals[0] == vals[1] and obj.fn.misses == 2


def test_measured_objective_names_are_checked(measured_ctx):
    with pytest.raises(ValueError, match="unknown target 'gpu0'"):
        get_objective("measured_latency:gpu0", measured_ctx)
    with pytest.raises(ValueError, match="needs a target"):
        get_objective("measured_latency", measured_ctx)
    with pytest.raises(ValueError, match="needs a lookup table"):
        get_objective("lut_latency", measured_ctx)
    with pytest.raises(ValueError, match="bad agent URL 'localhost:1'"):
        get_objective("remote_latency:localhost:1", measured_ctx)


def test_nsga2_on_measured_latency_returns_a_non_dominated_front(measured_ctx):
    objs = [get_objective("params", measured_ctx), get_objective("measured_latency:cpu", measured_ctx)]
    front = search(SPACE, objs, pop_size=8, generations=3, seed=0, progress=False)
    pareto = front.table[front.table.is_pareto][front.objectives].to_numpy()
    assert len(pareto) >= 1 and non_dominated_mask(pareto).all()
    assert front.objectives == ["params_m", "measured_latency_cpu_ms"]


def test_lut_latency_objective_and_cli_round_trip(tmp_path, capsys):
    lut = tmp_path / "cpu.json"
    assert main(["lut", "build", "--lut", str(lut), "--channels", "4", "--cells", "1", "--repeats", "3",
                 "--warmup", "1", "--quiet"]) == 0
    ctx = Sources(net={"channels": 4, "cells": 1}, progress=False, lut=str(lut))
    obj = get_objective("lut_latency", ctx)
    light, heavy = obj([SPACE.from_str(LIGHT), SPACE.from_str(HEAVY)])
    assert 0 < light < heavy
    out = tmp_path / "check"
    assert main(["lut", "check", "--lut", str(lut), "--channels", "4", "--cells", "1", "--sample", "4",
                 "--repeats", "3", "--warmup", "1", "--quiet", "--out", str(out)]) == 0
    assert "Spearman" in capsys.readouterr().out and (tmp_path / "check.csv").exists()
    assert main(["lut", "check", "--lut", str(lut), "--channels", "8", "--cells", "1", "--quiet"]) == 2
    assert "was built for" in capsys.readouterr().err


def test_measure_cli_prints_timing_and_counters(capsys):
    assert main(["measure", "--arch", HEAVY, "--channels", "4", "--cells", "1", "--repeats", "3",
                 "--warmup", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["timing"]["runs"] == 3 and out["timing"]["median_ms"] > 0
    assert out["params_m"] > 0 and out["size_int8_mb"] < out["size_mb"] and out["peak_mem_mb"] > 0
    exc_code = main(["measure", "--arch", HEAVY, "--target", "tpu"])
    assert exc_code == 2 and "unknown target 'tpu'" in capsys.readouterr().err
