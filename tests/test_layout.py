"""The package layout: one import name (`hwnas`), every package folder installed, every experiment under the
import-linter contracts, and the layer contracts themselves kept."""
from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hwnas

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {"hwnas": "hwnas", "supernet": "hwnas.supernet", "evolve": "hwnas.evolve", "hardware": "hwnas.hardware",
           "benchmarks": "hwnas.benchmarks"}


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return cfg


def _installed_packages() -> set[str]:
    return set(_setup_cfg()["options"]["packages"].split())


def test_every_package_folder_is_installed_under_hwnas():
    found = set()
    for folder, package in FOLDERS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([package, *rel.parts]))
    assert found == _installed_packages()
    mapping = _setup_cfg()["options"]["package_dir"]
    for folder, package in FOLDERS.items():
        assert f"{package} = {folder}" in mapping


def test_every_experiment_is_under_the_import_contracts():
    experiments = {f"hwnas.benchmarks.{p.stem}" for p in (REPO / "benchmarks").glob("*.py") if p.stem != "__init__"}
    contract = _setup_cfg()["importlinter:contract:experiments"]["forbidden_modules"].split()
    assert experiments <= set(contract), f"add {sorted(experiments - set(contract))} to setup.cfg's contracts"


def test_only_hwnas_is_importable_outside_the_repository(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import importlib.util as u, hwnas; print(hwnas.__version__); "
            "print([m for m in ('supernet', 'evolve', 'hardware', 'benchmarks') if u.find_spec(m)])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    version, leaked = out.stdout.splitlines()
    assert version == hwnas.__version__ != "0+unknown"
    assert leaked == "[]"


def test_layer_contracts_hold():
    if shutil.which("lint-imports") is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    out = subprocess.run(["bash", str(REPO / ".ci" / "lint-imports")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout
