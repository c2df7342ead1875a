"""Proxy scoring on Dask workers (`--workers`): the same front and the same cache as a sequential search, and a
worker killed mid-search changes neither."""
from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time

import pytest

pytest.importorskip("dask.distributed")

from hwnas.cli import main as cli_main  # noqa: E402
from hwnas.core.workers import check_workers  # noqa: E402
from hwnas.evolve.explore import search_target  # noqa: E402
from hwnas.evolve.sources import Sources  # noqa: E402
from hwnas.supernet.evaluate import ProxySettings  # noqa: E402

SETTINGS = ProxySettings(eval_images=128, calib_batches=1, calib_batch_size=32, eval_batch_size=64)


def _search(tiny_run, data_dir, cache, workers=None):
    sources = Sources(dataset="cifar10", supernet=str(tiny_run), hwnasbench=str(data_dir / "HW-NAS-Bench-v1_0.pickle"),
                      data=str(data_dir), proxy_settings=SETTINGS, progress=False, proxy_cache=str(cache),
                      workers=workers)
    try:
        front = search_target(sources, "fpga", pop_size=10, generations=3, seed=0, progress=False,
                              accuracy="proxy_err")
        return front, sources.proxy.misses
    finally:
        sources.close()


def _rows(cache) -> set[tuple]:
    with sqlite3.connect(cache) as db:
        return set(db.execute("SELECT source, setting, arch, value FROM results"))


def _same_front(a, b) -> None:
    cols = ["arch_str", "proxy_err_pct", "fpga_latency_ms", "is_pareto"]
    key = ["arch_str"]
    left, right = a.table[cols].sort_values(key).reset_index(drop=True), b.table[cols].sort_values(key).reset_index(drop=True)
    assert left.equals(right)


def test_local_workers_give_the_sequential_front_and_cache(tiny_run, data_dir, tmp_path):
    sequential, misses = _search(tiny_run, data_dir, tmp_path / "seq.sqlite")
    parallel, parallel_misses = _search(tiny_run, data_dir, tmp_path / "par.sqlite", workers="local:2")
    assert misses > 5 and parallel_misses == misses
    _same_front(sequential, parallel)
    assert _rows(tmp_path / "seq.sqlite") == _rows(tmp_path / "par.sqlite")


def test_a_worker_killed_mid_search_changes_nothing(tiny_run, data_dir, tmp_path):
    from dask.distributed import Client, LocalCluster

    sequential, _ = _search(tiny_run, data_dir, tmp_path / "seq.sqlite")
    cache = tmp_path / "par.sqlite"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        victim = sorted(client.run(os.getpid).values())[0]
        killed = threading.Event()

        def kill_after_two_scores():
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if cache.exists() and len(_rows(cache)) >= 2:
                        os.kill(victim, signal.SIGKILL)
                        killed.set()
                        return
                except sqlite3.OperationalError:
                    pass
                time.sleep(0.02)
        watcher = threading.Thread(target=kill_after_two_scores, daemon=True)
        watcher.start()
        parallel, _ = _search(tiny_run, data_dir, cache, workers="dask://" + cluster.scheduler_address[len("tcp://"):])
        watcher.join(5)
    assert killed.is_set(), "no worker was killed"
    _same_front(sequential, parallel)
    assert _rows(tmp_path / "seq.sqlite") == _rows(cache)


@pytest.mark.parametrize("spec", ["local:0", "local:x", "dask://host", "http://h:1", "local:1000"])
def test_bad_worker_specs_are_one_line(spec, capsys, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="--workers must be local:N"):
        check_workers(spec)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["search", "--oracle", "--target", "fpga", "--workers", spec]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--workers must be local:N" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_scheduler_is_one_line(tiny_run, data_dir, tmp_path, monkeypatch):
    import hwnas.core.workers

    monkeypatch.setattr(hwnas.core.workers, "CONNECT_TIMEOUT", 1.0)
    with pytest.raises(ValueError, match="cannot reach the Dask scheduler at dask://127.0.0.1:9"):
        _search(tiny_run, data_dir, tmp_path / "c.sqlite", workers="dask://127.0.0.1:9")
