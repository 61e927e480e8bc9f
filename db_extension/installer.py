"""Install, inspect and remove immich-aio's SQL objects in an Immich database."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, get_args

import jinja2
import psycopg

from db_extension.connection import connect
from db_extension.errors import DbExtensionError, explain

SCHEMA = "immich_aio"
#: Who keeps the OCR documents current: every writer, or only the patched Immich server (see install.sql).
SyncMode = Literal["always", "patched-server"]
SYNC_MODES: tuple[str, ...] = get_args(SyncMode)
#: Where the OCR boxes live: Immich's own asset_ocr (v2.2+) or the v1 series' schema (ocr_storage.sql).
OcrStorage = Literal["native", "immich_aio_ocr"]
#: The boxes table and the runs table ("ocrAt") of each storage (install.sql names the same for its SQL).
STORAGE_TABLES: dict[OcrStorage, tuple[str, str]] = {
    "native": ("asset_ocr", "asset_job_status"),
    "immich_aio_ocr": ("immich_aio_ocr.asset_ocr", "immich_aio_ocr.asset_ocr_job"),
}

#: Immich's asset table, newest name first: "assets" before v1.136.
ASSET_TABLES: tuple[str, ...] = ("asset", "assets")


def sql_text(name: str) -> str:
    """The text of one of the packaged SQL files (install.sql, uninstall.sql, ocr_storage.sql)."""
    return resources.files("db_extension").joinpath("sql", name).read_text(encoding="utf-8")


def install_script(
    storage: OcrStorage = "native", asset_table: str = "asset", visibility_flags: bool = False
) -> str:
    """install.sql rendered for one OCR storage and asset table (a jinja2 template for those names), and for
    the asset table's flags "isArchived" / "isVisible" (v1.132) where `visibility_flags`, else its visibility
    column (v1.133 on)."""
    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    template = environment.from_string(sql_text("install.sql"))
    return template.render(ocr_storage=storage, asset_table=asset_table, visibility_flags=visibility_flags)


def detect_asset_table(conn: Any) -> str:
    """Immich's asset table: "asset" (v1.136 and later), else "assets" where that exists (else "asset")."""
    for name in ASSET_TABLES:
        if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]:
            return name
    return ASSET_TABLES[0]


def detect_visibility_flags(conn: Any, asset_table: str) -> bool:
    """Whether the asset table keeps the "isArchived" / "isVisible" flags of Immich v1.132 rather than the
    visibility column v1.133's migration makes of them (a table with neither counts as the newer shape)."""
    columns = {
        row[0]
        for row in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped AND attname IN ('visibility', 'isVisible')",
            (asset_table,),
        ).fetchall()
    }
    return columns == {"isVisible"}


def detect_storage(conn: Any) -> OcrStorage:
    """The OCR storage of a database: Immich's own where it exists, else the v1 series' (else native)."""
    storages: tuple[OcrStorage, ...] = get_args(OcrStorage)
    for storage in storages:
        if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (STORAGE_TABLES[storage][0],)).fetchone()[0]:
            return storage
    return "native"


@dataclass(frozen=True)
class Status:
    """What is installed in a database."""

    installed: bool
    version: str | None
    segmenter: str | None
    zhparser_available: bool
    pgvector_version: str | None
    documents: int
    assets_with_ocr: int
    triggers: tuple[str, ...]
    sync_mode: str | None = None
    reconcile_queued: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "installed": self.installed,
            "version": self.version,
            "segmenter": self.segmenter,
            "zhparserAvailable": self.zhparser_available,
            "pgvectorVersion": self.pgvector_version,
            "documents": self.documents,
            "assetsWithOcr": self.assets_with_ocr,
            "triggers": list(self.triggers),
            "syncMode": self.sync_mode,
            "reconcileQueued": self.reconcile_queued,
        }


def install(dsn: str, *, backfill: bool = True, sync_mode: SyncMode | None = None) -> Status:
    """Run install.sql in one transaction (idempotent); optionally skip the initial backfill.

    Without `sync_mode`, a database keeps the mode it was installed with ('always' for a new install).
    """
    if sync_mode is not None and sync_mode not in SYNC_MODES:
        raise DbExtensionError(f"sync mode must be one of {', '.join(SYNC_MODES)}, not {sync_mode!r}")
    mode = sync_mode or status(dsn).sync_mode or "always"
    settings = {"immich_aio.sync_mode": mode, "immich_aio.skip_backfill": "off" if backfill else "on"}
    with connect(dsn) as conn:
        storage = detect_storage(conn)
        asset_table = detect_asset_table(conn)
        visibility_flags = detect_visibility_flags(conn, asset_table)
    _run_script(dsn, install_script(storage, asset_table, visibility_flags), settings)
    return status(dsn)


def uninstall(dsn: str) -> Status:
    """Run uninstall.sql: drops schema immich_aio, its triggers and its migration record; Immich's data stays.

    What is left is what a stock Immich expects; on a release of the v1 series, also the OCR the patched
    server produced (schema immich_aio_ocr), which a stock Immich never reads and a later patched one
    carries over.
    """
    _run_script(dsn, sql_text("uninstall.sql"), {})
    return status(dsn)


def _run_script(dsn: str, script: str, settings: dict[str, str]) -> None:
    with connect(dsn, autocommit=False) as conn:
        try:
            with conn.cursor() as cur:
                for name, value in settings.items():
                    cur.execute("SELECT set_config(%s, %s, true)", (name, value))
                cur.execute(script.encode("utf-8"))
            conn.commit()
        except psycopg.Error as error:
            conn.rollback()
            raise explain(error, dsn) from error


def status(dsn: str) -> Status:
    """Report the installed version, segmenter, document counts and triggers."""
    with connect(dsn) as conn:
        try:
            return _status(conn)
        except psycopg.Error as error:
            raise explain(error, dsn) from error


def _status(conn: Any) -> Status:
    def one(query: str) -> Any:
        row = conn.execute(query).fetchone()
        return None if row is None else row[0]

    zhparser = bool(one("SELECT count(*) FROM pg_available_extensions WHERE name = 'zhparser'"))
    pgvector = one("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    installed = one(f"SELECT to_regclass('{SCHEMA}.meta') IS NOT NULL")
    ocr_table = STORAGE_TABLES[detect_storage(conn)][0]
    has_ocr_table = one(f"SELECT to_regclass('{ocr_table}') IS NOT NULL")
    if not installed:
        return Status(False, None, None, zhparser, pgvector, 0, 0, ())
    triggers = tuple(
        row[0]
        for row in conn.execute(
            "SELECT tgname FROM pg_trigger "
            "WHERE tgname LIKE 'immich\\_aio\\_%' AND NOT tgisinternal ORDER BY 1"
        )
    )
    return Status(
        installed=True,
        sync_mode=one(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'sync_mode'"),
        reconcile_queued=(
            one(f"SELECT count(*) FROM {SCHEMA}.reconcile_queue")
            if one(f"SELECT to_regclass('{SCHEMA}.reconcile_queue') IS NOT NULL")
            else 0
        ),
        version=one(f"SELECT {SCHEMA}.version()"),
        segmenter=one(f"SELECT {SCHEMA}.segmenter()"),
        zhparser_available=zhparser,
        pgvector_version=pgvector,
        documents=one(f"SELECT count(*) FROM {SCHEMA}.asset_ocr_document"),
        assets_with_ocr=one(f'SELECT count(DISTINCT "assetId") FROM {ocr_table}') if has_ocr_table else 0,
        triggers=triggers,
    )


def require_installed(conn: Any, dsn: str = "") -> None:
    """Raise a clear error unless install.sql has been run on this database."""
    if not conn.execute(f"SELECT to_regclass('{SCHEMA}.meta') IS NOT NULL").fetchone()[0]:
        raise DbExtensionError(
            "immich-aio's SQL is not installed in this database: run `immich-aio db install`"
        )
