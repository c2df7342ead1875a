"""`hwnas list {spaces,modes,objectives,targets,algorithms}`: what can be searched, trained and measured, read
from the registries. `hwnas devices` is the old name of `hwnas list objectives` (kept for one release)."""
from __future__ import annotations

import argparse
import sys


def _add_sources_options(p: argparse.ArgumentParser) -> None:
    from hwnas.evolve.explore import SearchConfig

    from .options import add_config_options

    p.set_defaults(_keys=add_config_options(p, SearchConfig, only=("supernet", "dataset", "data", "truth",
                                                                    "hwnasbench", "device_tables", "lut")))


def _sources(args: argparse.Namespace):
    from hwnas.evolve.sources import Sources

    return Sources(supernet=args.supernet, dataset=args.dataset, data=args.data, truth=args.truth,
                   hwnasbench=args.hwnasbench, device_tables=args.device_tables, lut=args.lut, progress=False)


def _summary(obj) -> str:
    """The first sentence of an object's docstring (its module's when it has none)."""
    import inspect

    doc = inspect.getdoc(obj) or inspect.getdoc(inspect.getmodule(obj)) or ""
    para = " ".join(doc.split("\n\n")[0].split())
    end = para.find(". ")
    return para if end < 0 else para[:end + 1]


def _rows(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


def cmd_spaces(args: argparse.Namespace) -> int:
    from hwnas.supernet.spaces import SPACES, get_space

    rows = []
    for name in SPACES.list(args.pattern):
        space = get_space(name)
        rows.append((name, str(len(space.num_choices)), f"{float(space.size):.4g}", _summary(SPACES.get(name))))
    _rows(rows, ("space", "decisions", "archs", "what"))
    return 0


def cmd_modes(args: argparse.Namespace) -> int:
    from hwnas.supernet.modes import MODES

    rows = [(name, _summary(MODES.get(name))) for name in MODES.list(args.pattern)]
    _rows(rows, ("mode", "what"))
    return 0


def cmd_algorithms(args: argparse.Namespace) -> int:
    from hwnas.evolve.search import ALGORITHMS

    rows = [(name, _summary(ALGORITHMS.get(name))) for name in ALGORITHMS.list(args.pattern)]
    _rows(rows, ("algorithm", "what"))
    return 0


def cmd_objectives(args: argparse.Namespace) -> int:
    """Each registered objective (families with their placeholder) with unit, direction, cost class and where
    its values come from with these sources."""
    from hwnas.evolve.objectives import OBJECTIVES

    sources = _sources(args)
    rows = []
    for name, spec in OBJECTIVES.items():
        if args.pattern and name not in OBJECTIVES.list(args.pattern):
            continue
        status = spec.status(sources) if spec.status else spec.doc
        if spec.spaces is not None and sources.space.name not in spec.spaces:
            status = f"for space {', '.join(spec.spaces)} only"
        rows.append((name, spec.unit or "-", spec.direction.value, spec.cost.name.lower(), status))
    _rows(rows, ("objective", "unit", "direction", "cost", "source"))
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    print("hwnas: note: `hwnas devices` is now `hwnas list objectives` (targets: `hwnas list targets`); "
          "the old name goes in the next release", file=sys.stderr)
    return cmd_objectives(args)


def cmd_targets(args: argparse.Namespace) -> int:
    """What `hwnas search --target` accepts, and what each stands for."""
    from hwnas.benchmarks.tables.hwnasbench import HW_DEVICES
    from hwnas.hardware.measure import TARGETS

    sources = _sources(args)
    with_data = sources.hw_devices()
    rows = []
    for dev in HW_DEVICES:
        rows.append((dev, f"{dev}_latency", "HW-NAS-Bench " + (sources.dataset if dev in with_data else
                                                                f"(no {sources.dataset} data found)")))
    for name, table in sources.device_tables.items():
        rows.append((name, f"{name}_{table.metrics()[0]}", f"device table {table.source}"))
    for name, target in TARGETS.items():
        why = target.unavailable()
        rows.append((f"measured_latency:{name}", f"measured_latency:{name}",
                     target.doc + (f" (unavailable: {why})" if why else "")))
    rows.append(("remote_latency:<url>", "remote_latency:<url>", "timed by `hwnas agent serve` on a remote device"))
    rows.append(("lut_latency", "lut_latency", f"lookup table {args.lut}" if args.lut else
                 "sum of a lookup table's blocks (needs --lut FILE)"))
    if args.pattern:
        import fnmatch

        rows = [r for r in rows if fnmatch.fnmatchcase(r[0], args.pattern)]
    _rows(rows, ("target", "objective", "source"))
    return 0


def _pattern(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default=None, help="only names matching this shell-style pattern, e.g. 'edge*'")


def _with_sources(p: argparse.ArgumentParser) -> None:
    _pattern(p)
    _add_sources_options(p)


def register(commands) -> None:
    group = commands.group("list", "what can be searched, trained and measured (from the registries)")
    group.add("spaces", "search spaces", cmd_spaces, _pattern)
    group.add("modes", "supernet training modes", cmd_modes, _pattern)
    group.add("objectives", "objectives with their unit, direction, cost class and source", cmd_objectives,
              _with_sources)
    group.add("targets", "what `hwnas search --target` accepts", cmd_targets, _with_sources)
    group.add("algorithms", "search algorithms", cmd_algorithms, _pattern)
    commands.add("devices", "deprecated: use `hwnas list objectives` (and `hwnas list targets`)", cmd_devices,
                 _with_sources)
