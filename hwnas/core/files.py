"""Atomic file writes (a temp file in the same folder, then `os.replace`): nothing hwnas writes is ever left
half-written, whatever kills the process. Every layer writes through this one helper; `atomic_write_set`
writes several files (a front's .csv/.json/.parquet/.png) so that a kill never leaves files of two runs
side by side.

Temp files are named `.<name>.<pid>.<random>.tmp`; one left behind by a killed process (its pid no longer
running) is removed the next time anything writes `<name>` in that folder.

Imports nothing of ours but `hwnas.core.errors`.
"""
from __future__ import annotations

import glob
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable


def _umask() -> int:
    """The process's umask (read by setting and restoring it: there is no getter before Python 3.13's os)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temp files that killed writers of `path` left beside it: `.<name>.<pid>.<random>.tmp`
    whose pid is not running, and untagged `.<name>.<random>.tmp` (hwnas before pid tags) older than an
    hour. A live writer's temp file is never touched. Returns the paths removed."""
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        middle = tmp.name[len(path.name) + 2:-len(".tmp")].split(".")
        try:
            if len(middle) == 2 and middle[0].isdigit():
                stale = not _pid_alive(int(middle[0]))
            else:
                stale = time.time() - tmp.stat().st_mtime > 3600
            if stale:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # another cleaner got there first
            continue
    return removed


def _temp_beside(path: Path) -> str:
    """A new empty temp file beside `path`, tagged with this process's pid; stale ones are cleared first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    return tmp


def _finish(tmp: str) -> None:
    # mkstemp creates 0600 whatever the umask; give the file the mode open() would have
    os.chmod(tmp, 0o666 & ~_umask())


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call `write(tmp_path)` on a temp file beside `path`, then move it into place; on any failure the
    temp file is removed and `path` is left as it was. Returns `path`."""
    path = Path(path)
    tmp = _temp_beside(path)
    try:
        write(tmp)
        _finish(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_set(writers: dict[str | os.PathLike, Callable[[str], Any]],
                     replaces: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Write several files as one set: every `writers[path](tmp_path)` first writes its temp file; only
    when all succeeded are the old files of the set (`writers`' paths and the extra `replaces`, e.g. a
    format not written this time) removed, then the new ones moved into place. A kill at any point leaves
    files of one run only: the old set, or part of the new set (never an old file beside a new one). On
    a failure before the swap nothing changes. Returns the paths written."""
    temps: dict[Path, str] = {}
    replaces = [Path(r) for r in replaces]
    for old in replaces:  # the set's other files: their killed writers' temps go too
        remove_stale_temps(old)
    try:
        for path, write in writers.items():
            path = Path(path)
            temps[path] = _temp_beside(path)
            write(temps[path])
            _finish(temps[path])
        for old in dict.fromkeys([*temps, *replaces]):
            old.unlink(missing_ok=True)
        for path, tmp in temps.items():
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    return list(temps)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (flushed to disk before the rename)."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text version of `atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """JSON (indented, keys in insertion order) written atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


#: The largest JSON file hwnas reads back (a front of the whole NB201 space with its history is ~10 MB)
MAX_JSON_BYTES = 1 << 30


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """The JSON document in `path`, read as UTF-8 without running anything: a file that is missing is
    FileNotFoundError; one that is larger than `MAX_JSON_BYTES`, not UTF-8, not JSON or nested too deeply for
    the parser is a one-line `CorruptFileError` naming the file, `what` it should be, and what is wrong."""
    from .errors import CorruptFileError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} '{path}' not found")
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise CorruptFileError(f"{what} '{path}' is {size} bytes; hwnas reads JSON files up to {MAX_JSON_BYTES}")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{what} '{path}' is not UTF-8 text (byte {exc.start})") from None
    except RecursionError:
        raise CorruptFileError(f"{what} '{path}' is nested too deeply to be one hwnas writes") from None
    except ValueError as exc:
        raise CorruptFileError(f"{what} '{path}' is not valid JSON ({exc})") from None
