"""Safe to leave: what immich-aio leaves for a stock Immich costs it nothing and blocks none of its
migrations, and the patched server catches up with what a stock server changed meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from db_extension.backfill import reconcile
from db_extension.installer import install, status, uninstall
from tests.db.conftest import Library

PATCHED = "immich-aio"  # the application_name the patched server's connections carry


@pytest.fixture
def patched_dsn(immich_dsn: str) -> str:
    install(immich_dsn, sync_mode="patched-server")
    return immich_dsn


@pytest.fixture
def patched(patched_dsn: str) -> Iterator[Library]:
    """Writes as the patched server makes them (its connections are tagged)."""
    with psycopg.connect(patched_dsn, autocommit=True, application_name=PATCHED) as conn:
        yield Library(conn)


@pytest.fixture
def stock(patched_dsn: str) -> Iterator[Library]:
    """Writes as a stock Immich makes them on the same database."""
    with psycopg.connect(patched_dsn, autocommit=True) as conn:
        yield Library(conn)


def documents(conn: Any) -> dict[str, tuple[str, str, bool, int]]:
    rows = conn.execute(
        'SELECT "assetId"::text, document::text, "ownerId"::text, searchable, "boxCount" '
        "FROM immich_aio.asset_ocr_document"
    ).fetchall()
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}


def test_the_triggers_run_for_the_patched_servers_connections_only(patched: Library, stock: Library) -> None:
    owner = patched.user()
    by_patched, by_stock = patched.asset(owner), stock.asset(owner)
    patched.write_ocr(by_patched, ["停车场入口"])
    stock.write_ocr(by_stock, ["停车场出口"])
    assert patched.ocr_search("停车场", [owner]) == [by_patched]
    stock.conn.execute('UPDATE asset SET "deletedAt" = now() WHERE id = %s', (by_patched,))
    assert patched.ocr_search("停车场", [owner]) == [by_patched], "a stock write changed a document"
    patched.conn.execute("UPDATE asset SET visibility = 'locked' WHERE id = %s", (by_patched,))
    assert patched.ocr_search("停车场", [owner]) == []


def test_the_patched_server_catches_up_with_what_stock_immich_changed(
    patched: Library, stock: Library, patched_dsn: str
) -> None:
    owner, other = patched.user(), patched.user()
    assets = {
        name: patched.asset(owner) for name in ("reocr", "deleted", "trashed", "hidden", "emptied", "kept")
    }
    for name, asset_id in assets.items():
        patched.write_ocr(asset_id, [f"{name} 发票 合计", "二号楼"])
        patched.conn.execute(
            'INSERT INTO asset_job_status ("assetId", "ocrAt") VALUES (%s, now())', (asset_id,)
        )
    assert reconcile(patched_dsn).queued == 0, "nothing to catch up while only the patched server wrote"

    # A stock Immich runs for a while: new uploads, OCR re-runs, deletions, trash, edits, transfers.
    new = stock.asset(owner)
    stock.write_ocr(new, ["新上传 停车场"])
    stock.write_ocr(assets["reocr"], ["重新识别 咖啡", "三号楼"])  # same number of boxes, new text
    stock.conn.execute('UPDATE asset_job_status SET "ocrAt" = now() WHERE "assetId" = %s', (assets["reocr"],))
    stock.conn.execute("DELETE FROM asset WHERE id = %s", (assets["deleted"],))
    stock.conn.execute('UPDATE asset SET "deletedAt" = now() WHERE id = %s', (assets["trashed"],))
    stock.conn.execute('UPDATE asset_ocr SET "isVisible" = false WHERE "assetId" = %s', (assets["hidden"],))
    stock.write_ocr(assets["emptied"], [])
    stock.conn.execute('UPDATE asset SET "ownerId" = %s WHERE id = %s', (other, assets["kept"]))
    assert patched.ocr_search("咖啡", [owner]) == []  # stale until the patched server is back

    result = reconcile(patched_dsn, batch_size=2)
    assert result.rebuilt + result.recopied > 0
    caught_up = documents(patched.conn)
    every = [a for a in (*assets.values(), new)]
    patched.conn.execute("SELECT immich_aio.refresh_documents(%s::uuid[])", (every,))
    assert caught_up == documents(patched.conn), "reconcile differs from a rebuild from scratch"
    assert patched.ocr_search("咖啡", [owner]) == [assets["reocr"]]
    assert patched.ocr_search("停车场", [owner]) == [new]
    assert set(patched.ocr_search("发票", [owner])) == set()  # deleted, trashed, hidden, emptied, transferred
    assert patched.ocr_search("发票", [other]) == [assets["kept"]]
    assert status(patched_dsn).reconcile_queued == 0


def test_reconcile_is_resumable_after_an_interruption(
    patched: Library, stock: Library, patched_dsn: str
) -> None:
    owner = patched.user()
    for _ in range(5):
        stock.write_ocr(stock.asset(owner), ["停车场"])
    patched.conn.execute("SELECT immich_aio.reconcile_begin()")
    patched.conn.execute("SELECT * FROM immich_aio.reconcile_step(2)")  # then the server stops
    assert status(patched_dsn).reconcile_queued == 3
    assert len(patched.ocr_search("停车场", [owner])) == 2
    reconcile(patched_dsn)
    assert len(patched.ocr_search("停车场", [owner])) == 5


def dependencies_on_immich_columns(conn: Any) -> list[tuple[str, str]]:
    """Objects of schema immich_aio (or its triggers) that depend on a column of a table outside it."""
    rows = conn.execute(
        """
        SELECT pg_describe_object(d.classid, d.objid, d.objsubid),
               pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
        FROM pg_depend d
        JOIN pg_class c ON d.refclassid = 'pg_class'::regclass AND c.oid = d.refobjid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname <> 'immich_aio' AND d.refobjsubid <> 0 AND d.deptype = 'n'
          AND (pg_describe_object(d.classid, d.objid, d.objsubid) LIKE '%immich_aio%')
        """
    ).fetchall()
    return [(str(row[0]), str(row[1])) for row in rows]


@pytest.mark.parametrize("mode", ["always", "patched-server"])
def test_no_upstream_migration_is_blocked(immich_dsn: str, mode: str) -> None:
    install(immich_dsn, sync_mode=mode)  # type: ignore[arg-type]
    with psycopg.connect(immich_dsn, autocommit=True) as conn:
        assert dependencies_on_immich_columns(conn) == []
        foreign_keys = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND "
            "(conrelid::regclass::text LIKE 'immich_aio.%' OR confrelid::regclass::text LIKE 'immich_aio.%')"
        ).fetchone()
        assert foreign_keys == (0,)
        # What an upstream migration might do to the columns the SQL reads.
        conn.execute("ALTER TABLE asset ALTER COLUMN visibility TYPE text")
        conn.execute('ALTER TABLE asset RENAME COLUMN "deletedAt" TO "trashedAt"')
        conn.execute("ALTER TABLE asset_ocr ALTER COLUMN text TYPE varchar")
        conn.execute('ALTER TABLE asset_ocr DROP COLUMN "isVisible"')
        conn.execute("ALTER TABLE asset_ocr RENAME TO asset_ocr_box")
        if mode == "patched-server":  # a stock Immich keeps writing without meeting immich_aio at all
            user = Library(conn).user()
            row = conn.execute('INSERT INTO asset ("ownerId") VALUES (%s) RETURNING id', (user,)).fetchone()
            assert row is not None
            asset = row[0]
            conn.execute("UPDATE asset SET visibility = 'archive' WHERE id = %s", (asset,))
            conn.execute(
                'INSERT INTO asset_ocr_box ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, "boxScore", '
                "\"textScore\", text) VALUES (%s, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, '发票')",
                (asset,),
            )
            conn.execute("DELETE FROM asset WHERE id = %s", (asset,))


def test_uninstall_leaves_nothing_a_stock_immich_would_refuse(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO kysely_migrations VALUES ('1784647658615-AddOAuthBearerTokenToSession', '1'), "
            "('1784900000000-ImmichAioOcrSearch', '2')"
        )
        uninstall(dsn)
        names = [row[0] for row in conn.execute("SELECT name FROM kysely_migrations ORDER BY 1")]
        assert names == ["1784647658615-AddOAuthBearerTokenToSession"]
        leftovers = conn.execute(
            "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'immich%%aio%%'), "
            "(SELECT count(*) FROM pg_namespace WHERE nspname = 'immich_aio')"
        ).fetchone()
        assert leftovers == (0, 0)


def test_a_database_keeps_its_sync_mode_when_installed_again(patched_dsn: str) -> None:
    assert status(patched_dsn).sync_mode == "patched-server"
    assert install(patched_dsn).sync_mode == "patched-server"
    assert install(patched_dsn, sync_mode="always").sync_mode == "always"


def test_stock_writes_never_call_into_immich_aio(patched: Library, stock: Library) -> None:
    """What is left behind does no work for a stock server: not one call of an immich_aio function."""
    owner = patched.user()
    asset = patched.asset(owner)
    patched.write_ocr(asset, ["发票"])
    stock.conn.execute("SET track_functions = 'all'")
    with stock.conn.transaction():
        other = stock.asset(owner)
        stock.write_ocr(other, ["停车场", "出口"])
        stock.write_ocr(asset, ["咖啡"])
        stock.conn.execute('INSERT INTO asset_job_status ("assetId", "ocrAt") VALUES (%s, now())', (other,))
        stock.conn.execute(
            "UPDATE asset SET visibility = 'archive', \"ownerId\" = %s WHERE id = %s", (owner, asset)
        )
        stock.conn.execute('UPDATE asset_ocr SET "isVisible" = false WHERE "assetId" = %s', (other,))
        stock.conn.execute("DELETE FROM asset WHERE id = %s", (other,))
        calls = stock.conn.execute(
            "SELECT funcname, calls FROM pg_stat_xact_user_functions WHERE schemaname = 'immich_aio'"
        ).fetchall()
    assert calls == []
    # the same statements from the patched server do call them (the check above can see calls)
    patched.conn.execute("SET track_functions = 'all'")
    with patched.conn.transaction():
        patched.write_ocr(asset, ["咖啡"])
        calls = patched.conn.execute(
            "SELECT funcname FROM pg_stat_xact_user_functions WHERE schemaname = 'immich_aio'"
        ).fetchall()
    assert ("on_asset_ocr_insert",) in calls
