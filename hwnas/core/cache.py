"""The one "look up, compute what is missing, store" cache behind every per-arch score that costs time to
compute: supernet proxy accuracy, measured latency, zero-cost scores.

`ResultCache` is a persistent (source, setting, key) -> value store in SQLite WAL mode (survives crashes,
allows concurrent writers); each value keeps the seconds it took, so a report can count a cached score at
what it cost. `cached_values` is the loop every scorer shares: ask the cache for all keys at once, compute
each missing one (progress bar), store it, and count hits, misses and seconds.

Imports nothing of ours.
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence


class ResultCache:
    """Persistent (source, setting, key) -> value store (SQLite, WAL). `source` names what produced the
    values (a checkpoint's hash, a machine's description), `setting` how (evaluation settings), `key` for
    what (a canonical arch string)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        # Switching a new file to WAL needs it to itself, and SQLite answers "database is locked" at once,
        # without waiting out the timeout, while another process or thread is opening the same new file.
        deadline = time.monotonic() + 60
        for delay in (0.01 * 2 ** i for i in range(100)):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(min(delay, 1.0))
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS results (source TEXT, setting TEXT, arch TEXT, value REAL, "
                         "seconds REAL, PRIMARY KEY (source, setting, arch))")

    def get(self, source: str, setting: str, keys: Sequence[str]) -> dict[str, float]:
        """Stored values of those `keys` that have one."""
        out: dict[str, float] = {}
        for part in _chunks(keys):
            q = ",".join("?" * len(part))
            for key, value in self._db.execute(
                    f"SELECT arch, value FROM results WHERE source=? AND setting=? AND arch IN ({q})",
                    [source, setting, *part]):
                out[key] = value
        return out

    def seconds(self, source: str, setting: str, keys: Sequence[str]) -> float:
        """Total seconds the stored values of `keys` took to compute (what they would cost again)."""
        total = 0.0
        for part in _chunks(keys):
            q = ",".join("?" * len(part))
            row = self._db.execute(f"SELECT SUM(seconds) FROM results WHERE source=? AND setting=? AND arch IN ({q})",
                                   [source, setting, *part]).fetchone()
            total += row[0] or 0.0
        return total

    def put(self, source: str, setting: str, key: str, value: float, seconds: float) -> None:
        """Store one value and the seconds it took to compute."""
        self._db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)", (source, setting, key, value, seconds))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def _timed(compute: Callable[[str], float], key: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    value = float(compute(key))
    return value, time.perf_counter() - t0


def _chunks(keys: Sequence[str], size: int = 500):
    keys = list(keys)
    for i in range(0, len(keys), size):
        yield keys[i:i + size]


@dataclass
class CacheStats:
    """What a scorer's cache did since it was made: answers from the cache, values computed, seconds spent."""

    hits: int = 0
    misses: int = 0
    seconds: float = 0.0


class CachedScorer:
    """Base of the scorers whose per-arch values cost time (proxy accuracy, measured latency, zero-cost
    scores): `cached(keys)` answers from `self.cache` under (`self.source`, `self.setting`) and computes what is
    missing with `self.compute(key)`; `hits`, `misses` and `seconds` count what it did."""

    cache: ResultCache
    source: str
    setting: str
    label: str = "compute"
    progress: bool = True
    workers: Any = None  # a `hwnas.core.workers.Workers`: compute missing values there (see `remote`)

    @cached_property
    def stats(self) -> CacheStats:
        return CacheStats()

    @property
    def hits(self) -> int:
        """Values answered by the cache since this scorer was made."""
        return self.stats.hits

    @property
    def misses(self) -> int:
        """Values computed since this scorer was made."""
        return self.stats.misses

    @property
    def seconds(self) -> float:
        """Seconds spent computing those values."""
        return self.stats.seconds

    def compute(self, key: str) -> float:
        """The value of one key, computed (no cache)."""
        raise NotImplementedError

    def remote(self) -> tuple[Callable[[], Any], str] | None:
        """(a picklable factory building this scorer's `compute` on a worker, a token naming what it builds),
        or None when this scorer computes here only."""
        return None

    def cached(self, keys: Sequence[str]) -> list[float]:
        """The value of every key, from the cache or computed (see `cached_values`): on `workers` when this
        scorer has any and can be built `remote`ly, the values still stored here, by this process."""
        remote = self.remote() if self.workers is not None else None
        many = (lambda todo: self.workers.map(remote[0], remote[1], todo)) if remote is not None else None
        return cached_values(self.cache, self.source, self.setting, keys, self.compute, self.stats, self.label,
                             self.progress, many)

    def compute_seconds(self, keys: Sequence[str]) -> float:
        """Seconds the cached values of these keys took to compute, whenever that was."""
        return self.cache.seconds(self.source, self.setting, sorted(set(keys)))


def cached_values(cache: ResultCache, source: str, setting: str, keys: Sequence[str],
                  compute: Callable[[str], float], stats: CacheStats | None = None, desc: str = "compute",
                  progress: bool = True,
                  compute_many: Callable[[list[str]], Iterable[tuple[str, float, float]]] | None = None
                  ) -> list[float]:
    """The value of every key in `keys` (repeats allowed, order kept): stored ones from `cache`, the rest
    computed one by one with `compute(key)` (in first-seen order, with a progress bar) and stored with the
    seconds they took. `compute_many(todo)`, when given, computes them instead (elsewhere: Dask workers),
    yielding (key, value, seconds) as each is done; each is stored as it arrives. `stats`, when given, is
    updated with hits, misses and seconds."""
    from tqdm.auto import tqdm

    unique = list(dict.fromkeys(keys))
    known = cache.get(source, setting, unique)
    todo = [k for k in unique if k not in known]
    if stats is not None:
        stats.hits += len(keys) - len(todo)
    done = compute_many(todo) if compute_many is not None and todo else (
        (key, *_timed(compute, key)) for key in todo)
    for key, value, dt in tqdm(done, total=len(todo), desc=desc, unit="arch", disable=not progress or not todo,
                               leave=False):
        value = float(value)
        cache.put(source, setting, key, value, dt)
        known[key] = value
        if stats is not None:
            stats.misses += 1
            stats.seconds += dt
    return [known[k] for k in keys]
