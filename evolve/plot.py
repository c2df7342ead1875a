"""Plots of Pareto fronts: 2-D and 3-D fronts, the front per generation, proxy vs true accuracy, a per-device
grid. Every function returns the matplotlib Figure, draws into `ax` when given, and saves atomically to
`path` when given. matplotlib is imported lazily (headless machines fall back to Agg by themselves).

Pure numpy/pandas/matplotlib: must not import torch.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from hwnas.core.files import atomic_write

from hwnas.core.errors import UsageError

from .pareto import non_dominated_mask

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .front import Front

#: Column-name unit suffix -> how the unit is written on an axis (matched case-insensitively).
UNIT_LABELS = {
    "pct": "%", "ms": "ms", "us": "µs", "s": "s", "mj": "mJ", "j": "J", "mw": "mW", "w": "W",
    "mb": "MB", "kb": "KB", "m": "M", "mflops": "MFLOPs", "gflops": "GFLOPs",
}
FOUND_COLOR = "tab:blue"
GREY = "0.75"


def axis_label(column: str) -> str:
    """'fpga_latency_ms' -> 'fpga latency [ms]'; 'proxy_err_pct' -> 'proxy err [%]'; no unit: underscores
    become spaces."""
    name, _, unit = column.rpartition("_")
    if name and unit.lower() in UNIT_LABELS:
        return f"{name.replace('_', ' ')} [{UNIT_LABELS[unit.lower()]}]"
    return column.replace("_", " ")


def save_figure(fig: "Figure", path: str | Path, dpi: int = 150) -> Path:
    """Save `fig` to `path` atomically (temp file in the same folder, then `os.replace`); the format follows
    the extension (.png, .pdf, .svg). Returns the path."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    atomic_write(path, lambda tmp: write_figure(fig, tmp, fmt, dpi))
    return path


def write_figure(fig: "Figure", path: str | Path, fmt: str, dpi: int = 150) -> None:
    """`fig` written to `path` in format `fmt` as hwnas saves every plot (not atomic by itself)."""
    fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight")


def _new_axes(ax, **subplot_kw):
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2), subplot_kw=subplot_kw or None)
    return fig, ax


def _front_2d(df: pd.DataFrame, x: str, y: str, directions: dict[str, str] | None = None) -> pd.DataFrame:
    """Rows of `df` non-dominated in the (x, y) projection (a column is minimised unless `directions` says
    "max"), sorted by x (then y)."""
    signs = np.array([-1.0 if (directions or {}).get(c) == "max" else 1.0 for c in (x, y)])
    xy = df[[x, y]].to_numpy(dtype=float) * signs
    return df[non_dominated_mask(xy)].sort_values([x, y], kind="stable")


def _step(ax, df: pd.DataFrame, x: str, y: str, **kw):
    """The attainment line of a min-min front: from each point right to the next x, then down."""
    return ax.step(df[x].to_numpy(float), df[y].to_numpy(float), where="post", **kw)


def _zoom_y(ax, focus: list[np.ndarray], y: str, drawn: pd.DataFrame, x: str, margin: float = 0.08) -> int:
    """Limit the y axis to the span of the `focus` values (the found and exact fronts) plus a margin, so the
    fronts are not squeezed by far-off archs: NB201 cells without a path from input to output sit at 90% error,
    and being the fastest they are on every front, so a value that lies above a gap of more than half the
    range is left out of the span too. Archs cut off above are marked at the top edge with a small caret.
    Returns how many were cut off."""
    values = np.concatenate([np.asarray(v, dtype=float) for v in focus if len(v)]) if focus else np.array([])
    values = np.sort(values[np.isfinite(values)])
    if len(values) == 0:
        return 0
    lo, hi = values[0], values[-1]
    if len(values) >= 3:  # a front point far above the rest (the fastest, empty cell): cut above the gap
        gaps = np.diff(values)
        k = int(np.argmax(gaps))
        if gaps[k] > 0.5 * (hi - lo) and k >= len(values) // 2:
            hi = values[k]
    pad = max((hi - lo) * margin, 1e-9 + abs(hi) * 0.01)
    top = hi + pad
    ax.set_ylim(lo - pad, top)
    above = drawn[drawn[y] > top]
    if len(above):
        ax.scatter(above[x], np.full(len(above), top), marker="^", s=14, color="0.55", clip_on=False, zorder=5,
                   label=f"above the axis ({len(above)})")
    return len(above)


def _finish(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_front_2d(
    front: "Front",
    x: str,
    y: str,
    ax=None,
    exact: pd.DataFrame | None = None,
    title: str | None = None,
    path: str | Path | None = None,
    label: str = "found front",
    color: str = FOUND_COLOR,
    zoom: bool = True,
):
    """All evaluated archs in light grey, the found front (the `is_pareto` archs) as coloured markers joined
    by the step line of their (x, y)-non-dominated subset (all of them when x, y are the two objectives), and
    the exact front (`exact`, a DataFrame with columns x and y; its (x, y)-non-dominated rows are used) as a
    dashed black step line. With `zoom`, the y axis spans the fronts; archs above it are marked at the top edge."""
    fig, ax = _new_axes(ax)
    table = front.table
    drawn = table.dropna(subset=[x, y])
    missing = len(table) - len(drawn)  # archs a table has no value for: infeasible, not drawn
    ax.scatter(drawn[x], drawn[y], s=8, color=GREY, zorder=1,
               label=f"evaluated ({len(drawn)}" + (f"; {missing} without values)" if missing else ")"))
    if exact is not None:
        ex = _front_2d(exact, x, y)
        _step(ax, ex, x, y, color="black", ls="--", lw=1.2, label=f"exact front ({len(ex)})", zorder=2)
    found = table[table["is_pareto"]].dropna(subset=[x, y])
    line = _front_2d(found, x, y, front.directions)
    _step(ax, line, x, y, color=color, lw=1.5, zorder=3)
    ax.scatter(found[x], found[y], s=22, color=color, edgecolor="black", linewidth=0.4,
               label=f"{label} ({len(found)})", zorder=4)
    if zoom:
        focus = [found[y].to_numpy(float)] + ([_front_2d(exact, x, y)[y].to_numpy(float)] if exact is not None else [])
        _zoom_y(ax, focus, y, drawn, x)
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    if title is not None:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _finish(fig, path)


def plot_front_3d(front: "Front", x: str, y: str, z: str, ax=None, path: str | Path | None = None,
                  color_by: str | None = None, title: str | None = None):
    """3-D scatter of every evaluated arch with a value in x, y and z. By default the rest are light grey and
    the Pareto-optimal ones blue. With `color_by` (a numeric column, e.g. "generation": the generation that
    first evaluated the arch) every arch is coloured by that column (viridis, with a colorbar) and the
    Pareto-optimal ones are drawn larger with black edges. `ax`, if given, must be a 3-D axes
    (`projection="3d"`)."""
    fig, ax = _new_axes(ax, projection="3d")
    table = front.table.dropna(subset=[x, y, z])
    rest = table[~table["is_pareto"]]
    found = table[table["is_pareto"]]
    if color_by is None:
        ax.scatter(rest[x], rest[y], rest[z], s=6, color=GREY, alpha=0.5, label=f"evaluated ({len(table)})")
        ax.scatter(found[x], found[y], found[z], s=24, color=FOUND_COLOR, edgecolor="black", linewidth=0.4,
                   depthshade=False, label=f"found front ({len(found)})")
    else:
        import matplotlib as mpl

        if color_by not in table:
            raise UsageError(f"unknown column '{color_by}' to colour by; valid: {', '.join(map(str, table.columns))}")
        values = table[color_by].astype(float)
        norm = mpl.colors.Normalize(vmin=values.min(), vmax=max(values.max(), values.min() + 1))
        cmap = mpl.colormaps["viridis"]
        ax.scatter(rest[x], rest[y], rest[z], s=12, c=cmap(norm(rest[color_by].astype(float))), depthshade=False,
                   label=f"evaluated ({len(table)})")
        ax.scatter(found[x], found[y], found[z], s=40, c=cmap(norm(found[color_by].astype(float))),
                   edgecolors="black", linewidths=0.8, depthshade=False, label=f"found front ({len(found)})")
        fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=color_by.replace("_", " "),
                     shrink=0.7, pad=0.12)
        legend = ax.legend(fontsize="small")
        for handle in legend.legend_handles:  # the colour is the colorbar's business; the legend tells marker kinds
            handle.set_facecolor(GREY)
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    ax.set_zlabel(axis_label(z))
    if title is not None:
        ax.set_title(title)
    if color_by is None:
        ax.legend(fontsize="small")
    return _finish(fig, path)


def plot_generations(front: "Front", x: str, y: str, ax=None, every: int = 1, path: str | Path | None = None):
    """The (x, y)-non-dominated set of the cumulative population (the union of the populations up to each
    generation) as a step line per generation, coloured by generation (viridis) with a colorbar. Every
    `every`-th generation is drawn, and always the last. Uses `front.history`; with no history, the table's
    first-seen 'generation' column (the cumulative set of evaluated archs) stands in."""
    import matplotlib as mpl

    fig, ax = _new_axes(ax)
    pop = front.history if front.history is not None and len(front.history) else front.table
    pop = pop.dropna(subset=[x, y])
    gens = np.unique(pop["generation"].to_numpy())
    if len(gens) == 0:
        raise UsageError("no generations to plot: the front's history and table are empty")
    shown = list(gens[:: max(1, int(every))])
    if shown[-1] != gens[-1]:
        shown.append(gens[-1])
    norm = mpl.colors.Normalize(vmin=gens[0], vmax=max(gens[-1], gens[0] + 1))
    cmap = mpl.colormaps["viridis"]
    ax.scatter(front.table[x], front.table[y], s=6, color=GREY, zorder=1)
    for g in shown:
        line = _front_2d(pop[pop["generation"] <= g], x, y)
        color = cmap(norm(g))
        _step(ax, line, x, y, color=color, lw=1.2, zorder=2)
        ax.scatter(line[x], line[y], s=10, color=color, zorder=3)
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="generation")
    ax.set_xlabel(axis_label(x))
    ax.set_ylabel(axis_label(y))
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def plot_proxy_vs_true(
    front: "Front", proxy: str, true: str, hw: str, axes=None, path: str | Path | None = None,
    exact: pd.DataFrame | None = None,
):
    """Two panels side by side over the hardware column `hw`: left, the front found with the `proxy` column;
    right, the same archs re-scored with the `true` column (coloured markers joined in hw order), beside the
    true (hw, true)-front of all evaluated archs (dashed black) and all evaluated archs (grey); `exact`, a
    DataFrame with the `hw` and `true` columns (the exact front of the whole space), is drawn dotted red."""
    if axes is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    else:
        fig = axes[0].figure
    left, right = axes
    plot_front_2d(front, hw, proxy, ax=left, title=f"found with {axis_label(proxy)}")

    table = front.table.dropna(subset=[hw, true])
    found = table[table["is_pareto"]].sort_values([hw, true], kind="stable")
    best = _front_2d(table, hw, true)
    right.scatter(table[hw], table[true], s=8, color=GREY, label=f"evaluated ({len(table)})", zorder=1)
    _step(right, best, hw, true, color="black", ls="--", lw=1.2,
          label=f"true front of evaluated ({len(best)})", zorder=2)
    right.plot(found[hw], found[true], color=FOUND_COLOR, lw=1.0, alpha=0.7, zorder=3)
    right.scatter(found[hw], found[true], s=22, color=FOUND_COLOR, edgecolor="black", linewidth=0.4,
                  label=f"found front, re-scored ({len(found)})", zorder=4)
    if exact is not None:
        ex = exact.sort_values(hw)
        _step(right, ex, hw, true, color="tab:red", ls=":", lw=1.4, label=f"exact front ({len(ex)})", zorder=2)
    _zoom_y(right, [found[true].to_numpy(float), best[true].to_numpy(float)]
            + ([exact[true].to_numpy(float)] if exact is not None else []), true, table, hw)
    right.set_xlabel(axis_label(hw))
    right.set_ylabel(axis_label(true))
    right.set_title(f"re-scored with {axis_label(true)}")
    right.grid(alpha=0.3)
    right.legend(fontsize="small")
    return _finish(fig, path)


def plot_grid(
    fronts: dict[str, "Front"],
    y: str,
    x_of: Callable[["Front"], str] | None = None,
    exact: dict[str, pd.DataFrame] | None = None,
    ncols: int = 3,
    path: str | Path | None = None,
):
    """One `plot_front_2d` panel per device (the dict's keys, in order): y against x_of(front), by default
    the front's first hardware objective (`objectives[1]`); `exact[name]`, when given, is drawn dashed."""
    import matplotlib.pyplot as plt

    if not fronts:
        raise UsageError("plot_grid needs at least one front")
    x_of = x_of or (lambda f: f.objectives[1])
    n = len(fronts)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.8 * nrows), squeeze=False)
    flat = axes.ravel()
    for ax, (name, front) in zip(flat, fronts.items()):
        ex = None if exact is None else exact.get(name)
        plot_front_2d(front, x_of(front), y, ax=ax, exact=ex, title=name)
    for ax in flat[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return _finish(fig, path)
