"""`ranker`: a few-label ranker's score (`hwnas.evolve.ranker`), trained on the user's labelled archs
(`--labels FILE.csv`) over label-free predictors; larger = predicted better, so it is maximised."""
from __future__ import annotations

from .base import Cost, Direction, register_objective


def _status(sources) -> str:
    return (f"LightGBM LambdaRank on {sources.labels_path}" if sources.labels_path
            else "needs labelled archs (--labels FILE.csv with arch_str,accuracy)")


@register_objective("ranker", unit="", cost=Cost.COUNTER, direction=Direction.MAXIMISE, needs=("ranker",),
                    status=_status, doc="a ranker trained on a few labelled archs (--labels FILE.csv)")
def _ranker(arg, space, ranker):
    source = (f"LightGBM LambdaRank on {len(ranker.labels.archs)} labels from {ranker.labels.source}, features "
              f"{', '.join(f.name for f in ranker.features)}")
    return ranker.score, source, max((f.cost for f in ranker.features), default=Cost.COUNTER)
