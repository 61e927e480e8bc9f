"""Fixtures for ml_service tests: rendered CJK images, a random-weight Chinese-CLIP checkpoint, servers."""

import contextlib
import io
import logging
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image, ImageDraw, ImageFont

from e2e.clip_weights import ensure_random_checkpoint
from ml_service.app import create_app
from ml_service.config import Settings
from ml_service.models.clip.release import release_url
from tests.ml.release_server import ReleaseServer, release_server
from testsupport.live_server import live_asgi

FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc"),
)
CLIP_ARCH = "ViT-B-16"
CLIP_NAME = "ViT-B-16__cn-clip"
CLIP_DIM = 512


@pytest.fixture(autouse=True)
def service_logging_restored() -> Iterator[None]:
    """A test that sets up the service's logging (a CLI command run in-process) leaves it as it found it,
    so a later test still sees the warnings it looks for."""
    logger = logging.getLogger("ml_service")
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    yield
    logger.setLevel(level)
    logger.handlers = handlers
    logger.propagate = propagate


@pytest.fixture(scope="session")
def cjk_font_path() -> Path:
    for candidate in FONT_CANDIDATES:
        if candidate.is_file():
            return candidate
    pytest.fail("CJK font missing: install Debian fonts-wqy-zenhei (install.sh does)")


@pytest.fixture(scope="session")
def render(cjk_font_path: Path) -> Callable[..., Image.Image]:
    """Render text items [(text, (x, y))] in black on white with the CJK font."""

    def draw(
        items: list[tuple[str, tuple[int, int]]], size: tuple[int, int] = (1000, 400), font_size: int = 40
    ) -> Image.Image:
        font = ImageFont.truetype(str(cjk_font_path), font_size)
        image = Image.new("RGB", size, "white")
        pen = ImageDraw.Draw(image)
        for text, position in items:
            pen.text(position, text, font=font, fill="black")
        return image

    return draw


def encode(image: Image.Image, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def clip_weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ViT-B-16 Chinese-CLIP architecture with seeded random weights, saved as a cn_clip checkpoint.

    The published weights cannot be downloaded here; the architecture, checkpoint format, loading path,
    tokenisation, preprocessing and ONNX export are all the real ones.
    """
    import torch
    from cn_clip.clip.utils import _MODEL_INFO, create_model

    from ml_service.models.clip.checkpoint import checkpoint_path

    directory = tmp_path_factory.mktemp("cn-clip")
    torch.manual_seed(20240607)
    with contextlib.redirect_stdout(io.StringIO()):
        model = create_model(_MODEL_INFO[CLIP_ARCH]["struct"])
    state = {f"module.{name}": tensor for name, tensor in model.state_dict().items()}
    torch.save(
        {"epoch": 1, "step": 1, "name": "random-init", "state_dict": state},
        checkpoint_path(directory, CLIP_ARCH),
    )
    return directory


@pytest.fixture(scope="session")
def release_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded random-weight ViT-B-16 checkpoint as cn_clip's release files are (e2e's recipe)."""
    return ensure_random_checkpoint(tmp_path_factory.mktemp("release"), CLIP_ARCH)


@pytest.fixture
def release(release_checkpoint: Path) -> Iterator[ReleaseServer]:
    """A loopback release host publishing the checkpoint where cn_clip's release URL points."""
    with release_server() as server:
        server.publish(release_checkpoint, urlsplit(release_url(CLIP_ARCH, server.url)).path)
        yield server


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "clip_weights_dir": tmp_path / "no-weights",
            # Tests that download say so, and from where; no other test may reach for the release host.
            "clip_download": False,
            "model_ttl_s": 0.0,
            "intra_op_threads": 2,
            "log_format": "text",
        }
        base.update(overrides)
        return Settings(**base)

    return build


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_ping(process: subprocess.Popen[str], port: int, timeout: float = 60) -> None:
    """Until the ML service started as `process` answers /ping on `port`; fails when it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).text == "pong":
                return
        except httpx.HTTPError:
            pass
        assert process.poll() is None, "the service exited before it answered /ping"
        assert time.monotonic() < deadline, "the service did not come up"
        time.sleep(0.2)


@contextlib.contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """Run the real app under uvicorn on a loopback port; yields its base URL."""
    with live_asgi(create_app(settings)) as url:
        yield url


@pytest.fixture
def serve() -> Callable[[Settings], contextlib.AbstractContextManager[str]]:
    return live_server


@dataclass
class Upstream:
    """A stand-in Immich ML server on loopback that records what it receives."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    body: bytes = b'{"facial-recognition":[],"imageHeight":1,"imageWidth":1}'
    delay_s: float = 0.0


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    state = Upstream(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            state.received.append(
                {"path": self.path, "body": body, "content-type": self.headers["content-type"]}
            )
            if state.delay_s:
                time.sleep(state.delay_s)
            with contextlib.suppress(OSError):
                self.send_response(state.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(state.body)))
                self.end_headers()
                self.wfile.write(state.body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def asgi_client() -> Callable[[Settings], httpx.AsyncClient]:
    """An in-process client (no socket) for tests that only need the app's behaviour."""

    def build(settings: Settings) -> httpx.AsyncClient:
        app = create_app(settings)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ml")

    return build
