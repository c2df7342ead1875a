"""The public API (`import hwnas`): what a notebook or script uses, an objective added from outside the package,
fronts per target, picking an arch under a budget, measuring one subnet."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hwnas
from hwnas.evolve.objectives import OBJECTIVES

NAMES = ["get_space", "list_spaces", "TrainConfig", "train", "load_supernet", "get_objective", "list_objectives",
         "search", "search_fronts", "Front", "measure", "__version__"]


def test_the_facade_names_what_the_design_promises():
    for name in NAMES:
        assert name in dir(hwnas) and getattr(hwnas, name) is not None
    for name in hwnas.__all__:
        getattr(hwnas, name)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        hwnas.nope  # noqa: B018
    assert hwnas.list_spaces() == ["mobilenet", "nb201", "resblock", "shufflenet"]
    assert len(hwnas.get_space("nb201").num_choices) == 6


@pytest.fixture
def conv3x3_objective():
    """An objective registered here, outside the package: the number of 3x3 convolutions in an NB201 cell."""
    @hwnas.register_objective("conv3x3_count", unit="", cost=hwnas.Cost.COUNTER, needs=(), spaces=("nb201",),
                              doc="3x3 convolutions in the cell")
    def _build(arg, space):
        def fn(archs):
            return np.array([space.to_str(a).count("nor_conv_3x3") for a in archs], dtype=float)
        return fn, "counted in the arch string"
    yield "conv3x3_count"
    OBJECTIVES.unregister("conv3x3_count")


def test_an_objective_registered_in_a_test_file_is_searched_with(conv3x3_objective, data_dir):
    sources = hwnas.Sources(progress=False)
    assert conv3x3_objective in hwnas.list_objectives(sources)
    front = hwnas.search("nb201", ["true_err", conv3x3_objective], sources=sources, pop_size=20, generations=8,
                         seed=0, progress=False)
    assert front.objectives == ["true_err_pct", "conv3x3_count"]
    assert front.meta["sources"]["conv3x3_count"] == "counted in the arch string"
    # the front against enumeration: for each count, the best true error among the evaluated archs with at most
    # that many 3x3 convolutions; nothing evaluated dominates a front row
    table = front.table
    pareto = front.pareto()
    for _, row in pareto.iterrows():
        better = table[(table.conv3x3_count <= row.conv3x3_count) & (table.true_err_pct <= row.true_err_pct)
                       & ((table.conv3x3_count < row.conv3x3_count) | (table.true_err_pct < row.true_err_pct))]
        assert better.empty
    assert pareto.conv3x3_count.min() == 0  # a cell without 3x3 convolutions is always found in this budget


def test_a_maximised_objective_is_negated_for_the_search_and_kept_natural_in_the_front(data_dir):
    @hwnas.register_objective("skip_count", unit="", cost=hwnas.Cost.COUNTER, needs=(), spaces=("nb201",),
                              direction=hwnas.Direction.MAXIMISE, doc="skip connections in the cell")
    def _build(arg, space):
        return (lambda archs: np.array([space.to_str(a).count("skip_connect") for a in archs], dtype=float)), "count"
    try:
        front = hwnas.search("nb201", ["fpga_latency", "skip_count"], sources=hwnas.Sources(progress=False),
                             pop_size=16, generations=5, seed=1, progress=False)
    finally:
        OBJECTIVES.unregister("skip_count")
    assert front.directions == {"fpga_latency_ms": "min", "skip_count": "max"}
    assert front.table.skip_count.min() >= 0  # natural values, not negated
    t = front.table
    for _, row in front.pareto().iterrows():  # nobody is faster with at least as many skips (or vice versa)
        dominated = t[(t.fpga_latency_ms <= row.fpga_latency_ms) & (t.skip_count >= row.skip_count)
                      & ((t.fpga_latency_ms < row.fpga_latency_ms) | (t.skip_count > row.skip_count))]
        assert dominated.empty
    assert front.pareto().skip_count.max() == t.skip_count.max()


def test_search_takes_a_pymoo_algorithm_object(data_dir):
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    front = hwnas.search("nb201", ["true_err", "pixel3_latency"], algorithm=NSGA2(pop_size=10,
                         sampling=IntegerRandomSampling()), pop_size=10, generations=3, progress=False,
                         sources=hwnas.Sources(progress=False))
    assert front.meta["algorithm"] == "NSGA2" and front.meta["evaluations"] <= 30 and front.table.is_pareto.any()
    with pytest.raises(ValueError, match="space 'resblock' with sources of space 'nb201'"):
        hwnas.search("resblock", ["params"], sources=hwnas.Sources(progress=False))


def _toy_front() -> hwnas.Front:
    table = pd.DataFrame({"arch_str": list("abcde"), "encoding": ["0"] * 5,
                          "proxy_err_pct": [10.0, 12.0, 15.0, 20.0, 11.0],
                          "fpga_latency_ms": [5.0, 3.0, 2.0, 1.0, 6.0], "size_mb": [4.0, 3.0, 1.0, 2.0, 1.0]})
    return hwnas.Front.from_evaluations(table, ["proxy_err_pct", "fpga_latency_ms"])


def test_pick_takes_the_best_pareto_arch_within_the_limits():
    front = _toy_front()
    assert front.pareto().arch_str.tolist() == ["a", "b", "c", "d"]  # e is dominated by a
    assert front.pick().arch_str == "a"
    assert front.pick(max_fpga_latency_ms=3).arch_str == "b"
    assert front.pick(max_fpga_latency=2.5).arch_str == "c"  # the objective's name without its unit
    assert front.pick(max_fpga_latency=4, max_size_mb=2).arch_str == "c"  # any column can be limited
    assert front.pick(min_fpga_latency=3, by="fpga_latency_ms").arch_str == "b"
    with pytest.raises(ValueError, match=r"no Pareto arch has fpga_latency_ms <= 0.5 \(the front's lowest is 1\)"):
        front.pick(max_fpga_latency=0.5)
    with pytest.raises(ValueError, match="front has no column 'energy'"):
        front.pick(max_energy=1)
    with pytest.raises(ValueError, match="max_<objective> or min_<objective>"):
        front.pick(latency=1)


def test_search_fronts_gives_a_front_per_target_and_writes_a_search_folder(data_dir, tmp_path):
    fronts = hwnas.search_fronts(oracle=True, targets=["fpga", "raspi4"], pop_size=10, generations=2)
    assert list(fronts) == ["fpga", "raspi4"]
    for target, front in fronts.items():
        assert isinstance(front, hwnas.Front) and front.meta["target"] == target
        assert 0 < front.meta["hv_ratio"] <= 1 and "true_err_pct" in front.table
    out = tmp_path / "fronts"
    saved = hwnas.search_fronts(oracle=True, targets=["fpga"], pop_size=10, generations=2, out=out)
    assert (out / "config.yaml").is_file() and (out / "search.log").is_file()
    assert hwnas.Front.load(out / "fpga.json").table.equals(saved["fpga"].table)
    assert saved["fpga"].table.equals(fronts["fpga"].table)  # same seed, same front
    exact = hwnas.exact_front("fpga")
    assert {"arch_str", "true_err_pct", "fpga_latency_ms"} <= set(exact.columns) and len(exact) >= 5
    with pytest.raises(ValueError, match="unknown option 'popsize'"):
        hwnas.search_fronts(oracle=True, targets=["fpga"], popsize=10)


def test_measure_times_and_counts_one_subnet():
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|skip_connect~1|nor_conv_1x1~2|"
    out = hwnas.measure(arch, channels=4, cells=1, warmup=1, repeats=3)
    assert out["arch"] == arch and out["timing"]["runs"] == 3 and out["timing"]["median_ms"] > 0
    assert out["params_m"] > 0 and out["flops_m"] > 0 and out["device"]["target"] == "cpu"
    with pytest.raises(ValueError, match="unknown target 'tpu'"):
        hwnas.measure(arch, target="tpu")


def test_train_and_load_supernet_through_the_facade(data_dir, tmp_path):
    result = hwnas.train(channels=4, cells=1, max_images=128, epochs=1, batch_size=64, out=str(tmp_path / "r"),
                         data=str(data_dir), progress=False)
    assert result["mode"] == "spos" and (tmp_path / "r" / "train.log").is_file()
    supernet = hwnas.load_supernet(tmp_path / "r")
    assert supernet.space.name == "nb201" and supernet.config["channels"] == 4
    with pytest.raises(ValueError, match="unknown option 'chanels'"):
        hwnas.train(chanels=4)
