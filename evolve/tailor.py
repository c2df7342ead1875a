"""Hardware-tailored width choices (the HTAS idea): a width decision's candidate channel counts are not
equally good on a device, because kernels run in tiles, so latency grows in steps rather than smoothly.

For each place a space has a width decision: time the block over candidate counts x on the target, fit
the trend f(x) = k * x^a + b (least squares; a on a grid, k and b exact for each a), score each count by
f(x) - measured(x) (how much faster than the trend it runs: the top of a latency step scores high),
split the sorted candidates into g contiguous groups and keep the best-scoring count of each. The space
then offers those g counts instead of its uniform ones.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hwnas.core.files import read_json
from hwnas.core.errors import CorruptFileError, UsageError

EXPONENTS = np.round(np.arange(0.2, 3.0001, 0.01), 2)


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    """(k, a, b) minimising the squared error of k * x^a + b over `x`, `y` (a in 0.2..3)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3:
        raise UsageError(f"fitting k * x^a + b needs at least 3 points, got {len(x)}")
    best = (np.inf, 0.0, 1.0, float(np.mean(y)))
    for a in EXPONENTS:
        design = np.column_stack([x ** a, np.ones_like(x)])
        (k, b), *_ = np.linalg.lstsq(design, y, rcond=None)
        sse = float(np.sum((design @ np.array([k, b]) - y) ** 2))
        if sse < best[0]:
            best = (sse, float(k), float(a), float(b))
    return best[1], best[2], best[3]


def uniform_widths(candidates: Sequence[int], groups: int) -> list[int]:
    """The untailored choice: the middle count of each of `groups` contiguous groups."""
    parts = np.array_split(np.sort(np.asarray(candidates)), _check_groups(candidates, groups))
    return [int(p[(len(p) - 1) // 2]) for p in parts]


def _check_groups(candidates: Sequence[int], groups: int) -> int:
    if not 1 <= groups <= len(candidates):
        raise UsageError(f"--groups must be in 1..{len(candidates)} (the number of candidate widths), got {groups}")
    return groups


def tailor_widths(candidates: Sequence[int], latency_ms: Sequence[float], groups: int) -> dict:
    """Tailored counts for one width decision (see module docstring): returns {"chosen", "uniform",
    "fit": {"k", "a", "b"}, "score"} with `score` aligned to the sorted candidates."""
    if len(candidates) != len(latency_ms):
        raise UsageError(f"{len(candidates)} candidates but {len(latency_ms)} latencies")
    order = np.argsort(candidates)
    x = np.asarray(candidates, dtype=float)[order]
    y = np.asarray(latency_ms, dtype=float)[order]
    _check_groups(candidates, groups)
    k, a, b = fit_power_law(x, y)
    score = k * x ** a + b - y
    chosen = [int(x[idx[np.argmax(score[idx])]]) for idx in np.array_split(np.arange(len(x)), groups)]
    return {"candidates": x.astype(int).tolist(), "latency_ms": y.tolist(), "fit": {"k": k, "a": a, "b": b},
            "score": score.tolist(), "chosen": chosen, "uniform": uniform_widths(x.astype(int), groups)}


def tailor_space(space, latency: Callable, channels: int = 16, groups: int = 8,
                 input_shape: Sequence[int] = (1, 3, 32, 32), progress: bool = True, **probe_options) -> dict:
    """Tailor every width decision of `space` (one that has `width_probes`, e.g. mobilenet):
    `latency(module, input_shape) -> ms` times one block. Returns the report `hwnas space tailor` writes,
    whose "space_options" make the space use the tailored widths."""
    if not hasattr(space, "width_probes"):
        raise UsageError(f"space '{space.name}' has no width decision to tailor; tailorable: mobilenet")
    from tqdm.auto import tqdm

    probes = space.width_probes(channels, input_shape, **probe_options)
    total = sum(len(p["candidates"]) for p in probes)
    bar = tqdm(total=total, desc="tailor widths", unit="width", disable=not progress, leave=False)
    stages = []
    for p in probes:
        times = []
        for x in p["candidates"]:
            times.append(float(latency(*p["build"](x))))
            bar.update(1)
        stages.append({"stage": p["stage"], "width": p["width"], "resolution": p["resolution"],
                       **tailor_widths(p["candidates"], times, groups)})
    bar.close()
    # The space's own options (a custom `stages` layout) stay: the tailored widths only fit that layout.
    options = {**space.options, **space.tailored_options([s["chosen"] for s in stages], channels)}
    return {"space": space.name, "channels": channels, "groups": groups, "input_shape": list(input_shape),
            "space_options": options, "stages": stages}


def load_tailored(path: str | Path, space: str, channels: int) -> dict:
    """The space options in a `hwnas space tailor` report, checked against the space and C it is used with."""
    try:
        doc = read_json(path, "tailored widths file")
    except FileNotFoundError:
        raise FileNotFoundError(f"tailored widths file '{path}' not found (write one with `hwnas space tailor`)") from None
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"'{path}' is not a tailored widths file (bad JSON: {exc.msg})") from None
    if not isinstance(doc, dict) or "space_options" not in doc or "space" not in doc:
        raise CorruptFileError(f"'{path}' is not a tailored widths file (no 'space' / 'space_options')")
    if doc["space"] != space:
        raise UsageError(f"'{path}' tailors space '{doc['space']}', not '{space}'")
    if doc.get("channels") != channels:
        raise UsageError(f"'{path}' was tailored for C={doc.get('channels')}, not C={channels}")
    return dict(doc["space_options"])


def plot_tailoring(report: dict, path: str | Path) -> Path:
    """One panel per width decision: measured latency over candidate widths, the fitted trend, and the
    tailored (filled) vs uniform (hollow) picks. Written atomically."""
    from matplotlib.figure import Figure

    from hwnas.core.files import atomic_write

    stages = report["stages"]
    fig = Figure(figsize=(3.2 * len(stages), 3.0))
    axes = fig.subplots(1, len(stages), squeeze=False)
    for ax, st in zip(axes[0], stages):
        x, y = np.asarray(st["candidates"]), np.asarray(st["latency_ms"])
        f = st["fit"]
        ax.plot(x, y, ".-", color="0.6", lw=0.8, label="measured")
        ax.plot(x, f["k"] * x.astype(float) ** f["a"] + f["b"], "--", color="C0", lw=1, label="fit k x^a + b")
        pick = np.isin(x, st["chosen"])
        ax.plot(x[pick], y[pick], "o", color="C3", label="tailored")
        uni = np.isin(x, st["uniform"])
        ax.plot(x[uni], y[uni], "o", mfc="none", color="k", label="uniform")
        ax.set_title(f"stage {st['stage'] + 1}: width {st['width']}, {st['resolution']}x{st['resolution']}",
                     fontsize=9)
        ax.set_xlabel("expanded channels")
    axes[0][0].set_ylabel(f"latency (ms, {report.get('target', '')})")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    out = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    return out
