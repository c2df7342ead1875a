"""Per-choice latency tables fitted to a device's per-arch table, for the coupled (FBNet-style) modes.

`hwnas search` reads a device's latency per arch (HW-NAS-Bench, a user's table); FBNet's loss needs it per
choice of every decision instead. `fit_target_costs` reads the target's latency for every arch the table
has (NB201: all 15,625 strings) and fits the additive per-(edge, op) model by least squares
(`hardware.choice_costs.fit_choice_costs`), with its R^2 and held-out Kendall tau: how far the FBNet
assumption (latency is a sum over decisions) holds on that device.
"""
from __future__ import annotations

import numpy as np

from hwnas.core.errors import UsageError
from hwnas.hardware.choice_costs import ChoiceCosts, fit_choice_costs

from .sources import Sources


def fit_target_costs(sources: Sources, target: str, holdout: float = 0.2, seed: int = 0) -> ChoiceCosts:
    """Per-choice latency of `target` (an HW-NAS-Bench device or a `--device-table` name) for `sources`' space."""
    name = sources.target_objective(target)
    if name.startswith(("measured_latency:", "remote_latency:")) or name == "lut_latency":
        raise UsageError(f"target '{target}' is timed, not tabulated: for fbnet build a lookup table "
                         "(`hwnas lut build`) and pass it as --latency-table")
    space = sources.space
    if not hasattr(space, "all_archs"):
        raise UsageError(f"space '{space.name}' has no per-arch device tables; use a lookup table "
                         "(`hwnas lut build`) as --latency-table")
    archs = space.all_archs()
    values = np.asarray(sources.objective(name)(archs), dtype=float)
    if not np.isfinite(values).any():
        raise UsageError(f"target '{target}' has no finite latency for any arch of '{space.name}'")
    return fit_choice_costs(archs, values, space.num_choices, holdout=holdout, seed=seed,
                            unit="ms", source=f"{target} ({name}), per-choice least squares")
