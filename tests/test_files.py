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
