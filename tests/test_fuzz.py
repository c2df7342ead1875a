"""The hostile-user campaign as tests: hypothesis-generated bad inputs (arch strings, space options, YAML
configs, device tables, lookup tables, front files, checkpoints) never end in a traceback or a hang, and a
command that refuses its input says so in one line, exits non-zero and leaves no new file behind.

Fixed seed (`derandomize`) and bounded example counts, so CI runs the same cases every time in about a
minute; every case runs under a timeout (`_within`).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hwnas.cli import main as cli_main  # noqa: E402
from hwnas.supernet.ops import NB201_OPS  # noqa: E402

CASE_TIMEOUT_S = 60
FUZZ = settings(derandomize=True, deadline=None, database=None, max_examples=25,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"


@contextlib.contextmanager
def _within(seconds: float = CASE_TIMEOUT_S):
    """Fail the case as a hang when it runs longer than `seconds`."""
    def hang(*_):
        raise TimeoutError(f"hung for more than {seconds} s")
    old = signal.signal(signal.SIGALRM, hang)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def run_cli(argv: list[str], folder: Path, must_fail: bool = True) -> tuple[int, list[str]]:
    """`hwnas argv` run in `folder`: no traceback, no hang; when it fails, one error line (after any warning
    lines), a non-zero exit and no new file in `folder`. Returns (exit status, stderr lines)."""
    before, cwd, err = _files(folder), os.getcwd(), io.StringIO()
    os.chdir(folder)
    try:
        with _within(), contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = cli_main(argv)
    finally:
        os.chdir(cwd)
    lines = err.getvalue().strip().splitlines()
    if must_fail:
        assert rc != 0, (argv, lines)
    if rc != 0:
        assert lines and lines[-1].startswith("hwnas: error: "), (argv, lines)
        assert all(line.startswith("warning: ") for line in lines[:-1]), (argv, lines)
        assert _files(folder) == before, (argv, _files(folder) - before)
    assert not any("Traceback" in line for line in lines), (argv, lines)
    return rc, lines


def _api_refuses(call, *errors):
    """`call()` either works or raises one of the one-line errors hwnas promises (ValueError, which its
    UsageError and CorruptFileError are, or FileNotFoundError); anything else fails the case."""
    try:
        with _within():
            return call()
    except (ValueError, FileNotFoundError, *errors) as exc:
        text = str(exc)
        assert text and "\n" not in text.strip(), repr(text)
        return None


@pytest.fixture
def folder():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


# --------------------------------------------------------------------------------------------- strategies
_OPS = st.sampled_from([*NB201_OPS, "conv", "", "nor_conv_3x3 ", "NONE"])
_SEP = st.sampled_from(["|", "~", "+", "-", "", " ", "||"])


@st.composite
def arch_strings(draw):
    """Random text, and near-misses of a valid NB201 string (an op renamed, a separator or index broken)."""
    if draw(st.booleans()):
        return draw(st.text(max_size=80))
    tokens = ARCH.split("|")
    i = draw(st.integers(0, len(tokens) - 1))
    kind = draw(st.sampled_from(["op", "sep", "index", "drop"]))
    if kind == "op" and "~" in tokens[i]:
        tokens[i] = draw(_OPS) + "~" + tokens[i].split("~")[1]
    elif kind == "index" and "~" in tokens[i]:
        tokens[i] = tokens[i].split("~")[0] + "~" + draw(st.sampled_from(["9", "-1", "x", "", "10000000000"]))
    elif kind == "drop":
        del tokens[i]
    return draw(_SEP).join(tokens) if kind == "sep" else "|".join(tokens)


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False)
                     | st.text(max_size=10),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                 max_size=3), max_leaves=12)
_YAML_SCALARS = st.sampled_from(["null", "~", ".inf", "-.inf", ".nan", "2020-01-01", "2020-01-01 10:00:00", "yes",
                                 "'1'", "[1, 2]", "{a: 1}", "-1", "0", "1e400", "100000000000", "0x10", "!!binary aGk=",
                                 "[[[[[[]]]]]]", "''", "true", "3.5", "nb201", "|a~0|"])


# --------------------------------------------------------------------------------------------- the campaign
@FUZZ
@given(arch=arch_strings())
def test_bad_arch_strings(arch, folder):
    from hwnas.supernet.spaces import get_space

    space = get_space("nb201")
    if _api_refuses(lambda: space.from_str(arch)) is not None:
        return  # a near-miss that is still a valid string
    run_cli(["measure", "--arch", arch, "--channels", "4", "--cells", "1", "--repeats", "1", "--warmup", "0"],
            folder)


@FUZZ
@given(space=st.sampled_from(["mobilenet", "shufflenet", "resblock", "nb201"]),
       key=st.sampled_from(["stages", "kernels", "expansions", "hidden", "hidden_channels", "kernel_transform",
                            "widths", "bogus"]),
       value=_JSON | st.just([[1, 10**9, 1]]) | st.just([[10**6, 1, 1]]) | st.just([3, 10**5]))
def test_space_options(space, key, value, folder):
    run_cli(["space", "show", "--space", space, "--space-option", f"{key}={json.dumps(value)}"], folder,
            must_fail=False)


@settings(FUZZ, max_examples=30)
@given(key=st.sampled_from(["epochs", "channels", "cells", "batch_size", "lr", "mode", "sampler", "max_images",
                            "seed", "space", "space_options", "few_shot_edge", "latency_alpha", "held_out_images",
                            "max_params", "max_memory_gb", "max_seconds", "order", "weight_decay", "protocol",
                            "unknown_key"]),
       value=_YAML_SCALARS)
def test_yaml_configs(key, value, folder):
    """Wrong types and ranges in a config file: one line naming the key (the data folder does not exist, so
    a config that is valid fails there, still in one line and before any file is written)."""
    (folder / "c.yaml").write_text(f"{key}: {value}\n")
    run_cli(["train", "--config", "c.yaml", "--data", str(folder / "no_data"), "--out", "run", "--quiet"], folder)


@settings(FUZZ, max_examples=40)
@given(rows=st.lists(st.tuples(arch_strings() | st.just(ARCH),
                               st.sampled_from(["1.5", "inf", "-inf", "nan", "", "fast", "1e400", "-3", "0"])),
                     max_size=6),
       header=st.sampled_from(["arch_str,latency_ms", "arch,latency_ms", "arch_str", "arch_str,latency_ms,x", ""]),
       raw=st.binary(max_size=40))
def test_device_tables(rows, header, raw, folder):
    from hwnas.benchmarks.tables.device_table import DeviceTable

    path = folder / "board.csv"
    path.write_bytes((header + "\n" + "\n".join(f"{a},{v}" for a, v in rows)).encode() + raw)
    table = _api_refuses(lambda: DeviceTable.from_csv(path))
    if table is not None and table.metrics():
        _api_refuses(lambda: table.lookup([ARCH], table.metrics()[0]))


@FUZZ
@given(doc=_JSON | st.fixed_dictionaries({"target": _JSON, "settings": _JSON, "entries": _JSON}),
       suffix=st.sampled_from([".json", ".csv"]))
def test_lookup_tables(doc, suffix, folder):
    from hwnas.hardware.lut import LatencyTable

    path = folder / f"lut{suffix}"
    path.write_text(json.dumps(doc) if suffix == ".json" else f"# target: {json.dumps(doc)}\nblock,ms\nx,{doc}\n")
    if _api_refuses(lambda: LatencyTable.load(path)) is None and suffix == ".json":
        run_cli(["lut", "check", "--lut", str(path), "--sample", "3", "--channels", "4", "--cells", "1", "--quiet"],
                folder)


@FUZZ
@given(doc=st.fixed_dictionaries({"format": st.just("hwnas.front/1") | _JSON, "objectives": _JSON, "meta": _JSON,
                                  "table": _JSON | st.fixed_dictionaries({"columns": _JSON, "dtypes": _JSON,
                                                                          "data": _JSON}),
                                  "history": _JSON}) | _JSON,
       ext=st.sampled_from(["json", "csv", "parquet"]), raw=st.binary(max_size=64))
def test_front_files(doc, ext, raw, folder):
    from hwnas.evolve.front import Front

    path = folder / f"front.{ext}"
    path.write_bytes(json.dumps(doc).encode() if ext == "json" else raw)
    _api_refuses(lambda: Front.load(path))
    run_cli(["plot", str(path), "--out", str(folder / "plot.png")], folder, must_fail=False)


@pytest.fixture(scope="module")
def checkpoint_bytes(tiny_run) -> bytes:
    return (tiny_run / "supernet.pt").read_bytes()


@settings(FUZZ, max_examples=30)
@given(where=st.floats(0, 1, exclude_max=True), how=st.sampled_from(["flip", "truncate", "zero"]),
       mask=st.integers(1, 255))
def test_damaged_checkpoints(where, how, mask, checkpoint_bytes, folder):
    """A byte flipped or zeroed anywhere, or the file cut short: refused in one line, or (a byte no reader
    looks at, e.g. zip padding) loaded with exactly the contents hwnas wrote."""
    from hwnas.supernet.checkpoint import content_digest, load_checkpoint

    data = bytearray(checkpoint_bytes)
    at = int(where * len(data))
    if how == "truncate":
        data = data[:at]
    else:
        data[at] = data[at] ^ mask if how == "flip" else 0
    path = folder / "supernet.pt"
    path.write_bytes(bytes(data))
    ckpt = _api_refuses(lambda: load_checkpoint(path))
    if ckpt is not None:
        original = folder / "original.pt"
        original.write_bytes(checkpoint_bytes)
        assert content_digest(ckpt) == content_digest(load_checkpoint(original))
