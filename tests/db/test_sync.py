"""Triggers keep immich_aio.asset_ocr_document in step with Immich's asset_ocr writes."""

from __future__ import annotations

from typing import Any

from db_extension.backfill import backfill
from db_extension.installer import install
from tests.db.conftest import Library


def _document(conn: Any, asset_id: str) -> str | None:
    row = conn.execute(
        'SELECT document::text FROM immich_aio.asset_ocr_document WHERE "assetId" = %s', (asset_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def test_insert_update_delete_keep_documents_in_sync(library: Library) -> None:
    owner = library.user()
    asset = library.asset(owner)
    library.write_ocr(asset, ["停车场入口", "WIFI5G密码 88888888"])
    assert library.ocr_search("停车场", [owner]) == [asset]
    assert library.ocr_search("wifi", [owner]) == [asset]

    # Immich re-runs OCR: the same statement deletes the old boxes and inserts new ones.
    library.write_ocr(asset, ["咖啡菜单"])
    assert library.ocr_search("停车场", [owner]) == []
    assert library.ocr_search("咖啡", [owner]) == [asset]

    # Hiding a box (updateOcrVisibilities) removes its words; showing it again restores them.
    library.conn.execute('UPDATE asset_ocr SET "isVisible" = false WHERE "assetId" = %s', (asset,))
    assert library.ocr_search("咖啡", [owner]) == []
    assert _document(library.conn, asset) is None
    library.conn.execute('UPDATE asset_ocr SET "isVisible" = true WHERE "assetId" = %s', (asset,))
    assert library.ocr_search("咖啡", [owner]) == [asset]

    # Editing a box's text.
    library.conn.execute("UPDATE asset_ocr SET text = '火锅' WHERE \"assetId\" = %s", (asset,))
    assert library.ocr_search("火锅", [owner]) == [asset]
    assert library.ocr_search("咖啡", [owner]) == []

    # OCR found nothing: Immich deletes the boxes.
    library.write_ocr(asset, [])
    assert _document(library.conn, asset) is None
    assert library.ocr_search("火锅", [owner]) == []


def test_rows_for_many_assets_in_one_statement(library: Library) -> None:
    owner = library.user()
    assets = [library.asset(owner) for _ in range(5)]
    library.conn.execute(
        'INSERT INTO asset_ocr ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, "boxScore", "textScore", text) '
        "SELECT a, 0, 0, 1, 0, 1, 0.1, 0, 0.1, 1, 1, '第' || n || '号 发票' "
        "FROM unnest(%s::uuid[]) WITH ORDINALITY AS t(a, n)",
        (assets,),
    )
    assert sorted(library.ocr_search("发票", [owner])) == sorted(assets)
    assert library.ocr_search("第3号", [owner]) == [assets[2]]
    count = library.conn.execute("SELECT count(*) FROM immich_aio.asset_ocr_document").fetchone()[0]
    assert count == 5


def test_asset_deletion_and_truncate_remove_documents(library: Library) -> None:
    owner = library.user()
    first, second = library.asset(owner), library.asset(owner)
    library.write_ocr(first, ["发票"])
    library.write_ocr(second, ["发票"])
    library.conn.execute("DELETE FROM asset WHERE id = %s", (first,))
    assert library.ocr_search("发票", [owner]) == [second]
    library.conn.execute("TRUNCATE asset_ocr")
    assert library.conn.execute("SELECT count(*) FROM immich_aio.asset_ocr_document").fetchone()[0] == 0


def test_backfill_is_batched_and_resumable(immich_dsn: str) -> None:
    import psycopg

    with psycopg.connect(immich_dsn, autocommit=True) as conn:
        lib = Library(conn)
        owner = lib.user()
        assets = [lib.asset(owner) for _ in range(25)]
        for number, asset in enumerate(assets):
            lib.write_ocr(asset, [f"票据 {number}"])
    install(immich_dsn, backfill=False)
    with psycopg.connect(immich_dsn, autocommit=True) as conn:
        # An interrupted run: the first batch done and its cursor stored.
        cursor = conn.execute("SELECT last_id FROM immich_aio.backfill_batch(NULL, 10)").fetchone()[0]
        assert conn.execute("SELECT value FROM immich_aio.meta WHERE key = 'backfill_cursor'").fetchone()[
            0
        ] == str(cursor)
        # A stale document whose boxes are gone.
        conn.execute('DELETE FROM asset_ocr WHERE "assetId" = %s', (assets[0],))
        conn.execute(
            'INSERT INTO immich_aio.asset_ocr_document ("assetId", document, "ownerId", searchable) '
            "VALUES (%s, 'x', %s, true) "
            'ON CONFLICT ("assetId") DO NOTHING',
            (assets[0], owner),
        )
    progress: list[tuple[int, int]] = []
    result = backfill(
        immich_dsn, batch_size=4, on_progress=lambda done, total: progress.append((done, total))
    )
    assert result.resumed_from == str(cursor)
    assert result.assets == 24 - 10 or result.assets == 15  # the deleted asset may sit before or after it
    assert progress[-1][0] == progress[-1][1] == 24
    with psycopg.connect(immich_dsn, autocommit=True) as conn:
        lib = Library(conn)
        assert conn.execute("SELECT count(*) FROM immich_aio.asset_ocr_document").fetchone()[0] == 24
        assert len(lib.ocr_search("票据", [owner])) == 24
        assert lib.ocr_search("票据 7", [owner]) == [assets[7]]


def test_set_based_rebuild_equals_box_by_box_documents(library: Library) -> None:
    owner = library.user()
    asset = library.asset(owner)
    library.write_ocr(
        asset,
        [("上海南站", 0.2), ("", 0.05), ("WIFI5G密码 ¥35.00", 0.05), ("出口 Exit", 0.1), ("。。", 0.02)],
    )
    expected = library.conn.execute(
        "SELECT immich_aio.tsvector_agg(immich_aio.ocr_document(text, immich_aio.box_weight(h, tallest)) "
        "ORDER BY least(y1, y2), least(x1, x4), id) FROM ("
        "  SELECT *, (abs(y4 - y1) + abs(y3 - y2)) / 2.0 AS h,"
        "         max((abs(y4 - y1) + abs(y3 - y2)) / 2.0) OVER () AS tallest"
        '  FROM asset_ocr WHERE "assetId" = %s) AS boxes',
        (asset,),
    ).fetchone()[0]
    assert _document(library.conn, asset) == expected
    assert "'wifi':5 " in expected and "'上海':1A" in expected and "'出口':11B" in expected  # D, A, B
