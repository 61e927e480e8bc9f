"""Fixtures: a real PostgreSQL with Immich's tables, a stand-in Immich API on it, the gateway in front."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from e2e.postgres import EmbeddedPostgres
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.db.conftest import Library, new_database, pg_cluster  # noqa: F401  (pytest fixtures)
from testsupport.immich_standin import StandInState, create_standin
from testsupport.live_server import live_asgi


@dataclass
class Stack:
    """The gateway's URL, the stand-in's URL and state, and a writer of Immich rows."""

    gateway: str
    immich: str
    standin: StandInState
    library: Library
    dsn: str

    def client(self, user_id: str | None, *, key: str | None = None) -> httpx.Client:
        headers = {"x-api-key": key if key is not None else user_id} if (key or user_id) else {}
        return httpx.Client(base_url=self.gateway, headers=headers, timeout=30)


def stack_for(
    cluster: EmbeddedPostgres, version: tuple[int, int, int], **settings: object
) -> Iterator[Stack]:
    with new_database(cluster, installed=False) as dsn:
        state = StandInState(dsn, version=version)
        with live_asgi(create_standin(state)) as immich_url:
            gateway_settings = GatewaySettings(immich_url=immich_url, db_url=dsn, **settings)  # type: ignore[arg-type]
            with (
                live_asgi(create_app(gateway_settings)) as gateway_url,
                psycopg.connect(dsn, autocommit=True) as conn,
            ):
                yield Stack(gateway_url, immich_url, state, Library(conn), dsn)


@pytest.fixture
def stack(pg_cluster: EmbeddedPostgres) -> Iterator[Stack]:  # noqa: F811
    """Stand-in Immich v3.1.0 and the gateway in front of it (hybrid on)."""
    yield from stack_for(pg_cluster, (3, 1, 0))


@pytest.fixture
def stack_v32(pg_cluster: EmbeddedPostgres) -> Iterator[Stack]:  # noqa: F811
    """Stand-in Immich v3.2.0 (the filter API) and the gateway in front of it."""
    yield from stack_for(pg_cluster, (3, 2, 0))
