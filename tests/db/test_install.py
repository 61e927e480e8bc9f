"""Install/uninstall idempotence, Immich data safety, status and clear errors."""

from __future__ import annotations

import psycopg
import pytest

from db_extension.backfill import backfill, reconcile
from db_extension.errors import DbExtensionError
from db_extension.installer import install, sql_text, status, uninstall
from tests.db.conftest import Library


def _immich_snapshot(dsn: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(dsn) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("asset", "asset_ocr", "smart_search", "ocr_search", '"user"')
        }


def _our_objects(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        functions = conn.execute(
            "SELECT 'function', p.oid::regprocedure::text FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'immich_aio'"
        ).fetchall()
        relations = conn.execute(
            "SELECT 'relation', c.relname::text FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'immich_aio'"
        ).fetchall()
        triggers = conn.execute(
            "SELECT 'trigger', tgname::text FROM pg_trigger WHERE tgname LIKE 'immich_aio%'"
        ).fetchall()
    return sorted(functions + relations + triggers)


def _seed(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        lib = Library(conn)
        owner = lib.user()
        for text in ("发票 12345", "咖啡菜单"):
            asset = lib.asset(owner)
            lib.write_ocr(asset, [text])
            conn.execute("INSERT INTO ocr_search VALUES (%s, %s)", (asset, text))
            lib.embed(asset, [1.0] + [0.0] * 511)


def test_install_twice_then_uninstall_twice_then_install(immich_dsn: str) -> None:
    _seed(immich_dsn)
    before = _immich_snapshot(immich_dsn)

    first = install(immich_dsn)
    objects = _our_objects(immich_dsn)
    second = install(immich_dsn)

    assert first.installed and second.installed
    assert first.segmenter == "fallback"  # zhparser cannot be built on this machine
    assert first.version == "3"
    assert _our_objects(immich_dsn) == objects
    assert len(first.triggers) == 6  # four on asset_ocr, one on asset, one on asset_job_status
    assert first.documents == 2 == second.documents  # the initial backfill ran once and stays consistent

    uninstall(immich_dsn)
    assert _our_objects(immich_dsn) == []
    uninstall(immich_dsn)
    assert _immich_snapshot(immich_dsn) == before
    assert not status(immich_dsn).installed

    again = install(immich_dsn)
    assert _our_objects(immich_dsn) == objects
    assert again.documents == 2


def test_install_sql_has_no_backslashes_or_meta_commands() -> None:
    # The file is embedded in the patched server as a JavaScript string (and once was a template string).
    text = sql_text("install.sql")
    assert "\\" not in text and "`" not in text and "${" not in text
    assert not [line for line in text.splitlines() if line.startswith("\\")]


def test_install_over_a_first_release_install_upgrades_it(immich_dsn: str) -> None:
    """A database installed by the first release (documents without owner, searchability and title)."""
    with psycopg.connect(immich_dsn, autocommit=True) as conn:
        lib = Library(conn)
        owner = lib.user()
        kept, trashed = lib.asset(owner), lib.asset(owner, deleted=True)
        for asset in (kept, trashed):
            lib.write_ocr(asset, [("营业时间", 0.2), ("周一至周五", 0.05)])
    install(immich_dsn)
    with psycopg.connect(immich_dsn, autocommit=True) as conn:
        conn.execute("DROP TRIGGER immich_aio_asset_visibility ON asset")
        for column in ("title", "searchable", '"ownerId"'):
            conn.execute(f"ALTER TABLE immich_aio.asset_ocr_document DROP COLUMN {column}")
    again = install(immich_dsn)
    assert again.installed and len(again.triggers) == 6
    with psycopg.connect(immich_dsn, autocommit=True) as conn:
        rows = conn.execute(
            'SELECT "assetId"::text, "ownerId"::text, searchable, title::text '
            "FROM immich_aio.asset_ocr_document ORDER BY searchable DESC"
        ).fetchall()
        assert [(row[0], row[1], row[2]) for row in rows] == [(kept, owner, True), (trashed, owner, False)]
        assert all("营业" in row[3] and "周一" not in row[3] for row in rows)  # title = the large line only
        assert Library(conn).ocr_search("营业时间", [owner]) == [kept]


def test_install_without_backfill_leaves_documents_to_backfill(immich_dsn: str) -> None:
    _seed(immich_dsn)
    assert install(immich_dsn, backfill=False).documents == 0


def test_unreachable_database_is_reported() -> None:
    with pytest.raises(DbExtensionError, match="cannot connect"):
        status("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_missing_immich_tables_are_reported(pg_cluster: object) -> None:
    dsn = pg_cluster.dsn.rsplit("/", 1)[0] + "/postgres"  # type: ignore[attr-defined]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    with pytest.raises(DbExtensionError, match=r"Immich v2\.2"):
        install(dsn)


def test_missing_pgvector_is_reported(pg_cluster: object) -> None:
    base = pg_cluster.dsn.rsplit("/", 1)[0]  # type: ignore[attr-defined]
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS no_vector")
        conn.execute("CREATE DATABASE no_vector")
    with pytest.raises(DbExtensionError, match="pgvector"):
        install(base + "/no_vector")


def test_insufficient_privileges_are_reported(immich_dsn: str) -> None:
    with psycopg.connect(immich_dsn, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS reader")
        conn.execute("CREATE ROLE reader LOGIN")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
    reader_dsn = immich_dsn.replace("postgres@", "reader@")
    with pytest.raises(DbExtensionError, match="insufficient privileges"):
        install(reader_dsn)
    with psycopg.connect(immich_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT to_regnamespace('immich_aio')").fetchone() == (None,)


def test_install_on_immich_before_v2_5_whose_boxes_have_no_visibility(immich_dsn: str) -> None:
    with psycopg.connect(immich_dsn, autocommit=True) as conn:
        conn.execute('ALTER TABLE asset_ocr DROP COLUMN "isVisible"')  # Immich v2.2 - v2.4 tables
        library = Library(conn)
        owner = library.user()
        before, after = library.asset(owner), library.asset(owner)
        library.write_ocr(before, ["停车场入口"])
        install(immich_dsn)
        library.write_ocr(after, ["停车场出口"])
        assert set(library.ocr_search("停车场", [owner])) == {before, after}
        library.write_ocr(after, [])
        assert library.ocr_search("停车场", [owner]) == [before]
        assert reconcile(immich_dsn).queued == 0
        conn.execute('DELETE FROM asset_ocr WHERE "assetId" = %s', (before,))
        assert backfill(immich_dsn).removed_orphans == 0  # the trigger removed it already
        assert library.ocr_search("停车场", [owner]) == []
