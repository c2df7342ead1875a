"""The remote measurement agent and its client, over loopback only: authentication, request limits,
one-line JSON errors, bounded concurrency with nothing dropped, client retries, and remote timings that
agree with local ones. Models are tiny (NB201, 4-8 channels, one cell per stage)."""
from __future__ import annotations

import ast
import http.client
import inspect
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hwnas.hardware import agent as agent_mod
from hwnas.hardware.agent import make_server, serve
from hwnas.hardware.measure import measure
from hwnas.hardware.remote import RemoteDevice
from hwnas.hardware.tokens import TOKEN_ENV, read_token
from hwnas.supernet.spaces.describe import build_described, describe_request

TOKEN = "s3cret-token-for-tests"
ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"
TINY = {"channels": 4, "cells": 1}


def _request(**over) -> dict:
    req = describe_request("nb201", ARCH, TINY, input_shape=(1, 3, 32, 32), warmup=1, repeats=3)
    req.update(over)
    return req


def _start(server):
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


def _stop(server, thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def agent():
    server = make_server(build_described, TOKEN, max_concurrent=2, log=False)
    thread = _start(server)
    yield server
    _stop(server, thread)


def _http(server, method: str, path: str, body: bytes | None = None, token: str | None = TOKEN,
          headers: dict | None = None, content_length: bool = True):
    """(status, headers, parsed JSON body) of one raw request."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.putrequest(method, path)
        if token is not None:
            conn.putheader("Authorization", f"Bearer {token}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None and content_length:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, resp.headers, json.loads(raw)
    finally:
        conn.close()


def _post(server, payload, **kw):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return _http(server, "POST", "/measure", body, **kw)


# -- the happy path -------------------------------------------------------------------------------
def test_measure_answers_sane_timing(agent):
    status, headers, data = _post(agent, _request())
    assert status == 200 and headers["Content-Type"] == "application/json"
    t = data["timing"]
    assert t["median_ms"] > 0 and t["runs"] == 3 and t["warmup"] == 1 and t["input_shape"] == [1, 3, 32, 32]
    assert data["device"]["target"] == "cpu" and data["device"]["torch"]


def test_health_and_client(agent):
    dev = RemoteDevice(agent.url, TOKEN, retries=0)
    assert dev.health()["ok"] is True and dev.health()["target"]["target"] == "cpu"
    out = dev.measure(_request(repeats=4))
    assert out["timing"]["runs"] == 4 and TOKEN not in repr(dev)


def test_binds_loopback_by_default():
    server = make_server(build_described, TOKEN, log=False)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(make_server).parameters["host"].default == "127.0.0.1"


# -- authentication --------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", ""])
def test_bad_token_is_401(agent, token):
    for method, path, body in [("POST", "/measure", json.dumps(_request()).encode()), ("GET", "/health", None)]:
        status, headers, data = _http(agent, method, path, body, token=token)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        assert headers["Content-Type"] == "application/json" and data["error"]


def test_client_reports_refused_token(agent):
    with pytest.raises(ValueError, match="refused the token"):
        RemoteDevice(agent.url, "wrong", retries=3, backoff=0.01).health()


# -- request limits and validation -----------------------------------------------------------------
def test_oversized_body_is_413(agent):
    big = json.dumps(_request(pad="x" * 70_000)).encode()
    status, _, data = _post(agent, big)
    assert status == 413 and "limit" in data["error"]


def test_size_checked_before_reading_body(agent):
    """A huge Content-Length with no body must be refused at once, not waited for."""
    with socket.create_connection(agent.server_address[:2], timeout=10) as s:
        s.sendall(f"POST /measure HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                  f"Content-Length: {10**9}\r\n\r\n".encode())
        answer = s.recv(4096).decode()
    assert answer.startswith("HTTP/1.0 413")


def test_garbled_request_line_gets_json_400(agent):
    with socket.create_connection(agent.server_address[:2], timeout=10) as s:
        s.sendall(b"GET / too many words HTTP/1.0\r\n\r\n")
        answer = s.makefile("rb").read().decode()  # to EOF: the agent closes after answering
    head, _, body = answer.partition("\r\n\r\n")
    assert " 400 " in head.splitlines()[0] and "application/json" in head and json.loads(body)["error"]


def test_missing_content_length_is_411(agent):
    status, _, data = _post(agent, b"{}", content_length=False)
    assert status == 411 and "Content-Length" in data["error"]


@pytest.mark.parametrize("body, needle", [
    (b"{not json", "malformed JSON"),
    (b"[1, 2]", "JSON object"),
    (b"\xff\xfe", "malformed JSON"),
    (b'{"space": "nb201", "arch": NaN}', "malformed JSON"),
])
def test_malformed_json_is_400(agent, body, needle):
    status, _, data = _post(agent, body)
    assert status == 400 and needle in data["error"]


@pytest.mark.parametrize("over, needle", [
    ({"arch": "|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"}, "unknown op 'bogus'"),
    ({"arch": "not an arch"}, "bad NB201 arch string"),
    ({"arch": 5}, "'arch' must be"),
    ({"space": "nb301"}, "valid: mobilenet, nb201"),
    ({"net": {"channels": 4, "widht": 3}}, "valid: channels, cells, num_classes"),
    ({"net": {"channels": 100000}}, "1..512"),
    ({"repeats": 0}, "'repeats'"),
    ({"repeats": 10001}, "'repeats'"),
    ({"repeats": "5"}, "'repeats'"),
    ({"repeats": True}, "'repeats'"),
    ({"warmup": -1}, "'warmup'"),
    ({"input_shape": [1, 3, 32]}, "'input_shape'"),
    ({"input_shape": [1, 3, 0, 32]}, "'input_shape'"),
    ({"input_shape": [64, 3, 1024, 1024]}, "limit"),
    ({"target": "cuda"}, "this agent measures target 'cpu'"),
    ({"repeat": 5}, "unknown request key 'repeat'"),
    ({"input_shape": [1, 5, 32, 32]}, "does not take input_shape [1, 5, 32, 32]"),
])
def test_bad_request_is_400(agent, over, needle):
    status, _, data = _post(agent, _request(**over))
    assert status == 400 and needle in data["error"], data


def test_unknown_path_404_and_wrong_method_405(agent):
    status, _, data = _http(agent, "GET", "/nope")
    assert status == 404 and "/measure" in data["error"]
    status, headers, _ = _http(agent, "GET", "/measure")
    assert status == 405 and headers["Allow"] == "POST"


def test_builder_crash_is_500_without_traceback():
    def broken(request):
        raise RuntimeError("device on fire")

    server = make_server(broken, TOKEN, log=False)
    thread = _start(server)
    try:
        status, _, data = _post(server, _request())
    finally:
        _stop(server, thread)
    assert status == 500 and data == {"error": "RuntimeError: device on fire"}


# -- concurrency -----------------------------------------------------------------------------------
def test_burst_is_bounded_and_nothing_dropped():
    """200 requests from 8 concurrent clients on loopback: every one answered, none dropped."""
    lock, state = threading.Lock(), {"now": 0, "peak": 0}

    def counting_builder(request):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            time.sleep(0.002)
            return build_described(request)
        finally:
            with lock:
                state["now"] -= 1

    server = make_server(counting_builder, TOKEN, max_concurrent=2, log=False)
    thread = _start(server)
    dev = RemoteDevice(server.url, TOKEN, retries=0, timeout=60)  # no retries: a dropped one would fail
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: dev.measure(_request(repeats=2)), range(200)))
    finally:
        _stop(server, thread)
    assert len(results) == 200 and all(r["timing"]["runs"] == 2 for r in results)
    assert 1 <= server.peak_active <= 2   # handlers at once: bounded by max_concurrent
    assert state["peak"] == 1             # measurements (build + time) never overlap


# -- client retries --------------------------------------------------------------------------------
class _Scripted(BaseHTTPRequestHandler):
    """Answers with the next status of `server.script` (the last one repeats) and counts calls."""

    def do_GET(self):
        srv = self.server
        with srv.lock:
            status = srv.script[min(srv.calls, len(srv.script) - 1)]
            srv.calls += 1
        body = json.dumps({"ok": True} if status == 200 else {"error": f"scripted {status}"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    servers = []

    def start(*script):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
        server.script, server.calls, server.lock = list(script), 0, threading.Lock()
        servers.append((server, _start(server)))
        return server, f"http://127.0.0.1:{server.server_address[1]}"
    yield start
    for server, thread in servers:
        _stop(server, thread)


def test_client_retries_503_then_succeeds(scripted):
    server, url = scripted(503, 503, 200)
    assert RemoteDevice(url, TOKEN, retries=3, backoff=0.01).health() == {"ok": True}
    assert server.calls == 3


def test_client_gives_up_after_retries(scripted):
    server, url = scripted(503)
    with pytest.raises(ConnectionError, match="after 3 attempts.*503.*scripted 503"):
        RemoteDevice(url, TOKEN, retries=2, backoff=0.01).health()
    assert server.calls == 3


@pytest.mark.parametrize("status", [400, 404, 413])
def test_client_does_not_retry_4xx(scripted, status):
    server, url = scripted(status, 200)
    with pytest.raises(ValueError, match=f"HTTP {status}: scripted {status}"):
        RemoteDevice(url, TOKEN, retries=3, backoff=0.01).health()
    assert server.calls == 1


def test_client_retries_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(ConnectionError, match="after 2 attempts"):
        RemoteDevice(f"http://127.0.0.1:{port}", TOKEN, retries=1, backoff=0.01, timeout=5).health()


# -- tokens ----------------------------------------------------------------------------------------
def test_read_token(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ValueError, match=f"token file.*{TOKEN_ENV}"):
        read_token(None)
    monkeypatch.setenv(TOKEN_ENV, "  from-env\n")
    assert read_token(None) == "from-env"
    f = tmp_path / "token"
    f.write_text("from-file\n")
    assert read_token(f) == "from-file"
    f.write_text("  \n")
    with pytest.raises(ValueError, match="empty"):
        read_token(f)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_token(tmp_path / "missing")


def test_empty_token_refused_at_startup():
    with pytest.raises(ValueError, match="empty"):
        make_server(build_described, "  ", log=False)


# -- layering and agreement with local timing ------------------------------------------------------
def test_agent_imports_only_hardware_measure():
    tree = ast.parse(Path(agent_mod.__file__).read_text())
    ours = ("supernet", "evolve", "benchmarks", "hardware")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            name = "." * node.level + (node.module or "")
            if node.level or name.split(".")[0] in ours:
                found.add(name)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] in ours}
    assert found - {"hwnas.core.errors", "hwnas.core.registry"} == {".measure", ".tokens"}


def test_remote_timing_matches_local(agent):
    req = describe_request("nb201", ARCH, {"channels": 8, "cells": 1}, warmup=3, repeats=20)
    remote = RemoteDevice(agent.url, TOKEN, retries=0).measure(req)["timing"]["median_ms"]
    local = measure(build_described(req), input_shape=(1, 3, 32, 32), warmup=3, repeats=20).median_ms
    assert 0.33 <= remote / local <= 3, (remote, local)


def test_remote_latency_objective_measures_through_the_agent(agent, tmp_path):
    """`remote_latency:<url>` in a search context: the agent's timings, cached per canonical arch."""
    import numpy as np

    from hwnas.evolve.objectives.measured import MeasureSettings
    from hwnas.evolve.objectives import get_objective
    from hwnas.evolve.sources import Sources

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    ctx = Sources(net=dict(TINY), progress=False, agent_token_file=str(token_file),
                  measure=MeasureSettings(warmup=1, repeats=3), latency_cache=str(tmp_path / "latency.sqlite"))
    obj = get_objective(f"remote_latency:{agent.url}", ctx)
    assert obj.column.startswith("remote_latency_http_127_0_0_1_") and obj.unit == "ms"
    space = ctx.space
    archs = [space.from_str(ARCH), space.from_str("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")]
    values = obj(archs)
    assert np.all(values > 0) and obj.fn.misses == 2
    again = get_objective(f"remote_latency:{agent.url}", ctx)
    assert np.array_equal(again(archs), values) and again.fn.hits == 2 and again.fn.misses == 0


def test_cli_agent_serves_and_cli_measures_through_it(tmp_path):
    """`hwnas agent serve` in its own process (port 0, printed address), `hwnas measure --agent` against it."""
    import os
    import subprocess
    import sys

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    agent = subprocess.Popen([sys.executable, "-m", "hwnas.cli", "agent", "serve", "--token-file", str(token_file),
                              "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        line = agent.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        url = line.split("listening on ")[1].strip()
        out = subprocess.run([sys.executable, "-m", "hwnas.cli", "measure", "--arch", ARCH, "--channels", "4",
                              "--cells", "1", "--repeats", "3", "--warmup", "1", "--json", "--agent", url,
                              "--agent-token-file", str(token_file)], capture_output=True, text=True, env=env,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        answer = json.loads(out.stdout)
        assert answer["timing"]["runs"] == 3 and answer["device"]["target"] == "cpu"
        bad = tmp_path / "wrong"
        bad.write_text("not-the-token")
        out = subprocess.run([sys.executable, "-m", "hwnas.cli", "measure", "--arch", ARCH, "--agent", url,
                              "--agent-token-file", str(bad)], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 1 and "refused the token" in out.stderr and out.stderr.count("\n") == 1
    finally:
        agent.terminate()
        agent.wait(10)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
@pytest.mark.parametrize("over, needle", [
    ({"net": {"channels": 512, "cells": 20}}, "the limit is 20M (--max-params)"),
    ({"space": "mobilenet", "arch": "k3e6-" * 19 + "k3e6", "space_options": {"expansions": [3, 100000]}},
     "an expansion must be an integer in 1..64"),
    ({"space": "mobilenet", "arch": "k3e6", "space_options": {"stages": [[1, 1000000000, 1]]}},
     "a stage's depth must be an integer in 1..64"),
    ({"space": "mobilenet", "arch": "k3e6", "space_options": {"stages": [[1000000, 1, 1]]}},
     "width multiple must be at most 64"),
])
def test_absurd_architectures_are_413_before_anything_is_built(agent, over, needle):
    """Refused from the description alone (bounds, then parameters counted on the meta device): quickly, and
    without the agent's memory growing by what the net would take (C=512, N=20: 73M parameters, 290 MB)."""
    _post(agent, _request(**{"net": {"channels": 512, "cells": 20}}))  # warm the meta kernels up
    before, t0 = _rss_mb(), time.perf_counter()
    status, _, data = _post(agent, _request(**over))
    took = time.perf_counter() - t0
    assert status == 413 and needle in data["error"], data
    assert _rss_mb() - before < 100
    assert took < 10  # a guard against building it (measured: 0.1-0.6 s)


def test_deeply_nested_json_is_400(agent):
    status, _, data = _post(agent, b'{"space": ' + b"[" * 100000 + b"]" * 100000 + b"}")
    assert status in (400, 413) and ("nested too deeply" in data["error"] or "exceeds" in data["error"]), data
    small = b'{"net": ' + b"[" * 20000 + b"]" * 20000 + b"}"
    server = make_server(build_described, TOKEN, max_concurrent=2, log=False, max_body_bytes=len(small) + 1)
    thread = _start(server)
    try:
        status, _, data = _post(server, small)
        assert status == 400 and "nested too deeply" in data["error"], data
    finally:
        _stop(server, thread)


# -- hostile clients -------------------------------------------------------------------------------
@pytest.fixture
def guarded():
    """An agent with short limits: 1 s to deliver a request, 10 connections at most."""
    server = make_server(build_described, TOKEN, max_concurrent=2, log=False, read_timeout=1.0,
                         max_connections=10)
    thread = _start(server)
    yield server
    _stop(server, thread)


def _raw(server, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(server.server_address[:2], timeout=30)
    if data:
        sock.sendall(data)
    return sock


def _timed(call) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = call()
    return time.perf_counter() - t0, out


def test_slow_header_and_idle_clients_do_not_delay_others(guarded):
    """Four clients trickling header lines and four idle sockets: /health and /measure still answer at once
    (the trickling ones are cut off at the read deadline, not after their last header)."""
    stop = threading.Event()
    alone, (status, _, _) = _timed(lambda: _post(guarded, _request()))  # also warms the size check up
    assert status == 200

    def trickle(sock):
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\n")
            while not stop.wait(0.3):
                sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            pass  # cut off by the agent
    slow = [_raw(guarded) for _ in range(4)]
    idle = [_raw(guarded) for _ in range(4)]
    threads = [threading.Thread(target=trickle, args=(s,), daemon=True) for s in slow]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        took, (status, _, _) = _timed(lambda: _http(guarded, "GET", "/health"))
        assert status == 200 and took < 2, took
        took, (status, _, _) = _timed(lambda: _post(guarded, _request()))
        assert status == 200 and took < alone + 2, (took, alone)
        time.sleep(1.5)  # past the read deadline: the slow and idle clients have been cut off
        assert guarded.open_connections == 0
    finally:
        stop.set()
        for sock in slow + idle:
            sock.close()


def test_a_short_body_is_answered_408_at_the_read_deadline(guarded):
    sock = _raw(guarded, (f"POST /measure HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                          "Content-Length: 100\r\n\r\n{\"sp").encode())
    took, answer = _timed(lambda: sock.recv(4096))
    sock.close()
    assert answer.startswith(b"HTTP/1.0 408") and took < 3, (took, answer[:80])


def test_connections_over_the_cap_get_503(guarded):
    held = [_raw(guarded) for _ in range(10)]
    time.sleep(0.2)
    try:
        status, headers, data = _http(guarded, "GET", "/health")
        assert status == 503 and "connections open" in data["error"]
    finally:
        for sock in held:
            sock.close()
    time.sleep(1.5)
    assert _http(guarded, "GET", "/health")[0] == 200


def test_a_request_that_would_hold_the_device_too_long_is_422():
    server = make_server(build_described, TOKEN, log=False, max_request_seconds=0.001)
    thread = _start(server)
    try:
        status, _, data = _post(server, _request(repeats=10000))
    finally:
        _stop(server, thread)
    assert status == 422 and "ask for fewer repeats" in data["error"], data


def test_control_characters_in_a_request_are_escaped_in_the_log(caplog):
    server = make_server(build_described, TOKEN, log=True)
    thread = _start(server)
    try:
        with caplog.at_level("INFO", logger="hwnas.hardware.agent"):
            sock = _raw(server, b"GET /\x1b[31mred\x07 HTTP/1.0\r\n\r\n")
            sock.recv(4096)
            sock.close()
            time.sleep(0.2)
    finally:
        _stop(server, thread)
    text = caplog.text
    assert "\\x1b[31mred\\x07" in text and "\x1b" not in text and "\x07" not in text, text
