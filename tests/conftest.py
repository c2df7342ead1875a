"""Shared fixtures. Real data comes from $HWNAS_DATA (default: <repo>/data, where the README's install
command prepares it)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HWNAS_DATA", str(REPO / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["HWNAS_DATA"])
    if not (path / "cifar-10-batches-py").is_dir():
        pytest.skip(f"no prepared data in {path} (python ../shared/tools/prepare_data.py {path})")
    return path
