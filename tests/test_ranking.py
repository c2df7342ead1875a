"""Ranking metrics on synthetic cases with known answers, and the benchmark end to end on a tiny supernet."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hwnas.evolve.ranking import ranking_metrics, sample_classes
from hwnas.supernet.spaces import get_space


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
    from hwnas.benchmarks.ranking import main as ranking_main

    run = tiny_run
    out = tmp_path / "ranking.md"
    # A reference whose scores are the ground truth itself must rank perfectly, whichever format it comes in.
    from hwnas.benchmarks.tables.nb201_truth import NB201Truth

    truth = NB201Truth.load().frame
    exact_csv = tmp_path / "exact.csv"
    truth.rename(columns={"cifar10": "score"})[["arch_str", "score"]].to_csv(exact_csv, index=False)
    reversed_json = tmp_path / "reversed.json"
    reversed_json.write_text(json.dumps({_genotype_key(a): -acc for a, acc in zip(truth.arch_str, truth.cifar10)}))
    args = ["--supernet", str(run), "--sample", "30", "--proxy", "recalibrate:32", "batch:32", "--calib-batches",
            "1", "--reference", f"exact={exact_csv}", f"reversed={reversed_json}", "--out", str(out)]
    assert ranking_main(args) == 0
    text = out.read_text()
    assert f"command: `python -m hwnas.benchmarks.ranking {' '.join(args)}`" in text
    for score in ("proxy, BN recalibrate, 32 images", "proxy, BN batch, 32 images", "FLOPs (C=16, N=5)",
                  "params (C=16, N=5)", "scores in exact.csv", "scores in reversed.json"):
        assert f"| {score} |" in text
    assert "| exact | reference | scores in exact.csv | 30 | 1 | 1 |" in text
    assert "| reversed | reference | scores in reversed.json | 30 | -1 | -1 |" in text
    import pandas as pd

    frame = pd.read_csv(out.with_suffix(".csv"))
    assert len(frame) == 30 and frame.true_acc.between(0, 100).all()
    assert {"proxy_spos_recalibrate_32", "proxy_spos_batch_32", "flops_m", "reference_exact"} <= set(frame.columns)
    assert out.with_suffix(".png").stat().st_size > 0


def test_ranking_refuses_a_bad_proxy_setting(capsys):
    from hwnas.benchmarks.ranking import main as ranking_main

    with pytest.raises(SystemExit):
        ranking_main(["--supernet", "runs/x", "--proxy", "recalibrate:many"])
    assert "'recalibrate:many' is not BN:IMAGES with BN one of recalibrate, batch, inherit" in capsys.readouterr().err


def _genotype_key(arch_str: str) -> str:
    """The few-shot NAS code's key for an arch: str() of its genotype as a list of per-node tuples."""
    nodes = [tuple((op, int(src)) for op, src in (t.split("~") for t in node.strip("|").split("|")))
             for node in arch_str.split("+")]
    return str(nodes)


def test_reference_scores_read_both_formats(tmp_path):
    from hwnas.benchmarks.tables.reference_scores import genotype_to_arch_str, load_reference_scores, scores_for

    arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    key = "[(('nor_conv_3x3', 0),), (('none', 0), ('skip_connect', 1)), (('avg_pool_3x3', 0), ('nor_conv_1x1', 1), " \
          "('none', 2))]"
    assert _genotype_key(arch) == key and genotype_to_arch_str(key) == arch and genotype_to_arch_str(arch) == arch
    (tmp_path / "a.json").write_text(json.dumps({key: 91.5}))
    (tmp_path / "b.csv").write_text(f"arch_str,acc\n{arch},88.0\n")
    assert load_reference_scores(tmp_path / "a.json") == {arch: 91.5}
    assert load_reference_scores(tmp_path / "b.csv") == {arch: 88.0}
    with pytest.raises(ValueError, match="has no score for 1 of 2 archs"):
        scores_for({arch: 1.0}, [arch, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "a")
    (tmp_path / "c.json").write_text(json.dumps({"conv everywhere": 1.0}))
    with pytest.raises(ValueError, match="neither an NB201 arch string nor a genotype list"):
        load_reference_scores(tmp_path / "c.json")


@pytest.mark.parametrize("ref, message", [
    ("noequals.json", "'noequals.json' is not NAME=FILE"),
    ("x=missing.json", "--reference x: reference scores 'missing.json' not found"),
])
def test_ranking_refuses_a_bad_reference(ref, message, capsys):
    from hwnas.benchmarks.ranking import main as ranking_main

    with pytest.raises(SystemExit) as exc:
        ranking_main(["--supernet", "runs/x", "--sample", "5", "--reference", ref])
    assert message in (str(exc.value.code) + capsys.readouterr().err)


def test_ranking_refuses_a_folder_that_is_not_a_run(tmp_path):
    from hwnas.benchmarks.ranking import main as ranking_main

    with pytest.raises(SystemExit, match="is not a trained run folder \\(no config.json\\)"):
        ranking_main(["--supernet", str(tmp_path), "--sample", "5"])


def test_regret_by_hand():
    from hwnas.evolve.ranking import regret

    true = [90.0, 80.0, 95.0, 70.0]
    cost = [1.0, 1.0, 2.0, 3.0]
    # budgets: the 50% and 100% quantiles of cost, 1.5 and 3. Score 4,3,2,1 picks arch 0 in both: within 1.5 it
    # is the best (regret 0); within 3 arch 2 is better by 5
    assert regret([4, 3, 2, 1], true, cost, quantiles=[0.5, 1.0]) == {"mean_regret": 2.5, "max_regret": 5.0,
                                                                       "budgets": 2}
    got = regret([1, 3, 2, 4], true, cost, quantiles=[0.5, 1.0])
    # within 1.5 the score picks arch 1 (80; best 90): 10; within 3 it picks arch 3 (70; best 95): 25
    assert got == {"mean_regret": 17.5, "max_regret": 25.0, "budgets": 2}
    perfect = regret(true, true, cost)
    assert perfect["mean_regret"] == 0 and perfect["budgets"] == 20


def test_tau_within_latency_classes_by_hand():
    from hwnas.evolve.ranking import tau_within_classes

    cost = [1, 1, 1, 2, 2, 5]
    true = [1, 2, 3, 1, 2, 9]
    # class 1 (3 archs) ranked perfectly (tau 1), class 2 (2 archs) reversed (tau -1); the lone arch is left out
    assert tau_within_classes([1, 2, 3, 5, 4, 0], true, cost) == pytest.approx((3 * 1 - 2 * 1) / 5)
    assert np.isnan(tau_within_classes([1, 2], [1, 2], [1, 2]))


def test_ranking_benchmark_ranks_zero_cost_signals_with_regret_per_device(data_dir, tmp_path):
    from hwnas.benchmarks.ranking import main as ranking_main

    out = tmp_path / "zc.md"
    args = ["--sample", "12", "--zero-cost", "live_convs", "snip", "--zc-channels", "4", "--zc-batch-size", "8",
            "--out", str(out)]
    assert ranking_main(args) == 0
    text = out.read_text()
    assert "| - | zero-cost | zc:live_convs | 12 |" in text and "| - | zero-cost | zc:snip | 12 |" in text
    assert "## Regret per device" in text and "| true_acc | 0 | 0 | 0 | 0 | 0 | 0 |" in text
    frame = pd.read_csv(out.with_suffix(".csv"))
    assert {"zc_live_convs", "zc_snip", "true_acc"} <= set(frame.columns) and len(frame) == 12
    # each score against the targets: its tau, and its worst device's mean regret from the per-device table
    targets, regrets = text.split("## Targets")[1].split("## Regret per device")
    regrets = regrets.split("## Kendall tau inside")[0]
    rows = {line.strip("| ").split(" | ")[0]: line.strip("| ").split(" | ") for line in regrets.splitlines()
            if line.startswith("| ")}
    for label, column in (("zc:snip", "zc_snip"), ("FLOPs (C=16, N=5)", "flops_m")):
        line = next(li for li in targets.splitlines() if li.startswith(f"| {label} |")).strip("| ").split(" | ")
        worst = max(float(v) for v in rows[column][1:])
        assert float(line[3]) == pytest.approx(worst, abs=0.006)
        assert line[4] == ("met" if worst <= 0.5 else f"missed by {worst - 0.5:.2f}")
        assert line[2] == "met" or line[2].startswith("missed by ")


def test_front_regret_by_hand():
    from hwnas.evolve.ranking import front_regret

    # The space: costs 1..4 with true accuracies 50, 70, 60, 90; the front holds the archs of cost 1 and 3.
    space_true, space_cost = [50, 70, 60, 90], [1, 2, 3, 4]
    r = front_regret([0.1, 0.9], [50, 60], [1, 3], space_true, space_cost, quantiles=[0.0, 0.5, 1.0])
    # budgets 1, 2.5, 4: best within 50, 70, 90; the front's picks 50, 50 (cost 3 is over 2.5), 60
    assert r == {"mean_regret": pytest.approx((0 + 20 + 30) / 3), "max_regret": 30.0, "uncovered": 0}
    r = front_regret([1.0], [60], [3], space_true, space_cost, quantiles=[0.0, 1.0])
    assert r["uncovered"] == 1 and r["mean_regret"] == 30.0


def test_ranking_benchmark_chooses_ensembles_on_one_half_and_sweeps_labels(tiny_run, tmp_path):
    pytest.importorskip("lightgbm")
    import pandas as pd

    from hwnas.benchmarks import combine
    from hwnas.benchmarks.ranking import main as ranking_main

    out, scores = tmp_path / "ranking.md", tmp_path / "scores.csv"
    args = ["--supernet", str(tiny_run), "--sample", "40", "--proxy", "recalibrate:32", "--calib-batches", "1",
            "--zero-cost", "naswot", "jacob_cov", "live_flops", "live_convs", "--zc-channels", "4", "--zc-batch-size",
            "16", "--max-members", "2", "--label-counts", "0", "20", "--label-seeds", "0", "1", "--scores",
            str(scores), "--default-proxy", "--out", str(out)]
    assert ranking_main(args) == 0
    text = out.read_text()
    for section in ("## Label-free ensembles", "### Ablation: what each member of the default adds",
                    "## Few labels: the ranker", "### Ablation of the ranker at 20 labels"):
        assert section in text
    assert "| default: ensemble:proxy_err+zc:naswot+zc:jacob_cov+zc:live_flops |" in text
    table = pd.read_csv(scores)
    assert len(table) == 40 and {"arch_str", "default", "ensemble_chosen", "ranker_20"} <= set(table.columns)
    frame = pd.read_csv(out.with_suffix(".csv"))
    chosen = next(line for line in text.splitlines() if line.startswith("Chosen: `")).split("`")[1]
    select, _ = combine.halves(40, 0)
    assert select.sum() == 20
    members = chosen.split("+")
    assert all(m in ("proxy_err", "zc:naswot", "zc:jacob_cov", "zc:live_flops", "zc:live_convs") for m in members)
    assert np.isfinite(frame["default"]).all() and np.isfinite(frame["ensemble_chosen"]).all()
    # --default-proxy: the supernet's own default proxy, here the same supernet and settings as `default`
    np.testing.assert_allclose(frame["ensemble_default_spos_recalibrate_32"], frame["default"])


def test_the_choice_rule_reads_the_selection_half_only():
    import pandas as pd

    from hwnas.benchmarks.combine import choose

    t = pd.DataFrame({"members": ["a", "b", "c"], "size": [1, 1, 2],
                      "kendall_tau_select": [0.72, 0.69, 0.71], "worst_regret_select": [0.4, 0.3, 0.45],
                      "kendall_tau_test": [0.1, 0.9, 0.9], "worst_regret_test": [9.0, 0.0, 0.0]})
    assert choose(t, 0.70, 0.5)["members"] == "a"  # meets both targets on the selection half; its test half is bad
    t.loc[0, "worst_regret_select"] = 0.9  # now none meets both: lowest regret within 0.02 of the best tau (<= 1.0)
    assert choose(t, 0.70, 0.5)["members"] == "c"
