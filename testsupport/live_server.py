"""Runs an ASGI app under uvicorn on a free loopback port in a thread, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import uvicorn

from e2e.ports import PortAllocator


@contextlib.contextmanager
def live_asgi(
    app: Any, *, port: int | None = None, lifespan: Literal["auto", "on", "off"] = "on"
) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL. Raises when it does not start."""
    port = port or PortAllocator().take()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
