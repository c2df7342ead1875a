"""Hardware objectives that measure instead of looking up: latency timed on this machine
(`measured_latency:<target>`), on a remote device through its agent (`remote_latency:<url>`), or
predicted from a per-block lookup table (`lut_latency`).

Measurements are slow and noisy, so each canonical arch is measured once per (target description,
settings) and kept in the same kind of SQLite cache as proxy accuracy: a second search, another device's
search, or an isomorphic cell reuses it. The target description (host, CPU, library versions, threads;
for a remote agent, what the agent reports) is part of the key, so numbers from different machines or
thread counts are never mixed.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hwnas.core.cache import CachedScorer, ResultCache
from hwnas.core.config import option
from hwnas.core.datasets import dataset_info
from hwnas.core.errors import UsageError
from hwnas.core.paths import cache_dir
from hwnas.supernet.spaces.base import Arch, SearchSpace

from .base import Cost, register_objective

Measure = Callable[[Arch], float]


@dataclass
class MeasureSettings:
    """How a whole network is timed; part of the cache key."""

    warmup: int = option(10, help="untimed runs before the timed ones")
    repeats: int = option(50, help="timed runs per measurement (the median is the latency)")
    threads: int | None = option(1, help="CPU threads while timing (cpu and onnxruntime targets)")
    batch_size: int = option(1, help="images per timed forward pass")

    def key(self, input_shape: Sequence[int], net: dict) -> str:
        return json.dumps({**asdict(self), "input_shape": list(input_shape), "net": net}, sort_keys=True)


def default_cache_path() -> Path:
    """`latency.sqlite` in the cache folder (`$HWNAS_CACHE`, else `~/.cache/hwnas`)."""
    return cache_dir() / "latency.sqlite"


def _digest(description: dict) -> str:
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]


class CachedLatency(CachedScorer):
    """Latency (ms) per arch from `measure_one`, measured on the canonical arch and cached on disk."""

    def __init__(self, space: SearchSpace, measure_one: Measure, source: dict, setting: str,
                 cache: str | Path | None = None, progress: bool = True, label: str = "measure"):
        self.space, self.measure_one = space, measure_one
        # Arch strings name blocks, not the network they sit in: the space and its options are part of the key.
        self.setting = json.dumps({"space": space.name, "options": space.options}, sort_keys=True) + setting
        self.source = f"{source.get('target', 'remote')}:{_digest(source)}"
        self.cache = ResultCache(cache or default_cache_path())
        self.progress, self.label = progress, label

    def compute(self, key: str) -> float:
        return float(self.measure_one(self.space.from_str(key)))

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.array(self.cached([self.space.to_str(self.space.canonical(a)) for a in archs]), dtype=float)


def input_shape(dataset: str, batch_size: int = 1) -> tuple[int, int, int, int]:
    """Network input for a data set, e.g. (1, 3, 32, 32) for CIFAR and (1, 3, 16, 16) for ImageNet16-120."""
    return dataset_info(dataset).input_shape(batch_size)


def local_latency(space: SearchSpace, target: str, net: dict, dataset: str, settings: MeasureSettings,
                  cache: str | Path | None = None, progress: bool = True) -> CachedLatency:
    """`measured_latency:<target>`: the standalone subnet timed here with `hardware.measure`."""
    from hwnas.hardware.measure import describe_target, measure

    shape = input_shape(dataset, settings.batch_size)
    description = describe_target(target, settings.threads)

    def one(arch: Arch) -> float:
        model = space.build_subnet(arch, **net)
        return measure(model, target, shape, warmup=settings.warmup, repeats=settings.repeats,
                       threads=settings.threads).median_ms
    return CachedLatency(space, one, description, settings.key(shape, net), cache, progress, f"measure {target}")


def remote_latency(space: SearchSpace, url: str, token: str, net: dict, dataset: str, settings: MeasureSettings,
                   cache: str | Path | None = None, progress: bool = True, timeout: float = 120.0,
                   retries: int = 3) -> CachedLatency:
    """`remote_latency:<url>`: the subnet described (space, arch string, net options) to the agent at
    `url`, which builds and times it on its own device."""
    from hwnas.hardware.remote import RemoteDevice
    from hwnas.supernet.spaces.describe import describe_request

    device = RemoteDevice(url, token, timeout=timeout, retries=retries)
    health = device.health()
    target = health.get("target", {}).get("target", "cpu")  # the agent's /health describes its target
    shape = input_shape(dataset, settings.batch_size)

    def one(arch: Arch) -> float:
        request = describe_request(space.name, space.to_str(arch), net, shape, settings.warmup, settings.repeats,
                                   target, space_options=space.options)
        return float(device.measure(request)["timing"]["median_ms"])
    source = {"url": url, **health.get("target", {})}
    return CachedLatency(space, one, source, settings.key(shape, net), cache, progress, f"measure {url}")


def lut_latency(space: SearchSpace, lut_path: str | Path, net: dict) -> Callable[[list[Arch]], np.ndarray]:
    """`lut_latency`: the sum of the arch's blocks in a lookup table built by `hwnas lut build`."""
    from hwnas.hardware.lut import LatencyTable

    table = LatencyTable.load(lut_path)
    built_for = table.meta.get("net")
    if built_for is not None and built_for != net:
        raise UsageError(f"lookup table '{lut_path}' was built for {built_for}, the search uses {net}; "
                         f"rebuild it with `hwnas lut build` for this network")

    def fn(archs: list[Arch]) -> np.ndarray:
        return np.array([table.predict(space.arch_blocks(a, **net)) for a in archs], dtype=float)
    return fn


# ---------------------------------------------------------------------------------------------- objectives
def _check_target(target: str) -> None:
    from hwnas.hardware.measure import check_target

    check_target(target)


def _check_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"bad agent URL '{url}' in 'remote_latency:{url}'; expected remote_latency:http://HOST:PORT")


def _targets(sources) -> list[str]:
    from hwnas.hardware.measure import list_targets

    return [f"measured_latency:{t}" for t in list_targets()]


@register_objective("measured_latency:<target>", unit="ms", cost=Cost.DEVICE,
                    needs=("net", "dataset", "measure", "latency_cache", "progress"), names=_targets, check=_check_target,
                    status=lambda sources: "measured on this machine (cached per canonical arch)",
                    doc="the standalone subnet timed here (cpu, cuda, onnxruntime, onnxruntime-cuda)")
def _measured_latency(target, space, net, dataset, measure, latency_cache, progress):
    return (local_latency(space, target, net, dataset, measure, latency_cache, progress),
            f"measured on this machine ({target})")


@register_objective("remote_latency:<url>", unit="ms", cost=Cost.DEVICE,
                    needs=("net", "dataset", "measure", "latency_cache", "progress", "agent_token"), check=_check_url,
                    status=lambda sources: "measured by `hwnas agent serve` on a device (--agent-token-file)",
                    doc="timed on a remote device by its agent (token: --agent-token-file)")
def _remote_latency(url, space, net, dataset, measure, latency_cache, progress, agent_token):
    return (remote_latency(space, url, agent_token, net, dataset, measure, latency_cache, progress),
            f"measured by the agent at {url}")


@register_objective("lut_latency", unit="ms", cost=Cost.TABLE, needs=("net", "lut_path"),
                    status=lambda sources: f"lookup table {sources.lut}" if sources.lut
                    else "needs --lut FILE (from `hwnas lut build`)",
                    doc="sum of per-block latencies from a lookup table (--lut FILE, from `hwnas lut build`)")
def _lut_latency(arg, space, net, lut_path):
    return lut_latency(space, lut_path, net), f"lookup table {lut_path}"
