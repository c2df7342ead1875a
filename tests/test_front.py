"""Pareto dominance, hypervolume/IGD, the Front table and its files, and the plots
(evolve.pareto, evolve.front, evolve.plot)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.evolve.front import Front, default_meta
from hwnas.evolve.pareto import (
    HV_REFERENCE,
    exact_front,
    hv_ratio,
    igd,
    non_dominated_mask,
    normalized_hypervolume,
)

OBJECTIVES = ["proxy_err_pct", "fpga_latency_ms"]


def _brute_force_mask(F):
    n = len(F)
    mask = np.zeros(n, dtype=bool)
    for i in range(n):
        if np.isnan(F[i]).any():
            continue
        dominated = False
        for j in range(n):
            if j == i or np.isnan(F[j]).any():
                continue
            if np.all(F[j] <= F[i]) and np.any(F[j] < F[i]):
                dominated = True
                break
        mask[i] = not dominated
    return mask


@pytest.mark.parametrize("m", [2, 3])
def test_non_dominated_mask_equals_brute_force_with_ties_duplicates_and_nan(m):
    rng = np.random.default_rng(m)
    F = rng.integers(0, 6, size=(120, m)).astype(float)  # few values: many ties and duplicates
    F[7] = np.nan
    F[11, 0] = np.nan
    F[20] = F[non_dominated_mask(F)][0]  # an explicit duplicate of a front point
    mask = non_dominated_mask(F)
    np.testing.assert_array_equal(mask, _brute_force_mask(F))
    assert not mask[7] and not mask[11] and mask[20]


def test_exact_front_on_a_hand_example():
    F = np.array([[1, 5], [2, 2], [3, 3], [5, 1], [2, 2], [4, 4], [1, 6]], dtype=float)
    # [3,3] and [4,4] are dominated by [2,2]; [1,6] by [1,5]; the duplicate [2,2] stays.
    np.testing.assert_array_equal(exact_front(F), [0, 1, 3, 4])


def test_an_objective_with_a_zero_range_is_shifted_not_scaled():
    # the second objective spans nothing (5..5): (10, 5) normalises to (0, 0), which dominates the whole box
    assert normalized_hypervolume(np.array([[10.0, 5.0], [20.0, 5.0]]), [10, 5], [20, 5]) == pytest.approx(1.0)
    # (15, 5.5) -> (0.5, 0.5): 5.5 - 5 unscaled
    r = HV_REFERENCE
    assert normalized_hypervolume(np.array([[15.0, 5.5]]), [10, 5], [20, 5]) == pytest.approx((r - 0.5) ** 2 / r**2)


def test_hypervolume_of_two_points_by_hand():
    # in units where ideal=(10, 100), nadir=(20, 300): the points normalise to (0.2, 0.6) and (0.6, 0.2)
    F = np.array([[12.0, 220.0], [16.0, 140.0]])
    r = HV_REFERENCE
    by_hand = (r - 0.2) * (r - 0.6) + (r - 0.6) * (r - 0.2) - (r - 0.6) ** 2  # two boxes minus overlap
    got = normalized_hypervolume(F, ideal=[10, 100], nadir=[20, 300])
    assert got == pytest.approx(by_hand / r**2)
    # a point beyond the reference adds nothing
    beyond = np.vstack([F, [[9.0, 400.0]]])
    assert normalized_hypervolume(beyond, [10, 100], [20, 300]) == pytest.approx(got)


def _random_space(n=400, seed=0):
    rng = np.random.default_rng(seed)
    lat = rng.uniform(1, 10, n)
    err = 40 / lat + rng.uniform(0, 8, n)
    return np.column_stack([err, lat])


def test_exact_front_scores_hv_ratio_one_and_a_subset_less():
    F = _random_space()
    front = F[exact_front(F)]
    assert len(front) >= 4
    ideal, nadir = front.min(0), front.max(0)
    assert hv_ratio(front, F) == pytest.approx(1.0)
    subset = front[::2]
    assert normalized_hypervolume(subset, ideal, nadir) < normalized_hypervolume(front, ideal, nadir)
    assert 0 < hv_ratio(subset, F) < 1.0
    assert hv_ratio(F[:50], F) <= 1.0 + 1e-12


def test_igd_of_the_exact_front_is_zero():
    F = _random_space()
    front = F[exact_front(F)]
    assert igd(front, F) == pytest.approx(0.0)
    assert igd(np.vstack([front, F[:30]]), F) == pytest.approx(0.0)
    assert igd(front[::3], F) > 0


def _front(n=60, seed=1):
    rng = np.random.default_rng(seed)
    F = _random_space(n, seed)
    ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    enc = rng.integers(0, 5, size=(n, 6))
    arch = [
        "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*(ops[i] for i in e)) + f"#{k}"  # unique per row
        for k, e in enumerate(enc)
    ]
    table = pd.DataFrame({
        "arch_str": arch,
        "encoding": [list(e) for e in enc],
        "proxy_err_pct": F[:, 0],
        "fpga_latency_ms": F[:, 1],
        "generation": np.repeat(np.arange(6), n // 6),
        "params_m": rng.uniform(0.1, 1.5, n),
    })
    table.loc[3, "proxy_err_pct"] = np.nan  # a failed evaluation
    hist = []
    for g in range(6):
        pop = table[table["generation"] <= g].tail(20)
        hist.append(pop.assign(generation=g)[["generation", "arch_str", *OBJECTIVES]])
    meta = default_meta(space="nb201", device="fpga", seed=0, algorithm="nsga2")
    return Front.from_evaluations(table, OBJECTIVES, meta, pd.concat(hist))


def test_from_evaluations_sets_dtypes_and_is_pareto():
    f = _front()
    t = f.table
    assert list(t.columns[:4]) == ["arch_str", "encoding", *OBJECTIVES]
    assert t["is_pareto"].dtype == bool and t["generation"].dtype == np.int64
    assert isinstance(t["encoding"].iloc[0], str) and t["encoding"].iloc[0].count(",") == 5
    np.testing.assert_array_equal(t["is_pareto"], _brute_force_mask(t[OBJECTIVES].to_numpy()))
    assert not t.loc[3, "is_pareto"]
    p = f.pareto()
    assert p["is_pareto"].all() and p["proxy_err_pct"].is_monotonic_increasing
    assert f.meta["objectives"] == OBJECTIVES and "numpy" in f.meta["versions"]


def _assert_same_front(a: Front, b: Front, history=True):
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)
    assert a.objectives == b.objectives
    if history:
        pd.testing.assert_frame_equal(a.history, b.history, check_exact=True)
        assert a.meta == json.loads(json.dumps(b.meta))


def test_front_round_trips_through_json_parquet_and_csv(tmp_path):
    f = _front()
    paths = f.save(tmp_path / "front_fpga")
    assert sorted(p.name for p in paths) == ["front_fpga.csv", "front_fpga.json", "front_fpga.parquet"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    _assert_same_front(f, Front.load(tmp_path / "front_fpga.json"))
    from_parquet = Front.load(tmp_path / "front_fpga.parquet")
    _assert_same_front(f, from_parquet, history=False)
    assert from_parquet.meta == f.meta
    from_csv = Front.load(tmp_path / "front_fpga.csv")
    _assert_same_front(f, from_csv, history=False)
    assert pd.read_csv(tmp_path / "front_fpga.csv", nrows=0).columns[0] == "arch_str"


def test_csv_without_sibling_json_infers_objectives_from_unit_suffixes(tmp_path):
    f = _front()
    (path,) = f.save(tmp_path / "alone", formats=["csv"])
    loaded = Front.load(path)
    assert loaded.objectives == [*OBJECTIVES, "params_m"]
    pd.testing.assert_frame_equal(loaded.table, f.table)


def test_load_rejects_a_bad_extension(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        Front.load(tmp_path / "front.txt")


def test_rescore_adds_a_column_and_keeps_objectives():
    f = _front()
    true = f.table["proxy_err_pct"].fillna(50).to_numpy() + 1.0
    g = f.rescore("true_err_pct", true)
    assert g.objectives == f.objectives and "true_err_pct" not in f.table
    np.testing.assert_array_equal(g.table["true_err_pct"], true)
    pd.testing.assert_series_equal(g.table["is_pareto"], f.table["is_pareto"])
    with pytest.raises(ValueError):
        f.rescore("true_err_pct", true[:-1])


def _png_ok(path):
    assert path.exists() and path.stat().st_size > 5000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_every_plot_writes_a_png(tmp_path, close_figures):
    from hwnas.evolve import plot

    f = _front()
    g = f.rescore("true_err_pct", f.table["proxy_err_pct"].to_numpy() + 2.0)
    table = f.table
    exact = table[non_dominated_mask(table[OBJECTIVES].to_numpy())][OBJECTIVES]
    calls = {
        "f2d.png": lambda p: plot.plot_front_2d(f, "fpga_latency_ms", "proxy_err_pct", exact=exact, path=p),
        "f3d.png": lambda p: plot.plot_front_3d(f, "fpga_latency_ms", "params_m", "proxy_err_pct", path=p),
        "f3d_gen.png": lambda p: plot.plot_front_3d(f, "fpga_latency_ms", "params_m", "proxy_err_pct", path=p,
                                                    color_by="generation"),
        "gens.png": lambda p: plot.plot_generations(f, "fpga_latency_ms", "proxy_err_pct", every=2, path=p),
        "pvt.png": lambda p: plot.plot_proxy_vs_true(
            g, "proxy_err_pct", "true_err_pct", "fpga_latency_ms", path=p
        ),
        "grid.png": lambda p: plot.plot_grid(
            {"fpga": f, "edgegpu": g}, "proxy_err_pct", exact={"fpga": exact}, path=p
        ),
    }
    for name, call in calls.items():
        fig = call(tmp_path / name)
        assert fig is not None
        _png_ok(tmp_path / name)
    fig = plot.plot_front_2d(f, "fpga_latency_ms", "proxy_err_pct")
    _png_ok(plot.save_figure(fig, tmp_path / "sub" / "saved.png"))
    assert plot.axis_label("fpga_latency_ms") == "fpga latency [ms]"
    assert plot.axis_label("proxy_err_pct") == "proxy err [%]"
    with pytest.raises(ValueError, match="unknown column 'gen'.*generation"):
        plot.plot_front_3d(f, "fpga_latency_ms", "params_m", "proxy_err_pct", color_by="gen")


def test_legend_counts_only_the_archs_it_draws(close_figures):
    import numpy as np

    from hwnas.evolve import plot

    f = _front()
    f.table.loc[f.table.index[:3], "fpga_latency_ms"] = np.nan  # a device table without these archs
    missing = int(f.table[["fpga_latency_ms", "proxy_err_pct"]].isna().any(axis=1).sum())
    assert missing >= 3
    fig = plot.plot_front_2d(f, "fpga_latency_ms", "proxy_err_pct")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert f"evaluated ({len(f.table) - missing}; {missing} without values)" in labels


def test_front_modules_do_not_import_torch():
    import subprocess
    import sys

    code = "import sys, hwnas.evolve.pareto, hwnas.evolve.front, hwnas.evolve.plot; sys.exit('torch' in sys.modules)"
    repo = Path(__file__).resolve().parents[1]
    assert subprocess.run([sys.executable, "-c", code], cwd=repo).returncode == 0


def test_front_plots_zoom_to_the_fronts_and_mark_what_they_cut_off(close_figures):
    from hwnas.evolve import plot

    f = _front()
    table = f.table.copy()
    table.loc[table.index[-4:], "proxy_err_pct"] = 90.0  # cells with no path from input to output: the fastest
    table.loc[table.index[-4:], "fpga_latency_ms"] = table["fpga_latency_ms"].min() - 0.1
    g = hwnas_front(table)
    assert g.pareto()["proxy_err_pct"].max() == 90.0  # they are on the front
    fig = plot.plot_front_2d(g, "fpga_latency_ms", "proxy_err_pct")
    ax = fig.axes[0]
    rest = g.pareto()["proxy_err_pct"][lambda e: e < 90]
    low, high = ax.get_ylim()
    assert rest.max() < high < 90.0 and low <= rest.min()
    labels = ax.get_legend_handles_labels()[1]
    assert "above the axis (4)" in labels
    unzoomed = plot.plot_front_2d(g, "fpga_latency_ms", "proxy_err_pct", zoom=False)
    assert unzoomed.axes[0].get_ylim()[1] > 90.0


def hwnas_front(table):
    return Front.from_evaluations(table, OBJECTIVES)
