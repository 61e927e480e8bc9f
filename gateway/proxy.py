"""Passes requests and WebSockets through to Immich unchanged, streaming both ways.

Bodies are never held whole: an upload streams from the caller to Immich as it arrives, a download or a
video Range answer streams back as Immich sends it (compressed bodies stay compressed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable

import aiohttp
import websockets
import yarl
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

log = logging.getLogger("immich_aio.gateway")

#: Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection and are never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: Headers of a WebSocket handshake that the client library writes itself.
_HANDSHAKE = frozenset({"host", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions"})


def forwarded_headers(request: Request | WebSocket, extra_skip: Iterable[str] = ()) -> list[tuple[str, str]]:
    """The caller's headers less hop-by-hop ones, plus X-Forwarded-* as a reverse proxy adds them."""
    skip = HOP_BY_HOP | set(extra_skip)
    headers = [(name, value) for name, value in request.headers.items() if name not in skip]
    client = request.client.host if request.client else ""
    prior = request.headers.get("x-forwarded-for")
    names = {name for name, _ in headers}
    headers = [(name, value) for name, value in headers if name != "x-forwarded-for"]
    headers.append(("x-forwarded-for", f"{prior}, {client}" if prior else client))
    if "x-forwarded-proto" not in names:
        headers.append(("x-forwarded-proto", request.url.scheme.replace("ws", "http")))
    if "x-forwarded-host" not in names and "host" in request.headers:
        headers.append(("x-forwarded-host", request.headers["host"]))
    if "accept-encoding" not in names:
        # else httpx asks for compression itself, and a caller that did not would get compressed bytes
        headers.append(("accept-encoding", "identity"))
    return headers


class Upstream:
    """The Immich server the requests pass to: one aiohttp session (the fastest well-kept asyncio client for
    a streaming proxy, measured in bench/gateway_overhead.py) that keeps no cookies, decompresses nothing and
    adds no header of its own."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=300),
        )

    async def close(self) -> None:
        await self.session.close()

    def url(self, request: Request) -> yarl.URL:
        """The same path and query, byte for byte, on Immich."""
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string") or b""
        target = raw_path + (b"?" + query if query else b"")
        return yarl.URL(self.base_url + target.decode("latin-1"), encoded=True)


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers


async def pass_through(upstream: Upstream, request: Request, body: bytes | None = None) -> Response:
    """Send the request on to Immich and stream its answer back; 502 when Immich cannot be reached."""
    data: bytes | AsyncIterator[bytes] | None = (
        body if body is not None else (_body(request) if _has_body(request) else None)
    )
    headers = forwarded_headers(request)
    if body is not None:  # a body the gateway read (and may have changed): its length is set anew
        headers = [(name, value) for name, value in headers if name != "content-length"]
    try:
        response = await upstream.session.request(
            request.method, upstream.url(request), headers=headers, data=data, allow_redirects=False
        )
    except (TimeoutError, aiohttp.ClientError) as error:
        log.warning("Immich could not be reached for %s %s: %s", request.method, request.url.path, error)
        return _unreachable()
    return _streamed(response)


#: A page larger than this is passed as it came (Immich's index.html is a few KiB).
MAX_PAGE = 4 << 20


async def pass_page(upstream: Upstream, request: Request, transform: Callable[[bytes], bytes]) -> Response:
    """A browser's page request: Immich's HTML answer, changed by `transform`; anything else streams through.

    The page is asked for uncompressed so that it can be changed; its length is set anew.
    """
    headers = [(n, v) for n, v in forwarded_headers(request) if n != "accept-encoding"]
    headers.append(("accept-encoding", "identity"))
    try:
        response = await upstream.session.request(
            request.method, upstream.url(request), headers=headers, allow_redirects=False
        )
    except (TimeoutError, aiohttp.ClientError) as error:
        log.warning("Immich could not be reached for %s %s: %s", request.method, request.url.path, error)
        return _unreachable()
    is_page = (
        response.status == 200
        and response.headers.get("content-type", "").startswith("text/html")
        and "content-encoding" not in response.headers
        and int(response.headers.get("content-length", "0") or 0) <= MAX_PAGE
    )
    if not is_page:
        return _streamed(response)
    try:
        page = transform(await response.read())
    except aiohttp.ClientError as error:
        log.warning("Immich's page %s broke off: %s", request.url.path, error)
        return _unreachable()
    finally:
        response.release()
    answer = Response(page, status_code=200)
    answer.raw_headers = [(name, value) for name, value in _kept(response) if name != b"content-length"] + [
        (b"content-length", str(len(page)).encode())
    ]
    return answer


def _unreachable() -> Response:
    return Response(
        '{"message":"The Immich server could not be reached","error":"Bad Gateway","statusCode":502}',
        status_code=502,
        media_type="application/json",
    )


def _kept(response: aiohttp.ClientResponse) -> list[tuple[bytes, bytes]]:
    return [
        (name.lower(), value)
        for name, value in response.raw_headers
        if name.lower().decode() not in HOP_BY_HOP
    ]


def _streamed(response: aiohttp.ClientResponse) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.content.iter_any():
                yield chunk
        finally:
            response.release()

    streamed = StreamingResponse(chunks(), status_code=response.status)
    streamed.raw_headers = _kept(response)
    return streamed


async def pass_websocket(immich_url: str, socket: WebSocket) -> None:
    """Join the caller's WebSocket to one opened to Immich with the same path, query and credentials."""
    base = immich_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1).rstrip("/")
    query = f"?{socket.url.query}" if socket.url.query else ""
    headers = forwarded_headers(socket, _HANDSHAKE | {"sec-websocket-protocol"})
    protocols = [p.strip() for p in socket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    try:
        upstream = await websockets.connect(
            base + socket.url.path + query,
            additional_headers=headers,
            subprotocols=[websockets.Subprotocol(p) for p in protocols] or None,
            max_size=None,
            open_timeout=10,
        )
    except (TimeoutError, OSError, websockets.WebSocketException) as error:
        log.warning("Immich refused the WebSocket %s: %s", socket.url.path, error)
        await socket.close(code=1011)
        return
    await socket.accept(subprotocol=upstream.subprotocol)

    async def to_immich() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes") if message.get("bytes") is not None else message.get("text")
                if data is not None:
                    await upstream.send(data)

    async def to_caller() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for data in upstream:
                if isinstance(data, bytes):
                    await socket.send_bytes(data)
                else:
                    await socket.send_text(data)

    tasks = [asyncio.create_task(to_immich()), asyncio.create_task(to_caller())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await upstream.close()
        with contextlib.suppress(RuntimeError):
            await socket.close()
