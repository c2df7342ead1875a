"""Ranking metrics on synthetic cases with known answers, and the benchmark end to end on a tiny supernet."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.ranking import ranking_metrics, sample_classes
from supernet.spaces import get_space


def test_identical_ranking_is_perfect():
    true = np.arange(200, dtype=float)
    m = ranking_metrics(true * 3 + 1, true)
    assert m["kendall_tau"] == pytest.approx(1) and m["spearman_rho"] == pytest.approx(1)
    assert m["kendall_top10pct"] == pytest.approx(1) and m["precision_at_5pct"] == 1
    assert m["top1_true"] == m["best_of_top10_true"] == m["oracle_best_true"] == 199


def test_reversed_ranking_is_minus_one():
    true = np.arange(100, dtype=float)
    m = ranking_metrics(-true, true)
    assert m["kendall_tau"] == pytest.approx(-1) and m["spearman_rho"] == pytest.approx(-1)
    assert m["precision_at_5pct"] == 0 and m["top1_true"] == 0 and m["best_of_top10_true"] == 9


def test_known_permutation_has_its_tau():
    # swapping two neighbours of 5 items: 9 concordant and 1 discordant pair -> tau = 0.8
    m = ranking_metrics([1, 2, 3, 5, 4], [1, 2, 3, 4, 5])
    assert m["kendall_tau"] == pytest.approx(0.8) and m["spearman_rho"] == pytest.approx(0.9)
    # the score's top-1 is the true second best
    assert m["top1_true"] == 4 and m["best_of_top10_true"] == 5


def test_precision_at_5pct_counts_the_overlap():
    true = np.arange(100, dtype=float)
    score = true.copy()
    score[[99, 98]] = -1  # the two best archs fall out of the score's top 5
    assert ranking_metrics(score, true)["precision_at_5pct"] == pytest.approx(3 / 5)


def test_nan_pairs_are_dropped_and_bad_shapes_refused():
    m = ranking_metrics([1, np.nan, 3, 4], [1, 2, 3, 4])
    assert m["n"] == 3 and m["kendall_tau"] == pytest.approx(1)
    with pytest.raises(ValueError, match="equally long"):
        ranking_metrics([1, 2, 3], [1, 2])


def test_sample_is_uniform_over_canonical_classes():
    space = get_space("nb201")
    archs = sample_classes(space, 300, seed=0)
    assert len(set(archs)) == 300 and all(space.canonical(a) == a for a in archs)
    assert sample_classes(space, 300, seed=0) == archs and len(sample_classes(space, None)) == 6466


def test_ranking_benchmark_end_to_end(tiny_run, tmp_path):
    from benchmarks.ranking import main as ranking_main

    run = tiny_run
    out = tmp_path / "ranking.md"
    args = ["--supernet", str(run), "--sample", "30", "--proxy", "recalibrate:32", "batch:32", "--calib-batches",
            "1", "--out", str(out)]
    assert ranking_main(args) == 0
    text = out.read_text()
    assert f"command: `python -m benchmarks.ranking {' '.join(args)}`" in text
    for score in ("proxy, BN recalibrate, 32 images", "proxy, BN batch, 32 images", "FLOPs (C=16, N=5)",
                  "params (C=16, N=5)"):
        assert f"| {score} |" in text
    import pandas as pd

    frame = pd.read_csv(out.with_suffix(".csv"))
    assert len(frame) == 30 and frame.true_acc.between(0, 100).all()
    assert {"proxy_spos_recalibrate_32", "proxy_spos_batch_32", "flops_m"} <= set(frame.columns)
    assert out.with_suffix(".png").stat().st_size > 0


def test_ranking_refuses_a_bad_proxy_setting(capsys):
    from benchmarks.ranking import main as ranking_main

    with pytest.raises(SystemExit):
        ranking_main(["--supernet", "runs/x", "--proxy", "recalibrate:many"])
    assert "'recalibrate:many' is not BN:IMAGES with BN one of recalibrate, batch, inherit" in capsys.readouterr().err
