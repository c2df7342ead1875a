"""The decoupled-vs-coupled benchmark end to end on a tiny recipe: every method's picks, HV ratios and compute
are reported, with the exact command, and finished runs are reused."""
from __future__ import annotations

import pandas as pd


def test_coupled_benchmark_end_to_end(data_dir, tmp_path):
    from hwnas.benchmarks import coupled

    out = tmp_path / "coupled.md"
    argv = ["--devices", "fpga", "--runs", str(tmp_path / "runs"), "--epochs", "1", "--max-images", "128",
            "--channels", "4", "--fbnet-alphas", "0.2", "1.0", "--warmup-epochs", "0", "--budgets", "0.5", "1.0",
            "--accuracy",
            "proxy_err", "--pop-size", "8", "--generations", "2", "--data", str(data_dir), "--out", str(out)]
    assert coupled.main(argv) == 0
    text = out.read_text()
    assert text.count("python -m hwnas.benchmarks.coupled --devices fpga") == 1
    picks = pd.read_csv(out.with_suffix(".csv"))
    assert set(picks.method) == {"decoupled", "fbnet", "canas"} and len(picks) == 3 * 2
    full = picks[picks.budget_quantile == 1.0]  # every arch is within the whole range: each method picks one
    assert full.true_acc_pct.between(0, 100).all() and (full.regret_pts >= 0).all()
    for method in ("decoupled", "fbnet", "canas"):
        assert f"| fpga | {method} |" in text
    stamps = sorted((tmp_path / "runs").rglob("result.json"))
    assert len(stamps) == 1 + 2 + 1  # spos, two fbnet weights, canas
    mtimes = [p.stat().st_mtime_ns for p in stamps]
    assert coupled.main(argv) == 0  # reused, not retrained
    assert [p.stat().st_mtime_ns for p in stamps] == mtimes
    # the default accuracy side is an ensemble score, maximised: the pick is its best arch, not its worst
    # (which would be a cell that computes nothing, at chance accuracy)
    argv[argv.index("proxy_err")] = "default"
    assert coupled.main(argv) == 0
    picks = pd.read_csv(out.with_suffix(".csv"))
    pick = picks[(picks.method == "decoupled") & (picks.budget_quantile == 1.0)].iloc[0]
    sets = pd.read_csv(tmp_path / "coupled_archs.csv")
    mine = sets[(sets.method == "decoupled") & (sets.latency_ms <= pick.budget_ms)]
    assert not mine.score_lower_better.any()
    assert mine.set_index("arch_str").score[pick.arch].max() == mine.score.max()  # ties: any best one
