"""The remote measurement agent: a small HTTP server on an edge device that times models for a search
running elsewhere (the client is `hardware.remote.RemoteDevice`).

    POST /measure  {"space": "nb201", "arch": "|nor_conv_3x3~0|+...", "net": {"channels": 16},
                    "input_shape": [1, 3, 32, 32], "warmup": 10, "repeats": 50, "target": "cpu"}
                -> {"timing": Timing.to_dict(), "device": describe_target(target)}
    GET  /health -> {"ok": true, "target": describe_target(target)}

The agent never unpickles or runs code from the wire: the request is plain JSON and an injected
`builder(request) -> nn.Module` turns its description into a model (the CLI injects
`supernet.spaces.describe.build_described`; this module imports nothing of ours but `hardware.measure`).

Safety: every request needs `Authorization: Bearer <token>` (constant-time comparison); bodies are capped
by Content-Length before they are read; numbers are range-checked, and the model is run once on the
requested input shape before timing, so a shape it cannot take is a 400, not a failed timing. At most
`max_concurrent` requests are handled at once (the rest wait in the listen backlog, none is dropped) and
measurements are serialised, so two timings never share the device. The server binds 127.0.0.1 unless
told otherwise; it speaks plain HTTP, so to reach a device over a network use an SSH tunnel
(`ssh -L 8765:127.0.0.1:8765 device`) or a TLS-terminating proxy rather than binding 0.0.0.0 on an
untrusted network.
"""
from __future__ import annotations

import contextlib
import hmac
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import torch

from hwnas.core.errors import BudgetError, UsageError, brief

from .measure import check_target, check_threads, describe_target, measure
from .tokens import read_token

log = logging.getLogger(__name__)

Builder = Callable[[dict], Any]

WARMUP_RANGE = (0, 1000)
REPEATS_RANGE = (1, 10000)
MAX_INPUT_ELEMENTS = 16 * 1024 * 1024
DEFAULT_INPUT_SHAPE = (1, 3, 32, 32)
_DRAIN_LIMIT = 1 << 20  # unread request bodies up to this size are discarded so the client sees our answer
_ROUTES = {"/measure": "POST", "/health": "GET"}


class RequestError(Exception):
    """An error answered with `status` and a JSON body {"error": message}."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.headers = headers or {}


class AgentServer(ThreadingHTTPServer):
    """A threading HTTP server: every connection gets a thread at once (up to `max_connections`; more are
    answered 503 from the accept loop) and must deliver its headers and body within `read_timeout`
    seconds, or it is cut off (slow or idle clients hold nothing for longer). Only authenticated, complete
    /measure requests take one of `max_concurrent` work slots, and one measurement runs at a time; /health
    needs no slot, so it is answered while measurements queue."""

    request_queue_size = 128
    daemon_threads = True

    def __init__(self, address: tuple[str, int], builder: Builder, token: str, max_concurrent: int = 4,
                 max_body_bytes: int = 65536, target: str = "cpu", threads: int | None = None,
                 log: bool = True, max_connections: int = 64, read_timeout: float = 5.0,
                 max_request_seconds: float = 120.0):
        self.builder = builder
        self.token = token.encode("ascii")
        self.max_body_bytes = int(max_body_bytes)
        self.target = target
        self.threads = threads
        self.log = log
        self.max_concurrent = int(max_concurrent)
        self.max_connections = int(max_connections)
        self.read_timeout = float(read_timeout)
        self.max_request_seconds = float(max_request_seconds)
        self.measure_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.max_concurrent)
        self._count_lock = threading.Lock()
        self.open_connections = 0
        self.active = 0       # requests holding a work slot now
        self.peak_active = 0  # most ever at once (<= max_concurrent)
        super().__init__(address, AgentHandler)

    @contextlib.contextmanager
    def work_slot(self):
        """Hold one of the `max_concurrent` work slots for the `with` block, counting them."""
        with self._slots:
            with self._count_lock:
                self.active += 1
                self.peak_active = max(self.peak_active, self.active)
            try:
                yield
            finally:
                with self._count_lock:
                    self.active -= 1

    @property
    def url(self) -> str:
        """Base URL the server listens on, e.g. http://127.0.0.1:8765."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def process_request(self, request, client_address) -> None:
        """A thread for the connection, or, when `max_connections` are open, 503 at once (no thread)."""
        with self._count_lock:
            full = self.open_connections >= self.max_connections
            if not full:
                self.open_connections += 1
        if full:
            body = json.dumps({"error": f"the agent has {self.max_connections} connections open; retry later"})
            try:
                request.settimeout(1.0)
                request.sendall((f"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                 f"Retry-After: 1\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            with self._count_lock:
                self.open_connections -= 1
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count_lock:
                self.open_connections -= 1


class AgentHandler(BaseHTTPRequestHandler):
    """Routes /measure and /health; every answer is JSON, every error one line in {"error": ...}."""

    server: AgentServer
    server_version = "hwnas-agent/0.1"
    sys_version = ""
    timeout = 30  # socket timeout of writes; reads end at the server's read_timeout (the watchdog)

    def version_string(self) -> str:
        """The Server header: our name only (no Python version)."""
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self._expired = False
        self._watchdog = threading.Timer(self.server.read_timeout, self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _expire(self) -> None:
        """The read deadline passed: stop reading from this client (a pending read returns at once)."""
        self._expired = True
        try:
            self.connection.shutdown(socket.SHUT_RD)
        except OSError:
            pass

    def _stop_watchdog(self) -> None:
        self._watchdog.cancel()

    def finish(self) -> None:
        self._stop_watchdog()
        super().finish()

    # -- routing ---------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        t0 = time.perf_counter()
        self._body_read = False
        self._error = ""
        try:
            status, payload = self._route(method)
            self._send_json(status, payload)
        except RequestError as exc:
            self._error = exc.message
            self._send_json(exc.status, {"error": exc.message}, exc.headers)
        except Exception as exc:  # noqa: BLE001 (the wire gets one line, never a traceback)
            self._error = f"{type(exc).__name__}: {_one_line(exc)}"
            self._send_json(500, {"error": self._error})
        finally:
            self._drain_body()
            self._log_line(method, t0)

    def _route(self, method: str) -> tuple[int, dict]:
        self._check_token()
        path = self.path.split("?", 1)[0]
        if path not in _ROUTES:
            raise RequestError(404, f"unknown path '{path}'; valid: {', '.join(sorted(_ROUTES))}")
        if method != _ROUTES[path]:
            raise RequestError(405, f"{path} accepts {_ROUTES[path]} only", {"Allow": _ROUTES[path]})
        if path == "/health":
            return 200, {"ok": True, "target": describe_target(self.server.target, self.server.threads)}
        return 200, self._measure(self._read_json())

    # -- checks ----------------------------------------------------------------------------------
    def _check_token(self) -> None:
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise RequestError(401, "missing bearer token (Authorization: Bearer <token>)",
                               {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode("latin-1", "replace"), self.server.token):
            raise RequestError(401, "invalid token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def _content_length(self) -> int:
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise RequestError(411, "Content-Length required")
        try:
            length = int(raw)
        except ValueError:
            raise RequestError(400, f"bad Content-Length '{raw}'") from None
        if length < 0:
            raise RequestError(400, f"bad Content-Length '{raw}'")
        return length

    def _read_json(self) -> dict:
        length = self._content_length()
        if length > self.server.max_body_bytes:
            raise RequestError(413, f"body of {length} bytes exceeds the limit of {self.server.max_body_bytes}")
        body = self.rfile.read(length)
        self._body_read = True
        self._stop_watchdog()
        if len(body) != length:
            if self._expired:
                raise RequestError(408, f"the body did not arrive within {self.server.read_timeout:g} s "
                                        f"({len(body)} of {length} bytes)")
            raise RequestError(400, f"body ended after {len(body)} of {length} bytes")
        try:
            data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            raise RequestError(400, f"malformed JSON: {_one_line(exc)}") from None
        except RecursionError:
            raise RequestError(400, "malformed JSON: nested too deeply") from None
        if not isinstance(data, dict):
            raise RequestError(400, f"request must be a JSON object, got {type(data).__name__}")
        return data

    # -- the work --------------------------------------------------------------------------------
    def _measure(self, request: dict) -> dict:
        try:
            params = validate_measure_params(request, self.server.target)
        except ValueError as exc:
            raise RequestError(400, _one_line(exc)) from None
        with self.server.work_slot(), self.server.measure_lock:  # one timing at a time; building counts too
            try:
                model = self.server.builder(request)
            except BudgetError as exc:  # over the agent's size budget: refused before anything was built
                raise RequestError(413, _one_line(exc)) from None
            except ValueError as exc:
                raise RequestError(400, _one_line(exc)) from None
            first = _probe(model, params["input_shape"])
            runs = params["warmup"] + params["repeats"]
            if first * runs > self.server.max_request_seconds:
                raise RequestError(422, f"this request would hold the device for about {first * runs:.0f} s "
                                        f"({runs} runs at {first * 1e3:.1f} ms); the limit is "
                                        f"{self.server.max_request_seconds:g} s: ask for fewer repeats")
            timing = measure(model, threads=self.server.threads, **params)
        return {"timing": timing.to_dict(), "device": describe_target(self.server.target, self.server.threads)}

    # -- output ----------------------------------------------------------------------------------
    def _send_json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        body = (json.dumps(payload) + "\n").encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # client went away; nothing more to tell it
            self.close_connection = True
        self._status = status

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """JSON instead of http.server's HTML, for errors raised before routing (bad request line...)."""
        self.close_connection = True
        self._send_json(code, {"error": message or HTTPStatus(code).phrase})
        self._log_line(getattr(self, "command", None) or "-", None)

    def _drain_body(self) -> None:
        """Discard an unread body (bounded), so closing the socket does not reset the client before it
        reads our answer."""
        if self._body_read:
            return
        try:
            length = int(self.headers.get("Content-Length", 0))
        except ValueError:
            return
        if 0 < length <= _DRAIN_LIMIT:
            try:
                self.connection.settimeout(1.0)
                self.rfile.read(length)
            except OSError:
                pass
        self.close_connection = True

    # -- logging: one line per request ------------------------------------------------------------
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced; `_log_line` writes one line per request instead."""

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log:
            log.info("%s %s", self.address_string(), _printable(format % args))

    def _log_line(self, method: str, t0: float | None) -> None:
        if not self.server.log:
            return
        ms = f"{(time.perf_counter() - t0) * 1e3:.1f}" if t0 is not None else "-"
        path = _printable(getattr(self, "path", "-"))
        error = _printable(getattr(self, "_error", ""))
        log.info("%s %s %s %s %s ms%s", self.address_string(), _printable(method), path,
                 getattr(self, "_status", "-"), ms, " " + error if error else "")


@torch.no_grad()
def _probe(model: Any, shape: tuple[int, ...]) -> float:
    """One forward pass on zeros of `shape` (on the model's device), returning its seconds (what the time
    budget of a request is priced with); a model that cannot take that input is the request's fault (400),
    found before any timing starts."""
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        t0 = time.perf_counter()
        model(torch.zeros(shape, device=param.device if param is not None else "cpu"))
        return time.perf_counter() - t0
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise RequestError(400, f"the model does not take input_shape {list(shape)}: {_one_line(exc)}") from None
    finally:
        model.train(was_training)


def _printable(text: str) -> str:
    """`text` with control and other non-printable characters escaped (\\x1b, \\n), so what a client sends
    cannot forge or colour log lines."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def _one_line(exc: BaseException) -> str:
    return brief(exc, 500)


def _reject_constant(name: str) -> None:
    raise UsageError(f"{name} is not valid JSON")


def _int_in(request: dict, key: str, default: int, lo: int, hi: int) -> int:
    value = request.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UsageError(f"'{key}' must be an integer in {lo}..{hi}, got {value!r}")
    return value


def _input_shape(request: dict) -> tuple[int, ...]:
    shape = request.get("input_shape", list(DEFAULT_INPUT_SHAPE))
    ok = (isinstance(shape, list) and len(shape) == 4
          and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape))
    if not ok:
        raise UsageError(f"'input_shape' must be a list of 4 positive integers (N, C, H, W), got {shape!r}")
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise UsageError(f"'input_shape' {shape} has {math.prod(shape)} elements; the limit is {MAX_INPUT_ELEMENTS}")
    return tuple(shape)


REQUEST_KEYS = frozenset({"space", "space_options", "arch", "net", "input_shape", "warmup", "repeats", "target"})


def validate_measure_params(request: dict, target: str) -> dict:
    """The keyword arguments for `measure` taken from `request` (defaults where a key is absent);
    ValueError naming the bad value. `target` is the agent's; a request may repeat it but not change it."""
    unknown = sorted(set(request) - REQUEST_KEYS)
    if unknown:
        raise UsageError(f"unknown request key {unknown[0]!r}; valid: {', '.join(sorted(REQUEST_KEYS))}")
    asked = request.get("target", target)
    if asked != target:
        raise UsageError(f"this agent measures target '{target}', not {asked!r}")
    return {"target": target, "input_shape": _input_shape(request),
            "warmup": _int_in(request, "warmup", 10, *WARMUP_RANGE),
            "repeats": _int_in(request, "repeats", 50, *REPEATS_RANGE)}


def _check_token_text(token: str) -> str:
    token = token.strip()
    if not token:
        raise UsageError("the agent token is empty")
    if not all(33 <= ord(c) < 127 for c in token):
        raise UsageError("the agent token must be printable ASCII without spaces")
    return token


def make_server(builder: Builder, token: str, host: str = "127.0.0.1", port: int = 0, max_concurrent: int = 4,
                max_body_bytes: int = 65536, target: str = "cpu", threads: int | None = None,
                log: bool = True, max_connections: int = 64, read_timeout: float = 5.0,
                max_request_seconds: float = 120.0) -> AgentServer:
    """A bound, not yet serving, agent (`server.serve_forever()` to run it; port 0 picks a free port,
    `server.url` tells which). `builder(request) -> nn.Module` builds the model a request describes and
    raises ValueError for a bad description. `threads` fixes the CPU thread count of every measurement."""
    check_target(target)
    if max_concurrent < 1 or max_body_bytes < 1 or max_connections < 1:
        raise UsageError(f"need max_concurrent, max_body_bytes and max_connections >= 1; got {max_concurrent}, "
                         f"{max_body_bytes}, {max_connections}")
    check_threads(threads)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(f"--port must be an integer in 0..65535 (0: any free port), got {port!r}")
    if not read_timeout > 0 or not max_request_seconds > 0:
        raise UsageError(f"need read_timeout and max_request_seconds > 0; got {read_timeout}, {max_request_seconds}")
    return AgentServer((host, port), builder, _check_token_text(token), max_concurrent=max_concurrent,
                       max_body_bytes=max_body_bytes, target=target, threads=threads, log=log,
                       max_connections=max_connections, read_timeout=read_timeout,
                       max_request_seconds=max_request_seconds)


def serve(builder: Builder, token_file: str | os.PathLike, host: str = "127.0.0.1", port: int = 8765,
          max_concurrent: int = 4, max_body_bytes: int = 65536, target: str = "cpu",
          threads: int | None = None, ready: Callable[[str], None] | None = None, **limits: Any) -> None:
    """Run an agent until Ctrl-C, with the token read from `token_file`; `ready(url)` is called once it
    listens (the CLI prints the address). `limits`: `make_server`'s max_connections, read_timeout and
    max_request_seconds."""
    token = read_token(token_file)
    if os.name == "posix" and os.stat(token_file).st_mode & 0o077:
        log.warning("token file '%s' is readable by others (chmod 600 it)", token_file)
    server = make_server(builder, token, host=host, port=port, max_concurrent=max_concurrent,
                         max_body_bytes=max_body_bytes, target=target, threads=threads, **limits)
    log.info("agent (%s) listening on %s", target, server.url)
    if ready is not None:
        ready(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
