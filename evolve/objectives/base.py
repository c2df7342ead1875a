"""What an objective is, and the registry that builds one from its name.

An objective is a named metric over a batch of archs with a unit, a direction (minimise or maximise) and a
cost class (`Cost`: a table lookup is cheaper than a counter, which is cheaper than a supernet or device
evaluation; the search evaluates cheap ones first). Each kind of objective is registered once, in the module
that computes it, with the resources it needs:

    @register_objective("params", unit="M", cost=Cost.COUNTER, needs=("net", "dataset"),
                        doc="parameters of the standalone network")
    def _params(arg, space, net, dataset):
        return lambda archs: np.array([params_m(space.build_subnet(a, **net)) for a in archs]), "counted"

`get_objective("params", sources)` hands the builder exactly the resources it named, taken from `sources`
(`hwnas.evolve.sources.Sources`, which builds each resource once, on first use). Names with an argument are
families: `measured_latency:<target>` matches `measured_latency:cpu`; a spec can also match names itself
(`<table>_<column>` for a user's device table).
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from hwnas.core.errors import UsageError
from hwnas.core.registry import Registry
from hwnas.supernet.spaces.base import Arch, SearchSpace

if TYPE_CHECKING:
    from ..sources import Sources

UNIT_SUFFIX = {"%": "pct", "ms": "ms", "mJ": "mj", "M": "m", "MB": "mb", "": ""}


class Direction(enum.Enum):
    """Whether smaller or larger values of an objective are better."""

    MINIMISE = "min"
    MAXIMISE = "max"

    @property
    def sign(self) -> float:
        """+1 for a minimised objective, -1 for a maximised one: `sign * value` is always minimised."""
        return 1.0 if self is Direction.MINIMISE else -1.0


class Cost(enum.IntEnum):
    """How expensive an objective is per arch, cheapest first; the search evaluates in this order and skips
    the expensive ones for archs that are already infeasible."""

    TABLE = 0      # a lookup in a table (HW-NAS-Bench, NB201, a user's device table, a lookup table)
    COUNTER = 1    # counted on the built network (params, FLOPs, sizes, memory)
    SUPERNET = 2   # an evaluation with the supernet's weights (proxy accuracy)
    DEVICE = 3     # a measurement on a device (here or remote)

    @property
    def expensive(self) -> bool:
        return self >= Cost.SUPERNET


Build = Callable[..., tuple]  # (values_fn, source) or (values_fn, source, cost)


@dataclass(frozen=True)
class ObjectiveSpec:
    """A registered kind of objective. `build(arg, space, **needs) -> (values_fn, source[, cost])`: `arg` is what
    follows the colon of a family name (`cpu` in `measured_latency:cpu`), or the matched name for specs with
    their own `match`; `needs` names the resources taken from `Sources`. `spaces`, when set, are the only
    spaces it covers (NAS-Bench-201 tables: nb201). `match(name, sources)` returns the `arg` for names it
    builds (None otherwise); `names(sources)` the concrete names a listing shows; `status(sources)` one line
    saying where values come from or why they are unavailable; `check(arg)` refuses a bad argument before
    any resource is loaded."""

    name: str
    unit: str
    direction: Direction
    cost: Cost
    needs: tuple[str, ...]
    build: Build
    doc: str
    spaces: tuple[str, ...] | None = None
    match: Callable[[str, "Sources"], str | None] | None = None
    names: Callable[["Sources"], list[str]] | None = None
    status: Callable[["Sources"], str] | None = None
    check: Callable[[str], None] | None = None

    @property
    def family(self) -> str | None:
        """`measured_latency` for a spec named `measured_latency:<target>`, else None."""
        kind, sep, _ = self.name.partition(":")
        return kind if sep else None

    def matches(self, name: str, sources: "Sources") -> str | None:
        if self.match is not None:
            return self.match(name, sources)
        if name == self.name:
            return ""
        if self.family and name.startswith(self.family + ":") and len(name) > len(self.family) + 1:
            return name[len(self.family) + 1:]
        return None

    def concrete_names(self, sources: "Sources") -> list[str]:
        return self.names(sources) if self.names is not None else [self.name]


OBJECTIVES: Registry[ObjectiveSpec] = Registry("objective")


def register_objective(name: str, *, unit: str, cost: Cost, needs: Sequence[str] = (), doc: str,
                       direction: Direction = Direction.MINIMISE, spaces: Sequence[str] | None = None,
                       match: Callable | None = None, names: Callable | None = None,
                       status: Callable | None = None, check: Callable | None = None) -> Callable[[Build], Build]:
    """Decorator registering the builder of an objective kind (see `ObjectiveSpec`)."""
    def wrap(build: Build) -> Build:
        OBJECTIVES.register(name, ObjectiveSpec(name, unit, direction, cost, tuple(needs), build, doc,
                                                tuple(spaces) if spaces else None, match, names, status, check))
        return build
    return wrap


@dataclass
class Objective:
    """A metric over archs: `values = objective(archs)` (the natural values, in `unit`); results cached per
    arch string. `direction` says which way is better; the search minimises `direction.sign * values`."""

    name: str
    unit: str
    fn: Callable[[list[Arch]], np.ndarray]
    source: str
    cost: Cost = Cost.TABLE
    space: SearchSpace | None = None
    direction: Direction = Direction.MINIMISE
    _cache: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def column(self) -> str:
        """Front column name: the objective name with its unit, e.g. 'fpga_latency_ms',
        'measured_latency_cpu_ms' (characters other than letters, digits and '_' become '_')."""
        name = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", self.name)).strip("_")
        suffix = UNIT_SUFFIX.get(self.unit, self.unit.lower())
        return f"{name}_{suffix}" if suffix and not name.endswith(f"_{suffix}") else name

    @property
    def evaluated(self) -> list[str]:
        """Arch strings this objective has computed so far, in first-seen order."""
        return list(self._cache)

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        keys = [self.space.to_str(a) for a in archs]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        if todo:
            uniq = list(dict.fromkeys(keys[i] for i in todo))
            vals = np.asarray(self.fn([self.space.from_str(k) for k in uniq]), dtype=float)
            self._cache.update(zip(uniq, vals.tolist()))
        return np.array([self._cache[k] for k in keys], dtype=float)


def resolve(name: str, sources: "Sources") -> tuple[ObjectiveSpec, str]:
    """The spec that builds `name` and its argument; UsageError naming the valid names otherwise."""
    if not isinstance(name, str) or not name:
        raise UsageError(f"an objective name must be a non-empty string, got {name!r}")
    for _, spec in OBJECTIVES.items():
        arg = spec.matches(name, sources)
        if arg is not None:
            return spec, arg
    for _, spec in OBJECTIVES.items():  # `measured_latency` without its target
        if spec.family == name:
            what = spec.name.partition(":")[2].strip("<>")
            raise UsageError(f"objective '{name}' needs a {what}: {spec.name}, e.g. {spec.concrete_names(sources)[0]}")
    raise UsageError(f"unknown objective '{name}'; valid: {', '.join(list_objectives(sources))}")


def get_objective(name: str, sources: "Sources | None" = None, **resources: Any) -> Objective:
    """Build the objective called `name` from `sources` (a `Sources`; `resources` given here are added to
    it, e.g. `get_objective("proxy_err", proxy=evaluator)`). UsageError for an unknown name, a space the
    objective does not cover, or a resource it needs that `sources` cannot provide."""
    from ..sources import Sources

    sources = (sources or Sources()).with_resources(**resources) if resources else (sources or Sources())
    spec, arg = resolve(name, sources)
    space = sources.space
    if spec.spaces is not None and space.name not in spec.spaces:
        raise UsageError(f"objective '{name}' comes from NAS-Bench-201 / HW-NAS-Bench tables, which cover the "
                         f"{', '.join(spec.spaces)} space only; for space '{space.name}' use: "
                         f"{', '.join(list_objectives(sources))}")
    if spec.check is not None:
        spec.check(arg)
    needs = {need: sources.get(need, for_objective=name) for need in spec.needs}
    built = spec.build(arg, space, **needs)
    fn, source = built[:2]
    cost = built[2] if len(built) > 2 else spec.cost  # a composite (the ensemble) costs what its dearest part does
    return Objective(name, spec.unit, fn, source, cost, space, spec.direction)


def list_objectives(sources: "Sources | None" = None, pattern: str | None = None) -> list[str]:
    """Concrete objective names available with `sources` (a table that cannot be loaded leaves its names out;
    families appear with a placeholder, e.g. `remote_latency:<url>`), optionally filtered by a shell-style
    `pattern`."""
    import fnmatch

    from ..sources import Sources

    sources = sources or Sources()
    names: list[str] = []
    for _, spec in OBJECTIVES.items():
        if spec.spaces is not None and sources.space.name not in spec.spaces:
            continue
        names += spec.concrete_names(sources)
    return [n for n in names if pattern is None or fnmatch.fnmatchcase(n, pattern)]
