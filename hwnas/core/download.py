"""Resumable, checksummed downloads (standard library only): the one way hwnas fetches a file.

A download goes to `<dest>.part` beside the destination; an interrupted one is continued from where it
stopped (HTTP Range) the next time, and only a file whose checksum matches is moved into place
(`os.replace`), so `dest` is either absent or complete and verified.

Imports nothing of ours.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from .errors import CorruptFileError, RuntimeFailure

CHUNK = 1 << 20


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (`algorithm`: any of hashlib's, e.g. sha256, md5; or `git-blob-sha1`,
    the id git gives the file: SHA-1 of "blob <size>\\0" followed by its bytes)."""
    if algorithm == "git-blob-sha1":
        h = hashlib.sha1(f"blob {os.path.getsize(path)}\0".encode())
    else:
        h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | os.PathLike, *, md5: str | None = None, sha256: str | None = None,
             git_blob_sha1: str | None = None, progress: bool = True, timeout: float = 60.0) -> Path:
    """Fetch `url` to `dest`, resuming a partial `<dest>.part` from an earlier attempt, and check its sha256,
    md5 or git blob id when given. A `dest` that already exists and matches the checksum is kept as it is (no request).
    RuntimeFailure when the transfer fails (the partial file stays, so calling again resumes);
    CorruptFileError when the finished file has the wrong checksum (the partial file is removed)."""
    from tqdm.auto import tqdm

    dest = Path(dest)
    algorithm, expected = next(((a, v) for a, v in (("sha256", sha256), ("md5", md5), ("git-blob-sha1", git_blob_sha1))
                                if v), (None, None))
    if dest.is_file() and (expected is None or file_digest(dest, algorithm) == expected):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file is already whole
            response = None
        else:
            raise RuntimeFailure(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeFailure(f"could not download {url}: {getattr(exc, 'reason', exc)}") from None
    if response is not None:
        with response:
            resumed = have > 0 and response.status == 206
            if not resumed:
                have = 0  # the server sent the whole file
            length = response.headers.get("Content-Length")
            total = have + int(length) if length and length.isdigit() else None
            try:
                with open(part, "ab" if resumed else "wb") as out, \
                        tqdm(total=total, initial=have, unit="B", unit_scale=True, disable=not progress,
                             desc=f"downloading {dest.name}") as bar:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise RuntimeFailure(f"download of {url} stopped after {part.stat().st_size} bytes ({exc}); "
                                     "run the same command again to resume") from None
            if total is not None and part.stat().st_size < total:
                raise RuntimeFailure(f"download of {url} stopped after {part.stat().st_size} of {total} bytes; "
                                     "run the same command again to resume")
    if expected is not None:
        got = file_digest(part, algorithm)
        if got != expected:
            part.unlink(missing_ok=True)
            raise CorruptFileError(f"download of {url} is corrupt: {algorithm} {got}, expected {expected}")
    os.replace(part, dest)
    return dest
