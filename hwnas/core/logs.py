"""Log files for run and search folders. Library modules log through `logging.getLogger(__name__)` (all under
the `hwnas` logger); `log_to_file` copies those records into a folder's log file while a run or search
works there, whatever the console shows (the CLI's `-v/--verbose` and `--quiet` set only the console).

Imports nothing of ours.
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Iterator

ROOT = "hwnas"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _FolderFileHandler(logging.FileHandler):
    """A FileHandler that opens its file (and makes its folder) at the first record, so a run that fails
    before it logs anything leaves no folder behind."""

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


@contextlib.contextmanager
def log_to_file(path: str | os.PathLike, level: int = logging.INFO) -> Iterator[Path]:
    """Append the `hwnas` loggers' records at `level` and above to `path` while the block runs (the file is
    created with the first record)."""
    path = Path(path)
    handler = _FolderFileHandler(path, encoding="utf-8", delay=True)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger = logging.getLogger(ROOT)
    before = logger.level
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
        handler.close()
