"""The notebooks in notebooks/ are stored without outputs and run top to bottom with their default (tiny)
configuration: a fresh python3 kernel per notebook, its working directory a temporary folder, its files
under $HWNAS_NOTEBOOK_OUT there, data from $HWNAS_DATA. Needs the `notebooks` extra (nbclient, nbformat,
ipykernel)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ["quickstart.ipynb", "device_fronts.ipynb", "proxy_vs_true.ipynb", "search_process.ipynb"]
CELL_TIMEOUT = 600  # seconds per cell


def _read(name: str):
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(NOTEBOOKS / name, as_version=4)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name):
    nb = _read(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code cell"
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{name}: cells {dirty} hold stored outputs; clear them before saving"
    assert "parameters" in code[0].metadata.get("tags", []), f"{name}: the first code cell must be the parameters"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, data_dir, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    nb = _read(name)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.setenv("HWNAS_NOTEBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("HWNAS_DATA", str(Path(data_dir).resolve()))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT,
                                     resources={"metadata": {"path": str(work)}})
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the failing cell
    print(f"{name}: {time.perf_counter() - t0:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{name}: {errors[0].ename}: {errors[0].evalue}"
    assert any(p.is_file() for p in (tmp_path / "out").rglob("*")), f"{name} wrote nothing under OUT"
    assert not any(work.iterdir()), f"{name} wrote outside OUT: {sorted(p.name for p in work.iterdir())}"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_uses_only_the_public_api(name):
    """Of hwnas, a notebook imports the top-level package alone (`import hwnas`), never its modules."""
    import ast
    import sys

    nb = _read(name)
    ours = {"hwnas", "supernet", "evolve", "hardware", "benchmarks"}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top not in ours or module == "hwnas", f"{name} imports {module}; use `import hwnas`"
                assert top in ours or top in sys.stdlib_module_names or top in {"matplotlib", "numpy", "pandas"}, \
                    f"{name} imports {module}"
