"""Scoring on a Dask cluster: `--workers local:N` (a `LocalCluster` of N one-thread processes on this machine)
or `--workers dask://HOST:PORT` (a running scheduler, e.g. `dask scheduler` plus `dask worker` on each
machine). Dask's scheduler does the placement and the retries; hwnas writes no scheduler of its own.

What runs where: the driver (the `hwnas search` process) decides which keys are missing from its cache and
sends only those; each worker builds the scorer once (the supernet and the held-out data, loaded on first
use and kept for the worker's life) and returns (value, seconds) per key; the driver writes every value into
its own SQLite cache as it arrives, so workers never touch the cache and a crash keeps what came back. A
worker that dies mid-generation has its keys run again on another worker (Dask's `allowed-failures`, 3 by
default). Values do not depend on where they were computed, so a search's front and cache are those of a
sequential run with the same seed. Remote workers need the checkpoint and the data at the same paths
(a shared file system), and `pip install "hwnas[dist]"`.
"""
from __future__ import annotations

import atexit
import ctypes
import os
import re
import sys
import time
from typing import Any, Callable, Iterable, Iterator

from .errors import UsageError

_SPEC = re.compile(r"^(?:local:(?P<n>\d+)|(?:dask|tcp)://(?P<address>[^\s/]+:\d+))$")

#: Seconds to wait for a `dask://` scheduler to answer
CONNECT_TIMEOUT = 10.0
#: Scorers built on this worker process, by the token of their factory (kept for the worker's life).
_BUILT: dict[str, Any] = {}


def check_workers(spec: str | None) -> str | None:
    """`spec` if it is `local:N` (N >= 1) or `dask://HOST:PORT`; UsageError naming it otherwise."""
    if spec is None:
        return None
    m = _SPEC.match(str(spec))
    if not m or (m["n"] is not None and not 1 <= int(m["n"]) <= 256):
        raise UsageError(f"--workers must be local:N (1 <= N <= 256) or dask://HOST:PORT, got {spec!r}")
    return spec


class Workers:
    """A Dask client for `spec`, started on first use (a `LocalCluster` for `local:N`), closed by `close`
    or at exit."""

    def __init__(self, spec: str):
        self.spec = check_workers(spec)
        self._client = self._cluster = None

    @property
    def client(self):
        if self._client is None:
            try:
                from dask.distributed import Client, LocalCluster
            except ImportError:
                raise UsageError("--workers needs Dask: pip install \"hwnas[dist]\" (dask[distributed])") from None
            m = _SPEC.match(self.spec)
            if m["n"] is not None:
                self._cluster = LocalCluster(n_workers=int(m["n"]), threads_per_worker=1, processes=True,
                                             dashboard_address=None)
                self._client = Client(self._cluster)
            else:
                try:
                    self._client = Client(f"tcp://{m['address']}", timeout=CONNECT_TIMEOUT)
                except OSError as exc:
                    raise UsageError(f"cannot reach the Dask scheduler at {self.spec}: {exc}") from None
            atexit.register(self.close)
        return self._client

    @property
    def size(self) -> int:
        """Workers connected now."""
        return len(self.client.scheduler_info()["workers"])

    def map(self, factory: Callable[[], Any], token: str, keys: Iterable[str]) -> Iterator[tuple[str, float, float]]:
        """(key, value, seconds) for every key, in the order they finish: `factory()` built once per worker
        (remembered under `token`), its `compute(key)` timed there."""
        from dask.distributed import as_completed

        keys = list(keys)
        futures = {self.client.submit(_compute, factory, token, key, pure=False): key for key in keys}
        for future in as_completed(futures):
            value, seconds = future.result()
            yield futures[future], value, seconds

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _heap_allocations() -> None:
    """Undo the allocator setting Dask's nanny gives its workers. It starts them with MALLOC_TRIM_THRESHOLD_=65536,
    which turns off glibc's dynamic mmap threshold, so every tensor above 128 KB is mmap'd and unmapped again:
    a proxy evaluation then takes 2.1x as long (0.59 s vs 0.28 s per cell, measured here with and without the
    variable). Raising the mmap and trim thresholds again at run time (mallopt) restores the heap's speed."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl): nothing to undo
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 64 << 20)
    libc.mallopt(m_trim_threshold, 256 << 20)


def _compute(factory: Callable[[], Any], token: str, key: str) -> tuple[float, float]:
    """On a worker: the scorer `token` (built by `factory` on first use), its value for `key` and the time."""
    scorer = _BUILT.get(token)
    if scorer is None:  # (Dask starts worker processes with OMP_NUM_THREADS=1: torch uses one thread each)
        _heap_allocations()
        scorer = _BUILT[token] = factory()
    t0 = time.perf_counter()
    value = float(scorer.compute(key))
    return value, time.perf_counter() - t0


__all__ = ["Workers", "check_workers"]
