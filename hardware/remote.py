"""Client of the measurement agent (`hardware.agent`): time models on a remote device over HTTP.

    dev = RemoteDevice("http://127.0.0.1:8765", read_token(None))
    dev.health()                   # {"ok": True, "target": {...}}
    dev.measure(request)           # {"timing": {...}, "device": {...}}; request from describe_request

Standard library only (urllib). Connection errors, timeouts and 5xx answers are retried with exponential
backoff (`backoff * 2**i` seconds); when the retries are spent a `ConnectionError` says why. A 4xx answer
is the request's fault and is not retried: `ValueError` with the status and the agent's own message.
Proxies from the environment are ignored and redirects are not followed, so the token only ever goes to
the URL given.
"""
from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request

from hwnas.core.errors import AuthError, RemoteError, UsageError

from .tokens import TOKEN_ENV

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx surfaces as an HTTPError; the token is never re-sent elsewhere


class RemoteDevice:
    """A measurement agent at `url` (http://host:port), authenticated by `token`.

    `timeout` is per attempt in seconds; `retries` is how many times a failed attempt is repeated
    (so at most `retries + 1` attempts); `backoff` the first wait between attempts, doubling after each.
    """

    def __init__(self, url: str, token: str, timeout: float = 60.0, retries: int = 3, backoff: float = 0.5):
        url = url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"agent URL '{url}' must start with http:// or https://")
        if not token or not token.strip():
            raise UsageError("empty agent token")
        if retries < 0 or timeout <= 0 or backoff < 0:
            raise UsageError(f"need retries >= 0, timeout > 0, backoff >= 0; got {retries}, {timeout}, {backoff}")
        self.url = url
        self._token = token.strip()
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    def __repr__(self) -> str:
        return f"RemoteDevice({self.url!r})"  # never the token

    def health(self) -> dict:
        """The agent's GET /health answer: {"ok": True, "target": {host, cpu, torch, threads, ...}}."""
        return self._call("GET", "/health")

    def measure(self, request: dict) -> dict:
        """POST `request` (see `supernet.spaces.describe.describe_request`) to /measure; returns
        {"timing": Timing.to_dict(), "device": describe_target(...)} as the agent answered."""
        if not isinstance(request, dict):
            raise TypeError(f"request must be a dict, got {type(request).__name__}")
        return self._call("POST", "/measure", request)

    # -- plumbing --------------------------------------------------------------------------------
    def _call(self, method: str, path: str, payload: dict | None = None) -> dict:
        """One request with retries; see the module docstring for what is retried."""
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return self._once(method, path, data)
            except _Retryable as exc:
                last = str(exc)
        raise ConnectionError(f"agent {self.url}{path} failed after {self.retries + 1} attempts: {last}")

    def _once(self, method: str, path: str, data: bytes | None) -> dict:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return _decode(resp.read(), resp.status, self.url + path)
        except urllib.error.HTTPError as exc:
            body = _read_quietly(exc)
            message = _error_text(body)
            if exc.code >= 500:
                raise _Retryable(f"HTTP {exc.code}: {message}") from None
            if exc.code == 401:
                raise AuthError(f"agent {self.url} refused the token (HTTP 401: {message}); check --agent-token-file "
                                 f"or ${TOKEN_ENV}") from None
            raise RemoteError(f"agent {self.url}{path} answered HTTP {exc.code}: {message}") from None
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, bad status line
            reason = getattr(exc, "reason", exc)
            raise _Retryable(f"{type(reason).__name__}: {reason}") from None


class _Retryable(Exception):
    """A failure worth another attempt (connection, timeout, 5xx)."""


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read()
    except OSError:
        return b""


def _error_text(body: bytes) -> str:
    """The agent's {"error": ...} message, or the start of whatever else came back."""
    try:
        data = json.loads(body.decode("utf-8"))
        if isinstance(data, dict) and "error" in data:
            return str(data["error"])
    except (UnicodeDecodeError, ValueError):
        pass
    text = " ".join(body.decode("utf-8", "replace").split())
    return text[:200] or "(no body)"


def _decode(body: bytes, status: int, where: str) -> dict:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RemoteError(f"{where} answered HTTP {status} with something other than JSON "
                         f"(is it an hwnas agent?): {_error_text(body)}") from None
    if isinstance(data, dict):
        return data
    raise RemoteError(f"{where} answered HTTP {status} with JSON that is not an object")
