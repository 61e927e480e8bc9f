"""Bring OCR documents up to date in committed batches: a full backfill, or a reconcile of what changed."""

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
                'DELETE FROM immich_aio.asset_ocr_document WHERE "assetId" IN '
                "(SELECT immich_aio.orphan_documents())"
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


@dataclass(frozen=True)
class ReconcileResult:
    """How much a reconcile run did."""

    queued: int
    rebuilt: int
    recopied: int
    seconds: float


def reconcile(
    dsn: str, *, batch_size: int = 1000, on_progress: ProgressCallback | None = None
) -> ReconcileResult:
    """Rebuild the documents of assets changed while the triggers did not run for their writer.

    One short transaction per batch (immich_aio.reconcile_step), so Immich's own writes are never held up
    for long; an interrupted run leaves the rest queued and the next run finishes it.
    """
    started = time.perf_counter()
    with connect(dsn) as conn:
        try:
            require_installed(conn, dsn)
            queued_row = conn.execute("SELECT immich_aio.reconcile_begin()").fetchone()
            queued = int(queued_row[0]) if queued_row else 0
            rebuilt = recopied = 0
            while True:
                row = conn.execute(
                    "SELECT rebuilt, recopied, remaining FROM immich_aio.reconcile_step(%s)", (batch_size,)
                ).fetchone()
                assert row is not None
                rebuilt += int(row[0])
                recopied += int(row[1])
                if on_progress:
                    on_progress(queued - int(row[2]), queued)
                if int(row[2]) == 0:
                    break
        except psycopg.Error as error:
            raise explain(error, dsn) from error
    return ReconcileResult(queued, rebuilt, recopied, time.perf_counter() - started)
