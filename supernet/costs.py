"""Per-choice cost tables of a search space for the coupled training modes (fbnet, canas): model size and
FLOPs from the space's own subnets, latency from a lookup table or a per-choice table handed in.

Each is a `hardware.choice_costs.ChoiceCosts` (an intercept plus one cost per choice of every decision). Size
and FLOPs are fitted by least squares on random subnets' counts; both are sums over the blocks a subnet
holds, so the fits are exact (their R^2 is reported in the table).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwnas.core.errors import UsageError
from hwnas.hardware.choice_costs import ChoiceCosts, fit_choice_costs

BYTES_PER_PARAM = 4  # float32 weights


def _counted_costs(space, count, channels: int, cells: int, num_classes: int, seed: int, metric: str,
                   unit: str, what: str) -> ChoiceCosts:
    """Per-choice table of a count that is a sum over a subnet's blocks (`count(subnet)`), fitted by least
    squares on random subnets at this size: exact for such counts (R^2 1)."""
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(2 * (sum(space.num_choices) + 1))]
    values = [count(space.build_subnet(a, channels=channels, cells=cells, num_classes=num_classes)) for a in archs]
    return fit_choice_costs(archs, values, space.num_choices, holdout=0.0, metric=metric, unit=unit,
                            source=f"{space.name} subnet {what} at C={channels}, N={cells}")


def size_costs(space, channels: int, cells: int, num_classes: int = 10, seed: int = 0) -> ChoiceCosts:
    """Per-choice model size (MB of float32 parameters) of `space` at this size."""
    return _counted_costs(space, lambda m: sum(p.numel() for p in m.parameters()) * BYTES_PER_PARAM / 1e6,
                          channels, cells, num_classes, seed, "size", "MB", "parameters")


def latency_costs(path: str, space, seed: int = 0) -> ChoiceCosts:
    """The per-choice latency table in `path`: a per-choice cost table as it is, or a `hwnas lut build` table
    turned into one by fitting its per-arch predictions (the sum of the arch's blocks) on random archs; a
    LUT's sum is additive over decisions, so the fit is exact, and its R^2 says so."""
    from hwnas.hardware.lut import LatencyTable

    text = Path(path).expanduser().read_text(encoding="utf-8", errors="replace")
    try:
        is_costs = "costs" in json.loads(text)
    except (ValueError, TypeError, RecursionError):
        is_costs = False
    if is_costs:
        return ChoiceCosts.load(path).check(space.num_choices, space.name)
    table = LatencyTable.load(path)
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(4 * (sum(space.num_choices) + 1))]
    try:
        values = [table.predict(space.arch_blocks(a)) for a in archs]
    except (KeyError, UsageError) as e:
        raise UsageError(f"latency table {path} does not cover space '{space.name}' ({e})") from None
    return fit_choice_costs(archs, values, space.num_choices, seed=seed, source=f"LUT {path}")


def flops_costs(space, channels: int, cells: int, num_classes: int = 10, seed: int = 0) -> ChoiceCosts:
    """Per-choice MFLOPs of `space` at this size (batch 1, 32x32 input, `hardware.counters.flops_m`)."""
    from hwnas.hardware.counters import flops_m

    return _counted_costs(space, lambda m: flops_m(m, (1, 3, 32, 32)), channels, cells, num_classes, seed,
                          "flops", "MFLOPs", "FLOPs")
