"""Per-choice cost tables (hardware.choice_costs): the least-squares fit recovers an additive model exactly,
reports its held-out quality, and tables round-trip through their file with clear errors on bad input."""
from __future__ import annotations

import numpy as np
import pytest

from hwnas.core.errors import CorruptFileError, UsageError
from hwnas.hardware.choice_costs import ChoiceCosts, fit_choice_costs, one_hot


def test_one_hot_marks_one_column_per_decision():
    x = one_hot(np.array([[0, 2], [1, 0]]), (2, 3))
    assert x.tolist() == [[1, 0, 0, 0, 1], [0, 1, 1, 0, 0]]


def test_an_additive_table_is_recovered_exactly_with_perfect_holdout_scores():
    rng = np.random.default_rng(0)
    num_choices = (5,) * 6  # NB201: six edges, five ops
    true = ChoiceCosts([[0.0, *rng.uniform(0, 2, 4)] for _ in num_choices], intercept=3.0)
    archs = rng.integers(0, 5, size=(300, 6))
    fitted = fit_choice_costs(archs, [true.of(a) for a in archs], num_choices, source="toy")
    np.testing.assert_allclose(fitted.matrix(), true.matrix() - true.matrix().min(1, keepdims=True), atol=1e-9)
    for a in archs[:20]:
        assert fitted.of(a) == pytest.approx(true.of(a), abs=1e-9)
    assert fitted.fit["r2"] == pytest.approx(1.0) and fitted.fit["holdout_r2"] == pytest.approx(1.0)
    assert fitted.fit["holdout_kendall"] == pytest.approx(1.0) and fitted.fit["holdout_archs"] == 60
    assert all(min(row) == 0.0 for row in fitted.costs)  # each decision's cheapest choice is the reference


def test_a_non_additive_table_reports_a_worse_holdout_fit():
    rng = np.random.default_rng(1)
    archs = rng.integers(0, 3, size=(200, 4))
    values = (archs == 2).sum(1) ** 2 + rng.normal(0, 0.5, 200)  # interaction: not a sum over decisions
    fitted = fit_choice_costs(archs, values, (3,) * 4)
    assert 0.3 < fitted.fit["holdout_r2"] < 0.99


def test_tables_round_trip_and_refuse_bad_input(tmp_path):
    table = ChoiceCosts([[0.0, 1.5], [0.0, 0.25, 2.0]], intercept=1.0, source="lut.json",
                        fit={"r2": 0.9})
    path = table.save(tmp_path / "costs.json")
    again = ChoiceCosts.load(path)
    assert again == table and again.of((1, 2)) == 4.5
    assert again.check((2, 3)) is again
    with pytest.raises(UsageError, match=r"has choices \[2, 3\] per decision; nb201 has \[5, 5\]"):
        again.check((5, 5), "nb201")
    with pytest.raises(UsageError, match="finite values"):
        ChoiceCosts([[0.0, float("inf")]])
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(CorruptFileError, match="not a per-choice cost table"):
        ChoiceCosts.load(tmp_path / "bad.json")
    with pytest.raises(UsageError, match="does not exist"):
        ChoiceCosts.load(tmp_path / "missing.json")
    with pytest.raises(UsageError, match="needs at least 12 archs"):
        fit_choice_costs([[0, 1]] * 5, [1.0] * 5, (2, 3))
