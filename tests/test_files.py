"""Atomic writes (hwnas.core.files): files get the mode the user's umask gives, as open() would, and a failed
write leaves neither the file nor a temp file behind."""
from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from hwnas.core.files import atomic_write, atomic_write_text
from hwnas.evolve.front import Front


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert _mode(atomic_write_text(tmp_path / "a.txt", "x")) == expected
    table = pd.DataFrame({"arch_str": ["a", "b"], "encoding": ["0", "1"], "err": [1.0, 2.0], "lat": [2.0, 1.0]})
    for path in Front.from_evaluations(table, ["err", "lat"]).save(tmp_path / "front", formats=("csv", "json")):
        assert _mode(path) == expected, path


def test_a_failed_write_leaves_nothing(tmp_path):
    def fail(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "out.txt", fail)
    assert list(tmp_path.iterdir()) == []


def _tagged_front(run: str) -> Front:
    table = pd.DataFrame({"arch_str": ["a", "b"], "encoding": ["0", "1"], "err_pct": [1.0, 2.0],
                          "lat_ms": [2.0, 1.0], "run": [run, run]})
    return Front.from_evaluations(table, ["err_pct", "lat_ms"], meta={"run": run})


def _runs_in(folder) -> dict[str, str]:
    """Which run wrote each file of the front set in `folder` (temp files ignored)."""
    import pyarrow.parquet as pq

    found = {}
    for path in folder.iterdir():
        if path.name.startswith("."):
            continue
        if path.suffix == ".png":
            found[path.name] = path.read_text()
        elif path.suffix == ".parquet":
            found[path.name] = pq.read_table(path).to_pandas()["run"].iloc[0]
        else:
            found[path.name] = Front.load(path).table["run"].iloc[0]
    return found


def _save_and_die_after(folder, run: str, steps: int) -> None:
    """In a forked child: save `run`'s front set and die like kill -9 (no cleanup) after `steps` file
    operations (unlinks and renames) of the swap."""
    pid = os.fork()
    if pid == 0:  # child
        count = [0]
        real_replace, real_unlink = os.replace, os.unlink

        def tick():
            if count[0] == steps:
                os._exit(9)
            count[0] += 1

        def replace(*a, **k):
            tick()
            return real_replace(*a, **k)

        def unlink(*a, **k):
            if not str(a[0]).endswith(".tmp"):
                tick()
            return real_unlink(*a, **k)

        os.replace, os.unlink = replace, unlink
        try:
            _tagged_front(run).save(folder / "front", extra={"png": lambda tmp: open(tmp, "w").write(run)})
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def test_a_kill_during_save_never_leaves_files_of_two_runs(tmp_path):
    """A front's .csv/.json/.parquet/.png are one set: killed at any step of the swap, the folder holds files
    of the old run or of the new one, never both (or none, between removing the old and moving in the new);
    the next save removes the dead writer's temp files."""
    pytest.importorskip("pyarrow")
    for steps in range(9):  # 4 unlinks, 4 renames: every point of the swap, and a save that completes
        folder = tmp_path / f"kill{steps}"
        folder.mkdir()
        _tagged_front("old").save(folder / "front", extra={"png": lambda tmp: open(tmp, "w").write("old")})
        _save_and_die_after(folder, "new", steps)
        runs = _runs_in(folder)
        assert len(set(runs.values())) <= 1, (steps, runs)
        assert runs or steps == 4, steps  # empty only between removing the old set and the first rename
        _tagged_front("third").save(folder / "front", formats=("csv", "json"))
        assert _runs_in(folder) == {"front.csv": "third", "front.json": "third"}, steps
        assert not list(folder.glob(".*.tmp")), steps
    assert set(_runs_in(tmp_path / "kill8").values()) == {"third"}


def test_a_live_writers_temp_file_is_left_alone(tmp_path):
    from hwnas.core.files import remove_stale_temps

    target = tmp_path / "x.txt"
    mine = tmp_path / f".x.txt.{os.getpid()}.abcd1234.tmp"
    dead = tmp_path / ".x.txt.999999999.abcd1234.tmp"
    other = tmp_path / f".y.txt.{os.getpid()}.abcd1234.tmp"
    for p in (mine, dead, other):
        p.write_text("partial")
    assert remove_stale_temps(target) == [dead]
    assert mine.exists() and other.exists()
