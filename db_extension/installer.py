"""Install, inspect and remove immich-aio's SQL objects in an Immich database."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from db_extension.connection import connect
from db_extension.errors import DbExtensionError, explain

SCHEMA = "immich_aio"


def sql_text(name: str) -> str:
    """The text of one of the packaged SQL files (install.sql, uninstall.sql)."""
    return resources.files("db_extension").joinpath("sql", name).read_text(encoding="utf-8")


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
        }


def install(dsn: str, *, backfill: bool = True) -> Status:
    """Run install.sql in one transaction (idempotent); optionally skip the initial backfill."""
    _run_script(dsn, sql_text("install.sql"), skip_backfill=not backfill)
    return status(dsn)


def uninstall(dsn: str) -> Status:
    """Run uninstall.sql: drops schema immich_aio and its triggers; Immich's data stays untouched."""
    _run_script(dsn, sql_text("uninstall.sql"), skip_backfill=False)
    return status(dsn)


def _run_script(dsn: str, script: str, *, skip_backfill: bool) -> None:
    with connect(dsn, autocommit=False) as conn:
        try:
            with conn.cursor() as cur:
                if skip_backfill:
                    cur.execute("SELECT set_config('immich_aio.skip_backfill', 'on', true)")
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
    has_ocr_table = one("SELECT to_regclass('asset_ocr') IS NOT NULL")
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
        version=one(f"SELECT {SCHEMA}.version()"),
        segmenter=one(f"SELECT {SCHEMA}.segmenter()"),
        zhparser_available=zhparser,
        pgvector_version=pgvector,
        documents=one(f"SELECT count(*) FROM {SCHEMA}.asset_ocr_document"),
        assets_with_ocr=one('SELECT count(DISTINCT "assetId") FROM asset_ocr') if has_ocr_table else 0,
        triggers=triggers,
    )


def require_installed(conn: Any, dsn: str = "") -> None:
    """Raise a clear error unless install.sql has been run on this database."""
    if not conn.execute(f"SELECT to_regclass('{SCHEMA}.meta') IS NOT NULL").fetchone()[0]:
        raise DbExtensionError(
            "immich-aio's SQL is not installed in this database: run `immich-aio db install`"
        )
