"""Shared fixtures. Real data comes from $HWNAS_DATA (default: <repo>/data, where the README's install
command prepares it)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("HWNAS_DATA", str(REPO / "data"))


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Every test's caches (measured latency, read-only runs' proxy scores, NATS extracts) go to a folder of
    the test session, never to the user's ~/.cache/hwnas."""
    before = os.environ.get("HWNAS_CACHE")
    os.environ["HWNAS_CACHE"] = str(tmp_path_factory.mktemp("hwnas_cache"))
    yield
    if before is None:
        os.environ.pop("HWNAS_CACHE", None)
    else:
        os.environ["HWNAS_CACHE"] = before


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["HWNAS_DATA"])
    if not (path / "cifar-10-batches-py").is_dir():
        pytest.skip(f"no prepared data in {path} (python ../shared/tools/prepare_data.py {path})")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The `shared/data` folder beside the repo (or $HWNAS_SHARED) holding the raw benchmark exports."""
    candidates = []
    if os.environ.get("HWNAS_SHARED"):
        shared = Path(os.environ["HWNAS_SHARED"])
        candidates += [shared / "data", shared]
    candidates.append(REPO.parent / "shared" / "data")
    for base in candidates:
        if (base / "nb201").is_dir():
            return base
    pytest.skip("shared/data not found beside the repo (set HWNAS_SHARED)")


@pytest.fixture(autouse=True)
def one_thread():
    """Two cores are shared with other work: single-threaded runs are steadier and barely slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_run(data_dir, tmp_path_factory) -> Path:
    """A tiny trained SPOS supernet (C=4, N=1, 256 images, 1 epoch; a few seconds), one per test module
    so that proxy caches never leak between modules. Its folder is named `spos`."""
    from hwnas.supernet.trainer import TrainConfig, train

    out = tmp_path_factory.mktemp("run") / "spos"
    train(TrainConfig(mode="spos", channels=4, cells=1, max_images=256, epochs=1, batch_size=64, out=str(out),
                      data=str(data_dir), progress=False))
    return out


@pytest.fixture
def crash_after_checkpoint(monkeypatch):
    """`crash_after_checkpoint(module)`: that module's next `save_checkpoint` writes its checkpoint and
    then raises KeyboardInterrupt (a run killed right after an epoch); later saves work normally again."""
    def arm(module):
        save = module.save_checkpoint

        def save_then_crash(obj, path):
            save(obj, path)
            monkeypatch.setattr(module, "save_checkpoint", save)
            raise KeyboardInterrupt
        monkeypatch.setattr(module, "save_checkpoint", save_then_crash)
    return arm


@pytest.fixture
def file_server():
    """`serve({path: bytes}, cut_after=None) -> base URL`: files on a loopback HTTP server that honours Range
    requests (206) and, with `cut_after`, drops the connection after that many body bytes of a full answer
    (an interrupted download). `server.requests` records (path, Range header) per request."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    servers = []

    def serve(files: dict[str, bytes], cut_after: int | None = None):
        state = {"cut": cut_after}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                body = files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if state["cut"] is not None and not rng:
                    self.wfile.write(part[:state["cut"]])
                    state["cut"] = None
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(part)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.requests = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", server

    yield serve
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def flip_weight_byte():
    """f(path, tensor): flip one byte in the middle of `tensor`'s data inside the torch file at `path`."""
    def flip(path, tensor) -> None:
        data = bytearray(Path(path).read_bytes())
        # the bytes torch stores: the tensor's storage as it lies in memory (e.g. channels-last)
        raw = torch.empty(0, dtype=torch.uint8).set_(tensor.untyped_storage()).numpy().tobytes()
        at = data.find(raw)
        assert at > 0 and data.find(raw, at + 1) < 0, "the tensor's bytes must occur once in the file"
        data[at + len(raw) // 2] ^= 0x10
        Path(path).write_bytes(bytes(data))
    return flip
