"""The v1 series' OCR storage: search works on it, it follows the asset, survives `db uninstall`, and a
later Immich v2.2+ carries its text over instead of reading every photo again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from db_extension.installer import detect_asset_table, detect_storage, install, sql_text, status, uninstall
from e2e.postgres import EmbeddedPostgres
from tests.db.conftest import Library, new_database
from testsupport.immich_schema import create_immich_schema

PATCHED = "immich-aio"

# What Immich v2.1 lacks of the slice create_immich_schema() builds: everything upstream's v2.2.0
# migrations add for OCR.
TO_V2_1 = 'DROP TABLE asset_ocr, ocr_search; ALTER TABLE asset_job_status DROP COLUMN "ocrAt"'
# Upstream's v2.2.0 migrations, as far as the slice goes.
TO_V2_2 = 'ALTER TABLE asset_job_status ADD COLUMN "ocrAt" timestamptz'


class V1Library(Library):
    """Writes OCR as the v1 series' server does: an asset's boxes replaced in one statement, then its run."""

    def write_ocr(self, asset_id: str, lines: list[tuple[str, float]] | list[str]) -> None:
        texts = [line if isinstance(line, str) else line[0] for line in lines]
        rows = ", ".join("(%s::uuid, 0.1, %s, 0.9, %s, 0.9, %s, 0.1, %s, 0.9, 0.95, %s)" for _ in texts)
        values: list[Any] = []
        for index, text in enumerate(texts):
            top = 0.01 + index * 0.06
            values.extend([asset_id, top, top, top + 0.05, top + 0.05, text])
        insert = (
            ', inserted AS (INSERT INTO immich_aio_ocr.asset_ocr ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, '
            '"boxScore", "textScore", text) VALUES ' + rows + ")"
            if texts
            else ""
        )
        self.conn.execute(
            'WITH deleted AS (DELETE FROM immich_aio_ocr.asset_ocr WHERE "assetId" = %s::uuid)'
            + insert
            + " SELECT 1",
            [asset_id, *values],
        )
        self.conn.execute(
            'INSERT INTO immich_aio_ocr.asset_ocr_job ("assetId", "ocrAt") VALUES (%s, now()) '
            'ON CONFLICT ("assetId") DO UPDATE SET "ocrAt" = excluded."ocrAt"',
            (asset_id,),
        )


@pytest.fixture
def v1_dsn(pg_cluster: EmbeddedPostgres) -> Iterator[str]:
    """An Immich v2.1 database as the patched server leaves it at start: OCR storage, then install.sql."""
    with new_database(pg_cluster, installed=False) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(TO_V2_1)
            conn.execute(sql_text("ocr_storage.sql"))
            conn.execute(sql_text("ocr_storage.sql"))  # every start runs it again
        install(dsn, sync_mode="patched-server")
        yield dsn


@pytest.fixture
def v1(v1_dsn: str) -> Iterator[V1Library]:
    with psycopg.connect(v1_dsn, autocommit=True, application_name=PATCHED) as conn:
        yield V1Library(conn)


def one(conn: Any, query: str) -> Any:
    return conn.execute(query).fetchone()[0]


def count(conn: Any, query: str) -> int:
    return int(one(conn, query))


def by_asset(conn: Any, query: str) -> dict[uuid.UUID, Any]:
    return {row[0]: row[1] for row in conn.execute(query).fetchall()}


def test_install_finds_the_v1_storage_and_searches_it(v1: V1Library, v1_dsn: str) -> None:
    with psycopg.connect(v1_dsn) as conn:
        assert detect_storage(conn) == "immich_aio_ocr"
    owner = v1.user()
    receipt, sign = v1.asset(owner), v1.asset(owner)
    v1.write_ocr(receipt, ["增值税专用发票", "金额 ¥35"])
    v1.write_ocr(sign, ["臺北車站"])
    assert v1.ocr_search("发票", [owner]) == [receipt]
    assert v1.ocr_search("台北车站", [owner]) == [sign]
    v1.write_ocr(receipt, ["停车场"])
    assert v1.ocr_search("发票", [owner]) == []
    assert status(v1_dsn).assets_with_ocr == 2


def test_before_v1_136_the_sql_reads_the_assets_table(pg_cluster: EmbeddedPostgres) -> None:
    # Immich v1.133 - v1.135 name the asset table "assets": install.sql is rendered for it, the OCR storage
    # references it, and a photo moved to the locked folder leaves the owner's searches there too.
    with (
        new_database(pg_cluster, installed=False) as dsn,
        psycopg.connect(dsn, autocommit=True, application_name=PATCHED) as conn,
    ):
        conn.execute(TO_V2_1)
        library = V1Library(conn)
        owner = library.user()
        receipt, sign = library.asset(owner), library.asset(owner)
        conn.execute("ALTER TABLE asset RENAME TO assets")
        conn.execute(sql_text("ocr_storage.sql"))
        assert detect_asset_table(conn) == "assets"
        install(dsn, sync_mode="patched-server")
        library.write_ocr(receipt, ["增值税专用发票"])
        library.write_ocr(sign, ["发票领取处"])
        assert sorted(library.ocr_search("发票", [owner])) == sorted([receipt, sign])
        conn.execute("UPDATE assets SET visibility = 'locked' WHERE id = %s", (sign,))
        assert library.ocr_search("发票", [owner]) == [receipt]
        conn.execute("DELETE FROM assets WHERE id = %s", (receipt,))
        assert count(conn, "SELECT count(*) FROM immich_aio_ocr.asset_ocr") == 1


def test_the_v1_storage_follows_the_asset(v1: V1Library) -> None:
    owner = v1.user()
    photo = v1.asset(owner)
    v1.write_ocr(photo, ["出口"])
    v1.conn.execute("DELETE FROM asset WHERE id = %s", (photo,))
    assert count(v1.conn, "SELECT count(*) FROM immich_aio_ocr.asset_ocr") == 0
    assert count(v1.conn, "SELECT count(*) FROM immich_aio_ocr.asset_ocr_job") == 0
    assert count(v1.conn, "SELECT count(*) FROM immich_aio.asset_ocr_document") == 0


def test_uninstall_keeps_the_ocr_the_photos_produced(v1: V1Library, v1_dsn: str) -> None:
    owner = v1.user()
    v1.write_ocr(v1.asset(owner), ["出口", "入口"])
    uninstall(v1_dsn)
    assert not status(v1_dsn).installed
    assert count(v1.conn, "SELECT count(*) FROM immich_aio_ocr.asset_ocr") == 2
    assert not one(v1.conn, "SELECT to_regnamespace('immich_aio') IS NOT NULL")


def test_a_later_immich_carries_the_ocr_over_without_rebuilding_documents(v1: V1Library, v1_dsn: str) -> None:
    owner = v1.user()
    receipt, sign, blank, restocked = (v1.asset(owner) for _ in range(4))
    v1.write_ocr(receipt, ["增值税专用发票", "金额 ¥35"])
    v1.write_ocr(sign, ["臺北車站"])
    v1.write_ocr(blank, [])
    v1.write_ocr(restocked, ["旧的文字"])
    before = {q: v1.ocr_search(q, [owner]) for q in ("发票", "台北", "¥35", "旧的")}
    documents = v1.conn.execute(
        'SELECT "assetId", xmin::text, "ocrAt" FROM immich_aio.asset_ocr_document ORDER BY 1'
    ).fetchall()
    runs = by_asset(v1.conn, 'SELECT "assetId", "ocrAt" FROM immich_aio_ocr.asset_ocr_job')

    # Upstream v2.2's migrations, then a stock v2.2 reads one photo itself before the patched one starts.
    with psycopg.connect(v1_dsn, autocommit=True) as conn:
        create_immich_schema(conn, with_clip_index=False)
        conn.execute(TO_V2_2)
        conn.execute(
            'INSERT INTO asset_ocr ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, "boxScore", "textScore", '
            "text) VALUES (%s, 0, 0, 1, 0, 1, 1, 0, 1, 0.9, 0.9, '新的文字')",
            (restocked,),
        )
        conn.execute("INSERT INTO ocr_search (\"assetId\", text) VALUES (%s, '新的文字')", (restocked,))
        conn.execute('INSERT INTO asset_job_status ("assetId", "ocrAt") VALUES (%s, now())', (restocked,))
    install(v1_dsn)

    with psycopg.connect(v1_dsn, autocommit=True, application_name=PATCHED) as conn:
        library = Library(conn)
        assert not one(conn, "SELECT to_regnamespace('immich_aio_ocr') IS NOT NULL")
        grouped = "SELECT \"assetId\", string_agg(text, '|' ORDER BY text) FROM asset_ocr GROUP BY 1"
        texts = by_asset(conn, grouped)
        assert texts == {
            uuid.UUID(receipt): "增值税专用发票|金额 ¥35",
            uuid.UUID(sign): "臺北車站",
            uuid.UUID(restocked): "新的文字",
        }
        search_text = by_asset(conn, 'SELECT "assetId", text FROM ocr_search')
        assert search_text[uuid.UUID(receipt)] == "增值税专用发票 金额 ¥35"
        assert search_text[uuid.UUID(restocked)] == "新的文字"
        carried = by_asset(conn, 'SELECT "assetId", "ocrAt" FROM asset_job_status')
        for asset in (receipt, sign, blank):
            assert carried[uuid.UUID(asset)] == runs[uuid.UUID(asset)], "the run was not carried over"
        assert carried[uuid.UUID(restocked)] != runs[uuid.UUID(restocked)], "a newer run was overwritten"

        kept = [row for row in documents if row[0] != uuid.UUID(restocked)]
        after = conn.execute(
            'SELECT "assetId", xmin::text, "ocrAt" FROM immich_aio.asset_ocr_document ORDER BY 1'
        ).fetchall()
        rebuilt = [row for row in after if row[0] != uuid.UUID(restocked)] != kept
        assert not rebuilt, "a carried document was rebuilt"
        for query in ("发票", "台北", "¥35"):
            assert library.ocr_search(query, [owner]) == before[query], query
        # the photo stock Immich read again: the next reconcile brings its document up to that run
        conn.execute("SELECT immich_aio.reconcile_begin()")
        conn.execute("SELECT * FROM immich_aio.reconcile_step(100)")
        assert library.ocr_search("旧的", [owner]) == []
        assert library.ocr_search("新的", [owner]) == [restocked]
        assert one(conn, "SELECT value FROM immich_aio.meta WHERE key = 'carried_over'") == "3"
