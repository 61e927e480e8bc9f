"""Rebuild OCR documents for existing rows in batches, resumably, with a progress bar."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from db_extension.connection import connect
from db_extension.errors import explain
from db_extension.installer import require_installed


@dataclass(frozen=True)
class BackfillResult:
    """How much a backfill run did."""

    assets: int
    documents_written: int
    removed_orphans: int
    seconds: float
    resumed_from: str | None


ProgressCallback = Callable[[int, int], None]


def backfill(
    dsn: str,
    *,
    batch_size: int = 1000,
    restart: bool = False,
    on_progress: ProgressCallback | None = None,
) -> BackfillResult:
    """Build documents for every asset with OCR rows, one committed batch at a time.

    The cursor (last asset id done) is stored in immich_aio.meta after each batch, so an interrupted run
    resumes where it stopped; `restart` starts again from the first asset.
    """
    started = time.perf_counter()
    with connect(dsn) as conn:
        try:
            require_installed(conn, dsn)
            if restart:
                conn.execute("DELETE FROM immich_aio.meta WHERE key = 'backfill_cursor'")
            row = conn.execute("SELECT value FROM immich_aio.meta WHERE key = 'backfill_cursor'").fetchone()
            cursor: uuid.UUID | None = uuid.UUID(str(row[0])) if row else None
            resumed_from = str(cursor) if cursor else None
            total_row = conn.execute('SELECT count(DISTINCT "assetId") FROM asset_ocr').fetchone()
            total = int(total_row[0]) if total_row else 0
            done_row = conn.execute(
                'SELECT count(DISTINCT "assetId") FROM asset_ocr '
                'WHERE %s::uuid IS NOT NULL AND "assetId" <= %s',
                (cursor, cursor),
            ).fetchone()
            done = int(done_row[0]) if done_row else 0
            assets = 0
            written = 0
            if on_progress:
                on_progress(done, total)
            while True:
                result = conn.execute(
                    "SELECT last_id, assets, written FROM immich_aio.backfill_batch(%s, %s)",
                    (cursor, batch_size),
                ).fetchone()
                if result is None or result[0] is None:
                    break
                cursor = result[0]
                assets += int(result[1])
                written += int(result[2])
                done += int(result[1])
                if on_progress:
                    on_progress(min(done, total), total)
            removed = conn.execute(
                "DELETE FROM immich_aio.asset_ocr_document d WHERE NOT EXISTS "
                '(SELECT 1 FROM asset_ocr o WHERE o."assetId" = d."assetId" AND o."isVisible")'
            ).rowcount
            conn.execute("DELETE FROM immich_aio.meta WHERE key = 'backfill_cursor'")
            conn.execute(
                "INSERT INTO immich_aio.meta VALUES ('backfilled', clock_timestamp()::text) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            )
        except psycopg.Error as error:
            raise explain(error, dsn) from error
    return BackfillResult(
        assets=assets,
        documents_written=written,
        removed_orphans=max(removed, 0),
        seconds=time.perf_counter() - started,
        resumed_from=resumed_from,
    )
