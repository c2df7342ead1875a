"""Search on NB201 tables and a tiny trained supernet: front quality, non-dominance, caching, NaN handling."""
from __future__ import annotations

import numpy as np
import pytest

from hwnas.evolve.explore import exact_front, search_target
from hwnas.evolve.objectives import get_objective
from hwnas.evolve.sources import Sources
from hwnas.evolve.pareto import hv_ratio, non_dominated_mask
from hwnas.evolve.search import parse_bounds, search
from hwnas.supernet.evaluate import ProxySettings


@pytest.fixture(scope="module")
def ctx(data_dir):
    return Sources(dataset="cifar10", truth=str(data_dir / "nb201_accuracy.csv"),
                            hwnasbench=str(data_dir / "HW-NAS-Bench-v1_0.pickle"), progress=False)


def _dominates(a, b):
    return np.all(a <= b) and np.any(a < b)


def test_nsga2_oracle_reaches_97_percent_of_exact_hypervolume_on_fpga(ctx):
    objs = [get_objective("true_err", ctx), get_objective("fpga_latency", ctx)]
    front = search(ctx.space, objs, pop_size=50, generations=20, seed=0, progress=False)
    assert front.meta["evaluations"] <= 1000
    archs = ctx.space.all_archs()
    exact = np.column_stack([o(archs) for o in objs])
    assert hv_ratio(front.table[front.objectives].to_numpy(), exact) >= 0.97


def test_every_front_row_is_non_dominated_by_any_evaluated_arch(ctx):
    objs = [get_objective("true_err", ctx), get_objective("raspi4_latency", ctx)]
    front = search(ctx.space, objs, pop_size=20, generations=5, seed=3, progress=False)
    F = front.table[front.objectives].to_numpy()
    pareto = F[front.table["is_pareto"].to_numpy()]
    assert len(pareto) >= 2
    for p in pareto:
        assert not any(_dominates(q, p) for q in F)
    # and every non-Pareto row is dominated by some row
    for q in F[~front.table["is_pareto"].to_numpy()]:
        assert any(_dominates(p, q) or np.array_equal(p, q) for p in pareto)


def test_exact_front_matches_brute_force_on_a_sample(ctx):
    ex = exact_front(ctx, "fpga_latency")
    rng = np.random.default_rng(0)
    archs = [ctx.space.from_index(i) for i in rng.choice(15625, 600, replace=False)]
    objs = [get_objective("true_err", ctx), get_objective("fpga_latency", ctx)]
    F = np.column_stack([o(archs) for o in objs])
    brute = np.array([not any(_dominates(q, p) for q in F) for p in F])
    assert np.array_equal(brute, non_dominated_mask(F))
    # No sampled arch dominates a point of the exact front.
    E = ex[["true_err_pct", "fpga_latency_ms"]].to_numpy()
    assert not any(_dominates(q, p) for p in E for q in F)
    assert 5 <= len(ex) <= 200


def test_missing_metric_values_are_infeasible_and_reported_never_zero(ctx):
    objs = [get_objective("true_err", ctx), get_objective("edgetpu_latency", ctx)]
    front = search(ctx.space, objs, pop_size=30, generations=4, seed=1, progress=False)
    col = "edgetpu_latency_ms"
    missing = front.table[col].isna()
    assert missing.sum() > 0
    assert front.meta["missing_values"][col] == missing.sum()
    assert front.meta["infeasible"] >= missing.sum()
    assert not front.table.loc[missing, "is_pareto"].any()
    assert (front.table[col].dropna() > 0).all()


def test_hard_constraint_keeps_front_within_bound(ctx):
    objs = [get_objective("true_err", ctx), get_objective("fpga_latency", ctx)]
    front = search(ctx.space, objs, pop_size=20, generations=4, seed=0, bounds=parse_bounds(["fpga_latency=3"]),
                   progress=False)
    assert (front.pareto()["fpga_latency_ms"] <= 3).all()
    assert front.meta["infeasible"] > 0


@pytest.mark.parametrize("algorithm", ["wsea", "cea", "random"])
def test_baselines_spend_the_same_budget_and_return_fronts(ctx, algorithm):
    objs = [get_objective("true_err", ctx), get_objective("pixel3_latency", ctx)]
    front = search(ctx.space, objs, algorithm=algorithm, pop_size=20, generations=5, seed=0, progress=False,
                   stats_samples=200)
    assert front.meta["evaluations"] <= 100
    assert front.table["is_pareto"].sum() >= 1


def test_second_device_reuses_cached_proxy_evaluations(ctx, tiny_run, data_dir):
    settings = ProxySettings(eval_images=64, calib_batches=1, calib_batch_size=32, eval_batch_size=64)
    c = Sources(dataset="cifar10", supernet=str(tiny_run), truth=ctx.truth, hwnasbench=ctx.hwnasbench,
                         data=str(data_dir), proxy_settings=settings, progress=False)
    first = search_target(c, "fpga", pop_size=8, generations=2, seed=0, progress=False, accuracy="proxy_err")
    misses = c.proxy.misses
    assert misses > 0
    # Same archs against another device: every proxy value comes from the cache.
    archs = [c.space.from_str(s) for s in first.table["arch_str"]]
    hits = c.proxy.hits
    again = get_objective("proxy_err", c)(archs)
    assert c.proxy.misses == misses
    assert c.proxy.hits == hits + len(archs)
    np.testing.assert_allclose(again, first.table["proxy_err_pct"].to_numpy())
    # A whole second device's search pays only for archs never seen before.
    seen = {c.space.to_str(c.space.canonical(a)) for a in archs}
    second = search_target(c, "raspi4", pop_size=8, generations=2, seed=0, progress=False, accuracy="proxy_err")
    new = {c.space.to_str(c.space.canonical(c.space.from_str(s))) for s in second.table["arch_str"]} - seen
    assert c.proxy.misses - misses == len(new)
    # A fresh evaluator on the same checkpoint reads the on-disk cache.
    from hwnas.supernet.evaluate import ProxyEvaluator

    fresh = ProxyEvaluator(tiny_run, settings, data=str(data_dir), progress=False)
    fresh.accuracy(archs)
    assert fresh.misses == 0


def test_proxy_front_is_rescored_with_truth(ctx, tiny_run, data_dir, tmp_path):
    from hwnas.evolve.objectives.ensemble import DEFAULT_PROXY
    from hwnas.supernet.zero_cost import ZeroCostSettings

    settings = ProxySettings(eval_images=64, calib_batches=1, calib_batch_size=32, eval_batch_size=64)
    c = Sources(dataset="cifar10", supernet=str(tiny_run), truth=ctx.truth, hwnasbench=ctx.hwnasbench,
                data=str(data_dir), proxy_settings=settings, progress=False,
                zero_cost=ZeroCostSettings(zc_channels=4, zc_batch_size=16), zero_cost_cache=str(tmp_path / "zc.db"))
    r = search_target(c, "eyeriss", pop_size=6, generations=2, seed=0, progress=False)
    assert r.meta["accuracy"] == DEFAULT_PROXY  # the default proxy: the supernet with zero-cost signals
    assert r.directions[r.objectives[0]] == "max"
    assert "true_err_pct" in r.table
    assert r.table["true_err_pct"].notna().all()
    assert 0 < r.meta["hv_ratio"] <= 1.0
    assert 0 <= r.meta["regret"] <= r.meta["max_regret"]


def test_unknown_names_give_one_line_errors(ctx):
    with pytest.raises(ValueError, match="unknown objective 'fpga_latencyy'; valid: .*fpga_latency"):
        get_objective("fpga_latencyy", ctx)
    with pytest.raises(ValueError, match="unknown target 'jetson'; valid: edgegpu"):
        ctx.target_objective("jetson")
    with pytest.raises(ValueError, match="unknown algorithm 'pso'"):
        search(ctx.space, [get_objective("true_err", ctx)], algorithm="pso")
    with pytest.raises(ValueError, match="bad bound"):
        parse_bounds(["fpga_latency<3"])


def test_device_table_objective_from_user_csv(ctx, tmp_path):
    import pandas as pd

    archs = [ctx.space.from_index(i) for i in range(50)]
    pd.DataFrame({"arch_str": [ctx.space.to_str(a) for a in archs],
                  "latency_ms": np.arange(50, dtype=float) + 1}).to_csv(tmp_path / "jetson.csv", index=False)
    c = Sources(dataset="cifar10", truth=ctx.truth, hwnasbench=ctx.hwnasbench,
                         device_tables=[str(tmp_path / "jetson.csv")], progress=False)
    name = c.target_objective("jetson")
    assert name == "jetson_latency_ms"
    obj = get_objective(name, c)
    vals = obj(archs[:3] + [ctx.space.from_index(100)])
    assert vals[:3].tolist() == [1.0, 2.0, 3.0] and np.isnan(vals[3])


def test_a_search_with_no_feasible_arch_writes_an_empty_front_set_that_says_so(ctx, tmp_path, capsys):
    """Every arch of a sparse table lacks a value or breaks the bound: the front set is still written whole
    (json with NaN/inf meta as strict JSON), empty, and says why."""
    import pandas as pd

    from hwnas.cli import main as cli_main
    from hwnas.evolve.front import Front

    archs = [ctx.space.to_str(ctx.space.from_index(i)) for i in range(40)]
    pd.DataFrame({"arch_str": archs, "latency_ms": [float("inf")] * 20 + [5.0] * 20}).to_csv(
        tmp_path / "board.csv", index=False)
    out = tmp_path / "fronts"
    assert cli_main(["search", "--oracle", "--device-table", str(tmp_path / "board.csv"), "--target", "board",
                     "--max", "board_latency_ms=1", "--pop-size", "6", "--generations", "2", "--quiet",
                     "--out", str(out)]) == 0
    assert "the front is empty" in capsys.readouterr().err
    for ext in ("csv", "json", "parquet", "png"):
        assert (out / f"board.{ext}").is_file(), ext
    front = Front.load(out / "board.json")
    assert len(front.pareto()) == 0 and front.meta["infeasible"] == len(front.table) > 0
    assert "no evaluated arch is feasible" in front.meta["empty_front"]


def test_fronts_benchmark_writes_its_tables_and_command(data_dir, tmp_path, tiny_run):
    from hwnas.benchmarks.fronts import main as fronts_main
    from hwnas.benchmarks.tables.nb201_truth import NB201Truth

    # Searching with reference scores equal to the ground truth is the oracle search, shifted by a constant.
    exact = tmp_path / "exact.csv"
    NB201Truth.load().frame.rename(columns={"cifar10": "score"})[["arch_str", "score"]].to_csv(exact, index=False)
    out = tmp_path / "fronts.md"
    args = ["--devices", "fpga", "--seeds", "0", "--pop-size", "6", "--generations", "2", "--stats-samples", "20",
            "--supernet", str(tiny_run), "--eval-images", "64", "--calib-batches", "1", "--reference",
            f"exact={exact}", "--out", str(out)]
    assert fronts_main(args) == 0
    text = out.read_text()
    assert f"Command: `python -m hwnas.benchmarks.fronts {' '.join(args)}`" in text
    assert "| device | true_err | proxy:spos | reference:exact |" in text  # proxy-front quality per supernet
    per_source = next(line for line in text.splitlines() if line.startswith("| fpga | ")).split("|")
    assert per_source[2] == per_source[4]  # true_err's HV ratio == reference:exact's
    assert f"`reference:exact` = per-arch scores read from `{exact}`" in text
    assert f"`proxy:spos` = supernet `{tiny_run}`: spos, C=4, N=1" in text
    assert "| fpga | true_err |" in text and "| fpga | proxy:spos | nsga2 |" in text
    for method in ("nsga2", "wsea", "cea", "random"):
        assert f"| fpga | true_err | {method} |" in text
    assert "## Regret per accuracy side" in text and "## Worst seed's HV ratio" in text
    assert "## Oracle search against the targets (12 evaluations, 1 seeds)" in text


def test_context_takes_the_supernets_data_set(tiny_run):
    assert Sources(supernet=str(tiny_run)).dataset == "cifar10"
    assert Sources(supernet=str(tiny_run / "supernet.pt")).dataset == "cifar10"
    with pytest.raises(ValueError, match="data set 'cifar100' differs from the supernet's data set 'cifar10'"):
        Sources(supernet=str(tiny_run), dataset="cifar100")


def test_sources_with_other_resources_build_their_own_objectives(ctx):
    """An objective the original sources built is not reused by a copy whose resources differ (what
    `get_objective(name, sources, net=...)` and an ensemble's members rely on)."""
    arch = ctx.space.from_index(7)
    big = ctx.objective("params")([arch])[0]
    small_net = {"channels": 4, "cells": 1, "num_classes": 10}
    small = ctx.with_resources(net=small_net)
    assert small.objective("params")([arch])[0] < big
    assert ctx.objective("params")([arch])[0] == big  # and the original keeps its own
    assert get_objective("params", ctx, net=small_net)([arch])[0] == small.objective("params")([arch])[0]


def test_objective_lists_each_arch_it_computed_once_in_first_seen_order(ctx):
    obj = get_objective("fpga_latency", ctx)
    a, b, c = (ctx.space.from_index(i) for i in (7, 3, 11))
    obj([a, b, a])
    obj([c, b])
    assert obj.evaluated == [ctx.space.to_str(x) for x in (a, b, c)]


@pytest.mark.parametrize("algorithm", ["nsga2", "random"])
def test_each_arch_carries_the_generation_that_first_evaluated_it(ctx, algorithm):
    """The generation comes from the algorithm inside the evaluation: every generation's new archs carry its
    number, and no arch is in a population before the generation that evaluated it."""
    objs = [get_objective("true_err", ctx), get_objective("fpga_latency", ctx)]
    front = search(ctx.space, objs, algorithm=algorithm, pop_size=10, generations=4, seed=2, progress=False)
    assert set(front.table.generation) == {1, 2, 3, 4}
    assert (front.table.groupby("generation").size() <= 10).all()
    first_seen = front.history.groupby("arch_str").generation.min()
    evaluated = front.table.set_index("arch_str").generation
    assert (first_seen >= evaluated[first_seen.index]).all()
    assert set(front.history.generation) == {1, 2, 3, 4}


def test_nsga2_ends_with_a_local_search_that_keeps_to_the_budget(ctx):
    objs = [get_objective("true_err", ctx), get_objective("edgetpu_latency", ctx)]
    front = search(ctx.space, objs, pop_size=20, generations=5, seed=0, progress=False)
    m = front.meta
    assert m["evaluations"] <= 100 and m["algorithm_generations"] == 2  # 40% of 5 generations, 60% local
    assert m["local_search_evaluations"] > 0
    t = front.table
    before = [ctx.space.from_str(s) for s in t[t.generation <= m["algorithm_generations"]].arch_str]
    after = [ctx.space.from_str(s) for s in t[t.generation > m["algorithm_generations"]].arch_str]
    assert len(after) == m["local_search_evaluations"]
    for a in after:  # each one decision away from an arch the search had already evaluated
        assert any(sum(x != y for x, y in zip(a, b)) == 1 for b in before + after)
    strings = [ctx.space.to_str(a) for a in before + after]
    assert len(set(strings)) == len(strings)  # no arch evaluated twice
    plain = search(ctx.space, objs, algorithm="nsga2-plain", pop_size=20, generations=5, seed=0, progress=False)
    assert "local_search_evaluations" not in plain.meta and plain.table.generation.max() == 5


def test_the_local_search_draws_gap_filling_neighbours_first(ctx):
    from hwnas.evolve.search import _Archive, _History, pareto_local_search

    objs = [get_objective("true_err", ctx), get_objective("fpga_latency", ctx)]
    space = ctx.space
    rng = np.random.default_rng(0)
    archive = _Archive(space, objs, [])
    archive.evaluate([space.sample(rng) for _ in range(30)], 0)
    table = archive.table()
    front = table[non_dominated_mask(table[["true_err_pct", "fpga_latency_ms"]].to_numpy())]
    front = front.sort_values("fpga_latency_ms")
    ceilings = dict(zip(front.arch_str, [*front.fpga_latency_ms.iloc[1:], np.inf]))
    spent = pareto_local_search(archive, 10, 10, 1, np.random.default_rng(1), _History(archive, 1, False, "t"),
                                key=space.to_str)
    new = archive.table().iloc[30:]
    assert spent == 10 and len(new) == 10
    for text, cost in zip(new.arch_str, new.fpga_latency_ms):
        arch = space.from_str(text)
        parents = [p for p in ceilings if sum(x != y for x, y in zip(arch, space.from_str(p))) == 1]
        assert parents, text  # one decision away from a front point
        assert cost < max(ceilings[p] for p in parents), text  # and cheaper than the next front point up


def test_the_initial_population_spans_the_hardware_cost(ctx):
    from hwnas.evolve.search import CostSpreadSampling

    hw = get_objective("fpga_latency", ctx)
    rng = np.random.default_rng(0)
    X = CostSpreadSampling(ctx.space, hw, pool=20)._do(None, 10, random_state=np.random.default_rng(0))
    assert X.shape == (10, 6)
    cost = hw([ctx.space.decode(x) for x in X])
    pool = rng.integers(0, 5, (200, 6))  # the pool the sampling drew (same seed, same call)
    pool_cost = hw([ctx.space.decode(x) for x in pool])
    edges = np.linspace(np.nanmin(pool_cost), np.nanmax(pool_cost), 11)
    assert cost.min() <= edges[1] and cost.max() >= edges[-2]  # the cheapest and the dearest tenth both present
    assert len({tuple(x) for x in X}) == 10


def test_the_default_accuracy_side(ctx, tiny_run):
    from hwnas.evolve.explore import SearchConfig, default_accuracy, objective_names
    from hwnas.evolve.objectives.ensemble import DEFAULT_PROXY, without_supernet

    assert without_supernet(DEFAULT_PROXY) == "ensemble:" + DEFAULT_PROXY.removeprefix("ensemble:proxy_err+")
    assert default_accuracy(ctx, oracle=True) == "true_err"
    assert objective_names(Sources(supernet=str(tiny_run), progress=False), "fpga") == [DEFAULT_PROXY,
                                                                                          "fpga_latency"]
    assert default_accuracy(Sources(labels="x.csv", progress=False)) == "ranker"
    assert objective_names(ctx, "fpga", accuracy="proxy_err") == ["proxy_err", "fpga_latency"]
    with pytest.raises(ValueError, match="needs --supernet"):
        SearchConfig(targets=["fpga"]).validate()
    SearchConfig(targets=["fpga"], accuracy=without_supernet(DEFAULT_PROXY)).validate()  # zero-cost only: fine
    SearchConfig(targets=["fpga"], labels="labels.csv").validate()
    with pytest.raises(ValueError, match="takes no --accuracy"):
        SearchConfig(targets=["fpga"], oracle=True, accuracy="proxy_err").validate()


def test_without_a_table_lookup_the_initial_population_is_random(ctx):
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    from hwnas.evolve.search import CostSpreadSampling, SearchSetup

    table = SearchSetup(ctx.space, [get_objective("true_err", ctx), get_objective("fpga_latency", ctx)], 10, 0)
    assert isinstance(table.spread_sampling(), CostSpreadSampling)
    counted = SearchSetup(ctx.space, [get_objective("true_err", ctx), get_objective("params", ctx)], 10, 0)
    assert isinstance(counted.spread_sampling(), IntegerRandomSampling)  # a pool of counts would cost builds


def test_searches_tell_archs_apart_by_string_when_a_table_scores_strings(ctx):
    """Isomorphic strings are one cell to the proxy and the counters, but NB201 and HW-NAS-Bench trained and
    measured each string on its own: with a table objective the search keeps them apart."""
    from hwnas.evolve.search import duplicate_key

    a = ctx.space.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    b = ctx.space.from_str("|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")  # node 1 is dead
    assert ctx.space.canonical(a) == ctx.space.canonical(b)
    table = [get_objective("true_err", ctx), get_objective("fpga_latency", ctx)]
    assert duplicate_key(ctx.space, table)(a) != duplicate_key(ctx.space, table)(b)
    counted = [get_objective("flops", ctx), get_objective("params", ctx)]
    assert duplicate_key(ctx.space, counted)(a) == duplicate_key(ctx.space, counted)(b)
