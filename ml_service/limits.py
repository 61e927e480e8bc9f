"""Request limits: inference concurrency with a bounded queue, body size cap, and the API key check."""

import asyncio
import hmac
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from ml_service.errors import ServiceError
from ml_service.metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class InferenceLimiter:
    """At most max_concurrent inferences run; up to queue_size wait (for queue_timeout_s), others get 503."""

    def __init__(
        self, max_concurrent: int, queue_size: int, queue_timeout_s: float, metrics: Metrics
    ) -> None:
        self._slots = asyncio.Semaphore(max_concurrent)
        self._queue_size = queue_size
        self._queue_timeout_s = queue_timeout_s
        self._waiting = 0
        self._metrics = metrics

    @property
    def waiting(self) -> int:
        return self._waiting

    def _busy(self, reason: str) -> ServiceError:
        retry_after = str(max(1, math.ceil(self._queue_timeout_s / 2)))
        return ServiceError(503, f"server busy: {reason}", {"Retry-After": retry_after})

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots.locked() and self._waiting >= self._queue_size:
            self._metrics.errors.labels("queue_full").inc()
            raise self._busy(f"{self._waiting} inferences already queued")
        self._waiting += 1
        self._metrics.queue_depth.set(self._waiting)
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=self._queue_timeout_s or None)
        except TimeoutError:
            self._metrics.errors.labels("queue_timeout").inc()
            raise self._busy(f"no inference slot within {self._queue_timeout_s:g} s") from None
        finally:
            self._waiting -= 1
            self._metrics.queue_depth.set(self._waiting)
        self._metrics.inflight.inc()
        try:
            yield
        finally:
            self._metrics.inflight.dec()
            self._slots.release()


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """Reads the request body up front and answers 413 once it exceeds max_bytes (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = {"error": f"request body larger than the limit of {self.max_bytes} bytes"}
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_json(send, 413, too_large, {"connection": "close"})
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await send_json(send, 413, too_large, {"connection": "close"})
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _presented_key(scope: Scope) -> str | None:
    headers: dict[str, str] = {
        bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1") for k, v in scope.get("headers") or []
    }
    for name in ("api-key", "x-api-key"):
        if name in headers:
            return headers[name]
    auth: str = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


MT_PHOTOS_PATHS = ("/check", "/ocr", "/clip/img", "/clip/txt")
OPEN_PATHS = ("/ping",)


class ApiKeyMiddleware:
    """Rejects requests without the configured key (constant-time comparison); /ping stays open."""

    def __init__(self, app: ASGIApp, api_key: str, scope_name: str) -> None:
        self.app = app
        self.expected = api_key.encode()
        self.scope_name = scope_name

    def _protected(self, path: str) -> bool:
        if path in OPEN_PATHS:
            return False
        return self.scope_name == "all" or path in MT_PHOTOS_PATHS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._protected(str(scope.get("path", ""))):
            presented = _presented_key(scope)
            if presented is None or not hmac.compare_digest(presented.encode(), self.expected):
                await send_json(
                    send, 401, {"error": "missing or wrong API key (header api-key or x-api-key)"}
                )
                return
        await self.app(scope, receive, send)
