"""Hardware objectives looked up in tables: HW-NAS-Bench's six devices (`<device>_latency` in ms,
`<device>_energy` in mJ; NAS-Bench-201 only) and a user's own per-arch CSV (`<table>_<column>`, from
`--device-table FILE.csv`, the file stem naming the table). A value a table lacks is NaN: the search treats
that arch as infeasible and counts it, never as zero."""
from __future__ import annotations

from hwnas.benchmarks.tables.hwnasbench import HW_DEVICES, HW_METRICS, UNITS

from .base import Cost, register_objective


def _hw_status(key: str):
    def status(sources) -> str:
        try:
            coverage = sources.get("hwnasbench").coverage(sources.dataset).get(key, 0.0)
        except (FileNotFoundError, ValueError) as exc:
            return f"unavailable: {exc}"
        return f"HW-NAS-Bench {sources.dataset}, {coverage:.1%} of the archs"
    return status


def _hw_names(key: str):
    def names(sources) -> list[str]:
        return [key] if key.split("_")[0] in sources.hw_devices() else []
    return names


def _hwnasbench_metric(device: str, metric: str) -> None:
    key = f"{device}_{metric}"

    @register_objective(key, unit=UNITS[metric], cost=Cost.TABLE, needs=("hwnasbench", "dataset"), spaces=("nb201",),
                        names=_hw_names(key), status=_hw_status(key),
                        doc=f"HW-NAS-Bench {device} {metric} per image")
    def build(arg, space, hwnasbench, dataset):
        hwnasbench.metrics(dataset)  # an unknown data set is an error here, not at the first lookup

        def fn(archs):
            return hwnasbench.lookup([space.to_str(a) for a in archs], key, dataset)
        return fn, f"HW-NAS-Bench {dataset}"


for _device in HW_DEVICES:
    for _metric in HW_METRICS[_device]:
        _hwnasbench_metric(_device, _metric)


def _table_column(name: str, sources) -> str | None:
    for tname, table in sources.device_tables.items():
        if name.startswith(f"{tname}_") and name[len(tname) + 1:] in table.metrics():
            return name
    return None


def _table_names(sources) -> list[str]:
    return [f"{t}_{m}" for t, table in sources.device_tables.items() for m in table.metrics()]


def _table_status(sources) -> str:
    tables = sources.device_tables
    return ", ".join(f"{t}: {table.source}" for t, table in tables.items()) or "needs --device-table FILE.csv"


@register_objective("<table>_<column>", unit="", cost=Cost.TABLE, needs=("device_tables",), match=_table_column,
                    names=_table_names, status=_table_status,
                    doc="a column of your own per-arch CSV (--device-table FILE.csv; table = file stem)")
def _device_table(name, space, device_tables):
    for tname, table in device_tables.items():
        column = name[len(tname) + 1:]
        if name.startswith(f"{tname}_") and column in table.metrics():
            def fn(archs, t=table, c=column):
                return t.lookup([space.to_str(a) for a in archs], c)
            return fn, f"device table {tname}"
    raise AssertionError(name)  # match() found it
