"""A loopback stand-in for the checkpoint release host: Range requests, redirects, cut or slowed transfers.

Files are published under Hugging Face's layout (``/<org>/<repo>/resolve/main/<file>``), which answers
with a redirect to the bytes (``/blobs/<file>``), as the real host does.
"""

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
_BLOCK = 1 << 20


@dataclass
class Seen:
    method: str
    path: str
    range: str | None
    if_range: str | None


@dataclass
class ReleaseServer:
    """What the server publishes and how it misbehaves; tests change the fields between requests."""

    url: str = ""
    files: dict[str, Path] = field(default_factory=dict)  # blob name -> file on disk
    requests: list[Seen] = field(default_factory=list)
    #: Close the connection after this many body bytes of the next transfer (then cleared).
    cut_after: int | None = None
    #: Seconds to wait after each MiB sent.
    delay_per_block_s: float = 0.0
    #: Answer every range request with the whole file (a server without Range support).
    ignore_range: bool = False
    #: Replace the bytes served from this offset on with different ones (a corrupted copy).
    corrupt_from: int | None = None

    def publish(self, path: Path, release_path: str) -> None:
        """Serve path's bytes at release_path (redirecting to /blobs/<name>)."""
        self.files[release_path.lstrip("/")] = path

    def transfers(self) -> list[Seen]:
        """GET requests for the bytes themselves (not the redirects to them)."""
        return [seen for seen in self.requests if seen.method == "GET" and seen.path.startswith("/blobs/")]


def _etag(path: Path) -> str:
    stat = path.stat()
    return f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'


def _handler(state: ReleaseServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            state.requests.append(
                Seen(self.command, self.path, self.headers.get("range"), self.headers.get("if-range"))
            )
            name = self.path.lstrip("/")
            if name in state.files:
                self.send_response(302)
                self.send_header("location", f"/blobs/{name}")
                self.send_header("content-length", "0")
                self.end_headers()
                return
            blob = state.files.get(name.removeprefix("blobs/")) if name.startswith("blobs/") else None
            if blob is None:
                self._plain(404, b"not found")
                return
            self._serve(blob, body)

        def _plain(self, status: int, text: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def _serve(self, blob: Path, body: bool) -> None:
            size = blob.stat().st_size
            etag = _etag(blob)
            start, end, status = 0, size - 1, 200
            requested = _RANGE.fullmatch(self.headers.get("range", "").strip())
            if_range = self.headers.get("if-range")
            if requested and not state.ignore_range and (if_range is None or if_range == etag):
                start = int(requested.group(1))
                end = min(int(requested.group(2)), size - 1) if requested.group(2) else size - 1
                if start >= size:
                    self._plain(416, b"", {"content-range": f"bytes */{size}"})
                    return
                status = 206
            self.send_response(status)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(end - start + 1))
            self.send_header("accept-ranges", "bytes")
            self.send_header("etag", etag)
            if status == 206:
                self.send_header("content-range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if body:
                self._send_bytes(blob, start, end)

        def _send_bytes(self, blob: Path, start: int, end: int) -> None:
            budget, state.cut_after = state.cut_after, None
            sent = 0
            with open(blob, "rb") as source, contextlib.suppress(OSError):
                source.seek(start)
                position = start
                while position <= end:
                    block = source.read(min(_BLOCK, end - position + 1))
                    if state.corrupt_from is not None and position + len(block) > state.corrupt_from:
                        cut = max(0, state.corrupt_from - position)
                        block = block[:cut] + bytes(255 - b for b in block[cut:])
                    if budget is not None and sent + len(block) > budget:
                        self.wfile.write(block[: budget - sent])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    self.wfile.write(block)
                    sent += len(block)
                    position += len(block)
                    if state.delay_per_block_s:
                        time.sleep(state.delay_per_block_s)

    return Handler


@contextlib.contextmanager
def release_server() -> Iterator[ReleaseServer]:
    """Run a ReleaseServer on a free loopback port for the duration of the block."""
    state = ReleaseServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
