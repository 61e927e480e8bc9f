"""Fixtures: a throwaway PostgreSQL 15 + pgvector cluster per session, a fresh Immich database per test."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from db_extension.installer import install
from e2e.postgres import EmbeddedPostgres, EmbeddedPostgresError
from testsupport.immich_schema import create_immich_schema

TEMPLATE = "immich_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[EmbeddedPostgres]:
    try:
        cluster = EmbeddedPostgres(database=TEMPLATE).start()
    except EmbeddedPostgresError as error:
        pytest.fail(f"cannot start the test PostgreSQL (install.sh provides it): {error}")
    with psycopg.connect(cluster.dsn) as conn:
        create_immich_schema(conn)
    yield cluster
    cluster.stop()


def _dsn_for(cluster: EmbeddedPostgres, database: str) -> str:
    return f"postgresql://{cluster.user}@127.0.0.1:{cluster.port}/{database}"


@contextmanager
def new_database(cluster: EmbeddedPostgres, *, installed: bool) -> Iterator[str]:
    """A new database holding Immich's tables, optionally with immich-aio installed; dropped afterwards."""
    name = f"immich_test_{next(_counter)}"
    admin_dsn = _dsn_for(cluster, "postgres")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    dsn = _dsn_for(cluster, name)
    if installed:
        install(dsn)
    try:
        yield dsn
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def immich_dsn(pg_cluster: EmbeddedPostgres) -> Iterator[str]:
    """A new database holding Immich's tables (nothing of ours installed)."""
    with new_database(pg_cluster, installed=False) as dsn:
        yield dsn


@pytest.fixture
def dsn(pg_cluster: EmbeddedPostgres) -> Iterator[str]:
    """A new Immich database with immich-aio installed."""
    with new_database(pg_cluster, installed=True) as dsn:
        yield dsn


@dataclass
class Library:
    """Helpers that write Immich rows the way Immich v3.1 does."""

    conn: Any

    def user(self) -> str:
        user_id = str(uuid.uuid4())
        self.conn.execute(
            'INSERT INTO "user" (id, email) VALUES (%s, %s)', (user_id, f"{user_id}@example.com")
        )
        return user_id

    def asset(
        self,
        owner: str,
        *,
        visibility: str = "timeline",
        deleted: bool = False,
        asset_id: str | None = None,
    ) -> str:
        asset_id = asset_id or str(uuid.uuid4())
        self.conn.execute(
            'INSERT INTO asset (id, "ownerId", visibility, "deletedAt") VALUES (%s, %s, %s, '
            "CASE WHEN %s THEN now() END)",
            (asset_id, owner, visibility, deleted),
        )
        return asset_id

    def write_ocr(self, asset_id: str, lines: list[tuple[str, float]] | list[str]) -> None:
        """Replace an asset's OCR boxes in one statement, as Immich's OcrRepository.upsert does.

        Each line is a text or (text, box height); lines are stacked top to bottom.
        """
        boxes = [(line, 0.05) if isinstance(line, str) else line for line in lines]
        values: list[Any] = []
        rows = []
        top = 0.01
        for text, height in boxes:
            rows.append("(%s::uuid, 0.1, %s, 0.9, %s, 0.9, %s, 0.1, %s, 0.9, 0.95, %s)")
            values.extend([asset_id, top, top, top + height, top + height, text])
            top += height + 0.01
        if rows:
            self.conn.execute(
                'WITH deleted AS (DELETE FROM asset_ocr WHERE "assetId" = %s::uuid), '
                'inserted AS (INSERT INTO asset_ocr ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, "boxScore", '
                '"textScore", text) VALUES ' + ", ".join(rows) + ") SELECT 1",
                [asset_id, *values],
            )
        else:
            self.conn.execute('DELETE FROM asset_ocr WHERE "assetId" = %s::uuid', (asset_id,))

    def embed(self, asset_id: str, vector: list[float]) -> None:
        literal = "[" + ",".join(str(v) for v in vector) + "]"
        self.conn.execute(
            'INSERT INTO smart_search ("assetId", embedding) VALUES (%s, %s::vector) '
            'ON CONFLICT ("assetId") DO UPDATE SET embedding = excluded.embedding',
            (asset_id, literal),
        )

    def ocr_search(self, text: str, user_ids: list[str], limit: int = 100, offset: int = 0) -> list[str]:
        rows = self.conn.execute(
            'SELECT "assetId"::text FROM immich_aio.search_ocr(%s, %s::uuid[], %s, %s)',
            (text, user_ids, limit, offset),
        ).fetchall()
        return [row[0] for row in rows]


@pytest.fixture
def library(dsn: str) -> Iterator[Library]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield Library(conn)
