"""Everything the gateway does not answer reaches Immich unchanged: bodies, ranges, uploads, WebSockets."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
from websockets.sync.client import connect

from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.gateway.conftest import Stack
from testsupport.immich_standin import THUMBNAIL, StandInState, create_standin
from testsupport.live_server import live_asgi


def test_a_thumbnail_and_a_range_arrive_byte_for_byte(stack: Stack) -> None:
    alice = stack.library.user()
    with stack.client(alice) as client:
        whole = client.get("/api/assets/x/thumbnail")
        part = client.get("/api/assets/x/thumbnail", headers={"range": "bytes=1000-1999"})
        anonymous = httpx.get(f"{stack.gateway}/api/assets/x/thumbnail")
    assert whole.status_code == 200 and whole.content == THUMBNAIL
    assert whole.headers["content-type"] == "image/webp"
    assert part.status_code == 206 and part.content == THUMBNAIL[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(THUMBNAIL)}"
    assert anonymous.status_code == 401


def test_an_upload_streams_through_whole(stack: Stack) -> None:
    alice = stack.library.user()
    chunk = os.urandom(1 << 20)
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for i in range(64):  # 64 MiB, sent in pieces without a length: streamed, never held whole
            piece = chunk[i:] + chunk[:i]
            digest.update(piece)
            yield piece

    with stack.client(alice) as client:
        answer = client.post(
            "/api/assets", content=body(), headers={"content-type": "application/octet-stream"}
        )
    assert answer.status_code == 201
    assert answer.json() == {"status": "created", "size": 64 << 20, "sha256": digest.hexdigest()}


def test_the_websocket_of_live_updates_passes_both_ways(stack: Stack) -> None:
    alice = stack.library.user()
    url = stack.gateway.replace("http://", "ws://") + "/api/socket.io/?EIO=4&transport=websocket"
    with connect(url, additional_headers={"x-api-key": alice}) as socket:
        assert socket.recv(timeout=10) == f"hello {alice}"  # the credential reached Immich
        socket.send("40")
        assert socket.recv(timeout=10) == "echo 40"
        socket.send(b"\x01\x02\x03")
        assert socket.recv(timeout=10) == b"\x03\x02\x01"


def test_an_immich_gone_away_is_a_502_with_a_message(stack: Stack) -> None:
    immich = live_asgi(create_standin(StandInState(stack.dsn)))
    immich_url = immich.__enter__()
    try:
        settings = GatewaySettings(immich_url=immich_url, db_url=stack.dsn)
        with live_asgi(create_app(settings)) as gateway_url:
            immich.__exit__(None, None, None)
            answer = httpx.get(f"{gateway_url}/api/server/about", headers={"x-api-key": "x"})
    finally:
        immich.__exit__(None, None, None)
    assert answer.status_code == 502
    assert answer.json()["message"] == "The Immich server could not be reached"


def test_a_callers_cookie_never_reaches_another_caller(stack: Stack) -> None:
    alice = stack.library.user()
    login = httpx.post(f"{stack.gateway}/api/auth/login", json={"userId": alice})
    assert login.status_code == 201 and login.cookies.get("immich_access_token") == alice
    anonymous = httpx.get(f"{stack.gateway}/api/users/me")
    with_cookie = httpx.get(f"{stack.gateway}/api/users/me", cookies={"immich_access_token": alice})
    assert with_cookie.status_code == 200 and with_cookie.json()["id"] == alice
    assert anonymous.status_code == 401, "the gateway sent one caller's session cookie with another's request"
