"""Per-choice cost tables: the additive hardware model of the coupled (FBNet-style) training modes.

FBNet (Wu et al., CVPR 2019) and LuffyNet make the latency of an architecture differentiable by assuming it
is a sum over its decisions: ``LAT(a) = intercept + sum_d cost[d][a_d]``; with each decision's choice drawn
with probabilities ``p_d``, the expected latency ``intercept + sum_d p_d . cost[d]`` is a smooth function
of the architecture parameters. A `ChoiceCosts` holds that table (decisions x choices), what it measures
(latency in ms, size in MB) and where it came from:

- from a per-block lookup table (`hardware.lut`; the glue that maps a space's blocks to its decisions
  lives outside this package), where the sum is the LUT's own assumption;
- from a per-arch table (an HW-NAS-Bench device, a user's own measurements), by least squares over the
  one-hot encoding of the decisions (`fit_choice_costs`), with the fit's quality reported: R^2 on the
  archs it was fitted on, and R^2 and Kendall's tau on held-out archs. On NB201 this is a per-op linear
  model with one coefficient per (edge, op).

Saved as JSON (atomically); loading checks the shape against the space's `num_choices`.

Imports nothing of ours but `hwnas.core`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hwnas.core.errors import CorruptFileError, UsageError
from hwnas.core.files import atomic_write_text
from hwnas.core.stats import rank_correlation


@dataclass
class ChoiceCosts:
    """Additive cost model: ``cost(arch) = intercept + sum_d costs[d][arch[d]]``."""

    costs: list[list[float]]
    intercept: float = 0.0
    metric: str = "latency"
    unit: str = "ms"
    source: str = ""
    fit: dict = field(default_factory=dict)  # quality of a least-squares fit (empty when given, not fitted)

    def __post_init__(self):
        self.costs = [[float(v) for v in row] for row in self.costs]
        self.intercept = float(self.intercept)
        bad = [v for row in self.costs for v in row if not np.isfinite(v)]
        if not self.costs or any(not row for row in self.costs) or bad or not np.isfinite(self.intercept):
            raise UsageError(f"per-choice {self.metric} table from {self.source or 'input'} needs finite values "
                             "for every choice of every decision")

    @property
    def num_choices(self) -> tuple[int, ...]:
        return tuple(len(row) for row in self.costs)

    def check(self, num_choices: Sequence[int], space: str = "the space") -> "ChoiceCosts":
        """This table, if it has one cost per choice of every decision of `num_choices`; else a one-line error."""
        if tuple(num_choices) != self.num_choices:
            raise UsageError(f"per-choice {self.metric} table {self.source or ''} has choices "
                             f"{list(self.num_choices)} per decision; {space} has {list(num_choices)}")
        return self

    def of(self, arch: Sequence[int]) -> float:
        """The model's cost of one arch (a choice index per decision)."""
        return self.intercept + sum(self.costs[d][int(c)] for d, c in enumerate(arch))

    def matrix(self, fill: float = 0.0) -> np.ndarray:
        """decisions x max(choices) array; entries past a decision's choices hold `fill`."""
        out = np.full((len(self.costs), max(self.num_choices)), fill, dtype=float)
        for d, row in enumerate(self.costs):
            out[d, :len(row)] = row
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_text(path, json.dumps(asdict(self), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ChoiceCosts":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: data[k] for k in ("costs", "intercept", "metric", "unit", "source", "fit") if k in data})
        except FileNotFoundError:
            raise UsageError(f"per-choice cost table {path} does not exist") from None
        except (ValueError, TypeError, KeyError, RecursionError) as e:
            raise CorruptFileError(f"{path} is not a per-choice cost table ({type(e).__name__}: {e})") from None


def one_hot(encodings: np.ndarray, num_choices: Sequence[int]) -> np.ndarray:
    """archs x sum(num_choices) 0/1 features, one block of columns per decision."""
    encodings = np.asarray(encodings, dtype=int)
    offsets = np.concatenate([[0], np.cumsum(num_choices)[:-1]])
    out = np.zeros((len(encodings), int(sum(num_choices))))
    rows = np.repeat(np.arange(len(encodings)), encodings.shape[1])
    out[rows, (encodings + offsets).reshape(-1)] = 1.0
    return out


def _r2(pred: np.ndarray, true: np.ndarray) -> float:
    ss = float(((true - true.mean()) ** 2).sum())
    return 1.0 - float(((true - pred) ** 2).sum()) / ss if ss > 0 else float("nan")


def fit_choice_costs(encodings: Sequence[Sequence[int]], values: Sequence[float], num_choices: Sequence[int],
                     holdout: float = 0.2, seed: int = 0, metric: str = "latency", unit: str = "ms",
                     source: str = "") -> ChoiceCosts:
    """Least-squares additive model of `values` (one per arch) over the one-hot choices of `encodings`.

    A random `holdout` share of the archs (seeded) is left out of the fit and scored (R^2, Kendall's tau);
    the model itself is then refitted on all archs. Each decision's costs are shifted so that its cheapest
    choice costs 0 (the intercept takes the rest): the one-hot columns of a decision sum to one, so only
    differences inside a decision are identified, and this makes the table readable.
    """
    x = np.asarray(encodings, dtype=int)
    y = np.asarray(values, dtype=float)
    if x.ndim != 2 or len(x) != len(y) or x.shape[1] != len(num_choices):
        raise UsageError(f"need one encoding of {len(num_choices)} decisions per value; got {x.shape} for {len(y)}")
    keep = np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(y) < 2 * (sum(num_choices) + 1):
        raise UsageError(f"fitting {sum(num_choices)} per-choice {metric} costs needs at least "
                         f"{2 * (sum(num_choices) + 1)} archs with a finite value; got {len(y)}")
    if ((x < 0) | (x >= np.asarray(num_choices))).any():
        raise UsageError("an encoding has a choice index outside its decision's choices")

    def solve(rows: np.ndarray) -> np.ndarray:
        design = np.hstack([np.ones((len(rows), 1)), one_hot(x[rows], num_choices)])
        return np.linalg.lstsq(design, y[rows], rcond=None)[0]

    def predict(beta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return beta[0] + one_hot(x[rows], num_choices) @ beta[1:]

    order = np.random.default_rng(seed).permutation(len(y))
    n_out = int(round(holdout * len(y)))
    fit = {"archs": int(len(y)), "holdout_archs": n_out}
    if n_out >= 2:
        train, test = order[n_out:], order[:n_out]
        beta = solve(train)
        pred = predict(beta, test)
        fit.update(holdout_r2=_r2(pred, y[test]), holdout_kendall=rank_correlation(pred, y[test])["kendall"])
    everything = np.arange(len(y))
    beta = solve(everything)
    fit["r2"] = _r2(predict(beta, everything), y)
    costs, intercept, start = [], float(beta[0]), 1
    for n in num_choices:
        row = beta[start:start + n]
        start += n
        intercept += float(row.min())
        costs.append((row - row.min()).tolist())
    return ChoiceCosts(costs, intercept, metric=metric, unit=unit, source=source, fit=fit)
