"""The few-label ranker: it learns a perfect order from perfect labels, reads label files strictly, and serves as
the accuracy side of a search."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau

from hwnas.evolve.objectives import Cost, Direction, Objective, get_objective
from hwnas.evolve.ranker import FewLabelRanker, Labels, read_labels, relevance
from hwnas.evolve.sources import Sources
from hwnas.supernet.spaces import get_space

pytest.importorskip("lightgbm")
SPACE = get_space("nb201")


def _toy_objective(weights: np.ndarray) -> Objective:
    """A predictor whose value is a fixed weighted sum of the canonical encoding (higher = better)."""
    def fn(archs):
        return np.array([float(weights[np.arange(6), SPACE.encode(SPACE.canonical(a))].sum()) for a in archs])
    return Objective("toy", "", fn, "toy", Cost.TABLE, SPACE, Direction.MAXIMISE)


def test_relevance_grades_by_hand():
    assert relevance(np.array([10.0, 30.0, 20.0])).tolist() == [0, 30, 15]
    assert relevance(np.array([1.0, 1.0, 2.0]), grades=3).tolist() == [0, 0, 2]


def test_the_ranker_with_perfect_labels_on_a_toy_table_ranks_perfectly():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(6, 5))
    toy = _toy_objective(weights)
    archs = list(dict.fromkeys(SPACE.canonical(SPACE.sample(rng)) for _ in range(40)))[:30]
    truth = toy(archs)  # labels = exactly the toy predictor's order
    ranker = FewLabelRanker(SPACE, [toy], seed=0).fit(Labels(archs, truth, "toy"))
    score = ranker.score(archs)
    assert list(np.argsort(score)) == list(np.argsort(truth))  # every labelled arch in its place
    others = list(dict.fromkeys(SPACE.canonical(SPACE.sample(rng)) for _ in range(200)))
    assert kendalltau(ranker.score(others), toy(others))[0] > 0.8  # and unseen ones nearly so (trees: steps)
    # Deterministic for a seed, and isomorphic archs score the same.
    again = FewLabelRanker(SPACE, [toy], seed=0).fit(Labels(archs, truth, "toy"))
    np.testing.assert_array_equal(again.score(others), ranker.score(others))


def test_a_prior_is_where_boosting_starts():
    rng = np.random.default_rng(1)
    toy = _toy_objective(rng.normal(size=(6, 5)))
    archs = list(dict.fromkeys(SPACE.canonical(SPACE.sample(rng)) for _ in range(20)))
    ranker = FewLabelRanker(SPACE, [], prior=toy, prior_scale=2.0, n_estimators=1).fit(
        Labels(archs, np.zeros(len(archs)) + np.arange(len(archs)) % 2, "toy"))
    trees = ranker.model.predict(ranker.matrix(archs))
    np.testing.assert_allclose(ranker.score(archs), trees + 2.0 * toy(archs))


def test_label_files_are_read_strictly(tmp_path):
    good = tmp_path / "labels.csv"
    a = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    b = "|none~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    good.write_text(f"arch_str,accuracy\n{a},90\n{b},80\n{a},92\n")
    labels = read_labels(good, SPACE)
    assert len(labels.archs) == 2 and labels.accuracy.tolist() == [91.0, 80.0]  # duplicates averaged
    cases = {"arch_str,acc\nx,1\n": "lacks column.*accuracy.*it has arch_str, acc",
             f"arch_str,accuracy\n{a},nan\n{b},3\n": "row 2: accuracy 'nan' is not a finite number",
             f"arch_str,accuracy\n{a},1\n|bad~0|,2\n": "row 3: '|bad~0|' is not an arch of space 'nb201'",
             f"arch_str,accuracy\n{a},1\n": "holds 1 distinct arch"}
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.csv"
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_labels(path, SPACE)
    with pytest.raises(ValueError, match="does not exist"):
        read_labels(tmp_path / "none.csv", SPACE)


def test_ranker_objective_is_maximised_and_trained_on_the_users_labels(data_dir, tmp_path):
    from hwnas.benchmarks.tables.nb201_truth import NB201Truth

    truth = NB201Truth.load()
    from hwnas.supernet.zero_cost import ZeroCostSettings

    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(SPACE.canonical(SPACE.sample(rng)) for _ in range(50)))[:40]
    strs = [SPACE.to_str(a) for a in archs]
    path = tmp_path / "labels.csv"
    path.write_text("arch_str,accuracy\n" + "".join(f"{s},{v}\n" for s, v in zip(strs, truth.accuracy(strs))))
    sources = Sources(progress=False, labels=str(path), ranker_features=["zc:live_convs", "zc:conv_depth"],
                      zero_cost=ZeroCostSettings(zc_channels=4, zc_batch_size=16))  # small: the prior's signals
    obj = get_objective("ranker", sources)
    assert obj.direction is Direction.MAXIMISE and "40 labels" in obj.source
    scores = obj(archs)
    assert kendalltau(scores, truth.accuracy(strs))[0] > 0.5
    with pytest.raises(ValueError, match="needs labelled archs"):
        get_objective("ranker", Sources(progress=False))
