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
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from supernet.spaces.base import Arch, SearchSpace

Measure = Callable[[Arch], float]


@dataclass
class MeasureSettings:
    """How a whole network is timed; part of the cache key."""

    warmup: int = 10
    repeats: int = 50
    threads: int | None = 1
    batch_size: int = 1

    def key(self, input_shape: Sequence[int], net: dict) -> str:
        return json.dumps({**asdict(self), "input_shape": list(input_shape), "net": net}, sort_keys=True)


def default_cache_path() -> Path:
    """`$HWNAS_CACHE/latency.sqlite`, else `~/.cache/hwnas/latency.sqlite`."""
    root = os.environ.get("HWNAS_CACHE") or Path.home() / ".cache" / "hwnas"
    return Path(root) / "latency.sqlite"


def _digest(description: dict) -> str:
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]


class CachedLatency:
    """Latency (ms) per arch from `measure_one`, measured on the canonical arch and cached on disk."""

    def __init__(self, space: SearchSpace, measure_one: Measure, source: dict, setting: str,
                 cache: str | Path | None = None, progress: bool = True, label: str = "measure"):
        from supernet.evaluate import ResultCache

        self.space, self.measure_one = space, measure_one
        # Arch strings name blocks, not the network they sit in: the space and its options are part of the key.
        self.setting = json.dumps({"space": space.name, "options": space.options}, sort_keys=True) + setting
        self.source = f"{source.get('target', 'remote')}:{_digest(source)}"
        self.cache = ResultCache(cache or default_cache_path())
        self.progress, self.label = progress, label
        self.hits = self.misses = 0

    def __call__(self, archs: Sequence[Arch]) -> np.ndarray:
        from tqdm.auto import tqdm

        keys = [self.space.to_str(self.space.canonical(a)) for a in archs]
        known = self.cache.get(self.source, self.setting, list(dict.fromkeys(keys)))
        todo = [k for k in dict.fromkeys(keys) if k not in known]
        self.hits += len(keys) - len(todo)
        for key in tqdm(todo, desc=self.label, unit="arch", disable=not self.progress or not todo, leave=False):
            t0 = time.perf_counter()
            ms = float(self.measure_one(self.space.from_str(key)))
            self.cache.put(self.source, self.setting, key, ms, time.perf_counter() - t0)
            known[key] = ms
            self.misses += 1
        return np.array([known[k] for k in keys], dtype=float)


def input_shape(dataset: str, batch_size: int = 1) -> tuple[int, int, int, int]:
    """Network input for a data set: 16x16 for ImageNet16-120, 32x32 for CIFAR."""
    side = 16 if dataset == "ImageNet16-120" else 32
    return (batch_size, 3, side, side)


def local_latency(space: SearchSpace, target: str, net: dict, dataset: str, settings: MeasureSettings,
                  cache: str | Path | None = None, progress: bool = True) -> CachedLatency:
    """`measured_latency:<target>`: the standalone subnet timed here with `hardware.measure`."""
    from hardware.measure import describe_target, measure

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
    from hardware.remote import RemoteDevice
    from supernet.spaces.describe import describe_request

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
    from hardware.lut import LatencyTable

    table = LatencyTable.load(lut_path)
    built_for = table.meta.get("net")
    if built_for is not None and built_for != net:
        raise ValueError(f"lookup table '{lut_path}' was built for {built_for}, the search uses {net}; "
                         f"rebuild it with `hwnas lut build` for this network")

    def fn(archs: list[Arch]) -> np.ndarray:
        return np.array([table.predict(space.arch_blocks(a, **net)) for a in archs], dtype=float)
    return fn
