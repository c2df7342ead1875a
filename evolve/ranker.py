"""A few-label ranker: when a user has trained some archs (`hwnas retrain`, or the NB201 table in benchmarks),
learn to rank the rest from cheap features of each arch.

`FewLabelRanker` fits a LightGBM LambdaRank model (Burges, 2010; LightGBM, Ke et al., NeurIPS 2017): a
gradient-boosted tree ensemble trained on pairwise ranking swaps weighted by the change in NDCG, so it is
trained to order the labelled archs, best first, rather than to regress their accuracy. Features per arch:

- the one-hot encoding of its canonical form (so isomorphic archs get the same features and score);
- accuracy predictors that need no labels, each oriented so that larger = predicted better: the zero-cost
  signals and path features (`zc:...`), and the supernet proxy when a supernet is given (`proxy_err`).

With tens of labels a LambdaRank model cannot learn much from the encoding alone, and trees add features
badly; so boosting starts from a label-free prior (`prior`, by default the label-free default proxy, scaled
by `prior_scale`: LightGBM's `init_score`), and the trees learn a correction to it (the ablation in
`benchmarks/results/ranking.md` measures the ranker without the prior). LightGBM is an optional extra
(`pip install 'hwnas[ranker]'`), used through its native API: scikit-learn has no ranking objective, and a
hand-written pairwise ranker would be a worse copy of LambdaRank.

Labels come from a CSV with columns `arch_str` and `accuracy` (`read_labels`); any scale where higher is
better works, because only their order is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from hwnas.core.errors import UsageError
from hwnas.supernet.spaces.base import Arch, SearchSpace

from .objectives import Objective

#: label-free features the ranker uses by default (a supernet's `proxy_err` is added when one is given)
DEFAULT_FEATURES = ("zc:live_convs", "zc:conv_depth", "zc:live_flops", "zc:live_params", "zc:synflow", "zc:naswot",
                    "zc:jacob_cov", "zc:zico")

#: weight of the label-free prior's score (a sum of log percentiles) in the boosting's starting score
PRIOR_SCALE = 3.0

#: relevance grades the accuracies are binned into for LambdaRank (LightGBM's default gains cover 0..30)
GRADES = 31


@dataclass
class Labels:
    """Labelled archs: canonical archs and their accuracy (higher = better)."""

    archs: list[Arch]
    accuracy: np.ndarray
    source: str


def read_labels(path: str | Path, space: SearchSpace) -> Labels:
    """Read `arch_str,accuracy` rows; isomorphic duplicates are averaged. UsageError naming the problem for a
    missing file or column, an arch string the space cannot parse, a non-finite accuracy, or fewer than 2
    distinct archs."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"labels file '{path}' does not exist; give a CSV with columns arch_str,accuracy")
    try:
        table = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"labels file '{path}' is not a readable CSV: {exc}") from None
    missing = [c for c in ("arch_str", "accuracy") if c not in table.columns]
    if missing:
        raise UsageError(f"labels file '{path}' lacks column(s) {', '.join(missing)}; it has "
                         f"{', '.join(map(str, table.columns)) or 'none'} (need arch_str,accuracy)")
    acc = pd.to_numeric(table["accuracy"], errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(acc))
    if len(bad):
        raise UsageError(f"labels file '{path}', row {bad[0] + 2}: accuracy '{table['accuracy'].iloc[bad[0]]}' is not "
                         "a finite number")
    keys: dict[str, list[float]] = {}
    for row, (text, a) in enumerate(zip(table["arch_str"], acc), start=2):
        try:
            arch = space.canonical(space.from_str(str(text)))
        except (ValueError, KeyError, IndexError) as exc:
            raise UsageError(f"labels file '{path}', row {row}: '{text}' is not an arch of space '{space.name}' "
                             f"({exc})") from None
        keys.setdefault(space.to_str(arch), []).append(float(a))
    if len(keys) < 2:
        raise UsageError(f"labels file '{path}' holds {len(keys)} distinct arch(s); a ranker needs at least 2")
    archs = [space.from_str(k) for k in keys]
    return Labels(archs, np.array([np.mean(v) for v in keys.values()]), str(path))


def relevance(accuracy: np.ndarray, grades: int = GRADES) -> np.ndarray:
    """Integer relevance grades 0..grades-1 from accuracies by their rank (ties share a grade): the best arch
    gets the top grade, the worst 0."""
    from scipy.stats import rankdata

    r = rankdata(accuracy, method="average")
    span = max(len(accuracy) - 1, 1)
    return np.floor((r - 1) / span * (grades - 1) + 1e-9).astype(int)


class FewLabelRanker:
    """LambdaRank over an arch's canonical one-hot encoding and its label-free predictors (`features`: objectives,
    each oriented higher = better), boosted from `prior_scale` x the `prior` objective's score when one is
    given. `fit(labels)` then `score(archs)` (higher = predicted better)."""

    def __init__(self, space: SearchSpace, features: Sequence[Objective], prior: Objective | None = None,
                 prior_scale: float = PRIOR_SCALE, seed: int = 0, n_estimators: int = 300):
        self.space, self.features, self.seed, self.n_estimators = space, list(features), seed, n_estimators
        self.prior, self.prior_scale = prior, prior_scale
        self.model, self.labels = None, None

    def _prior(self, archs: Sequence[Arch]) -> np.ndarray:
        if self.prior is None:
            return np.zeros(len(archs))
        return self.prior_scale * -self.prior.direction.sign * self.prior([self.space.canonical(a) for a in archs])

    def matrix(self, archs: Sequence[Arch]) -> np.ndarray:
        """Feature rows: one-hot canonical encoding, then each predictor (NaN where it has no value)."""
        canon = [self.space.canonical(a) for a in archs]
        k = np.array(self.space.num_choices)
        onehot = np.zeros((len(canon), int(k.sum())))
        offsets = np.concatenate([[0], np.cumsum(k)[:-1]])
        for i, a in enumerate(canon):
            onehot[i, offsets + np.asarray(self.space.encode(a))] = 1.0
        cols = [-f.direction.sign * f(canon) for f in self.features]
        return np.column_stack([onehot, *cols]) if cols else onehot

    def fit(self, labels: Labels) -> "FewLabelRanker":
        try:
            import lightgbm
        except ImportError:
            raise UsageError("the few-label ranker needs LightGBM: pip install 'hwnas[ranker]' (or lightgbm)") from None
        X = self.matrix(labels.archs)
        n = len(labels.archs)
        # Small-data settings: with 20 labels LightGBM's defaults (20 rows per leaf) would never split. The native
        # API, not LGBMRanker, so that scikit-learn is not needed.
        params = {"objective": "lambdarank", "learning_rate": 0.05, "num_leaves": 7,
                  "min_data_in_leaf": max(2, min(20, n // 10)), "min_sum_hessian_in_leaf": 1e-6,
                  "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8, "seed": self.seed,
                  "deterministic": True, "force_row_wise": True, "num_threads": 1, "verbose": -1,
                  "lambdarank_truncation_level": n, "label_gain": list(range(GRADES))}
        data = lightgbm.Dataset(X, relevance(labels.accuracy), group=[n], init_score=self._prior(labels.archs),
                                params={"min_data_in_bin": 1, "verbose": -1})
        self.model = lightgbm.train(params, data, num_boost_round=self.n_estimators)
        self.labels = labels
        return self

    def score(self, archs: Sequence[Arch]) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("FewLabelRanker.score before fit")
        if not len(archs):
            return np.zeros(0)
        return np.asarray(self.model.predict(self.matrix(archs)), dtype=float) + self._prior(archs)


def feature_names(supernet: bool) -> list[str]:
    """The ranker's default predictors: the zero-cost signals and path features, plus `proxy_err` with a supernet."""
    return [*DEFAULT_FEATURES, *(["proxy_err"] if supernet else [])]
