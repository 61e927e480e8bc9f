"""What the gateway checks and installs before it serves: Immich's release, its schema, immich_aio's SQL."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from anyio import to_thread

from db_extension.connection import connect
from db_extension.errors import DbExtensionError
from db_extension.installer import install
from gateway.immich import GatewayError, ImmichClient, ServerVersion
from gateway.ranking import Schema, read_schema
from gateway.releases import FILTER_API_SINCE, OLDEST_SERVED
from gateway.settings import GatewaySettings
from gateway.tunables import CREATE_TABLE

log = logging.getLogger("immich_aio.gateway")

#: Tables of Immich's schema the gateway reads (v2.2.0 and later have them all).
REQUIRED_TABLES = ("asset", "asset_ocr", "asset_exif", "partner", "smart_search", "album_asset")


class StartupError(GatewayError):
    """The gateway cannot serve this Immich; the message names what is missing."""


@dataclass(frozen=True)
class Prepared:
    version: ServerVersion
    schema: Schema
    filter_api: bool


def check_version(version: ServerVersion) -> None:
    if version.as_tuple() < OLDEST_SERVED:
        oldest = "v" + ".".join(map(str, OLDEST_SERVED))
        raise StartupError(
            f"Immich {version} has no OCR (it arrived in {oldest}): the gateway serves {oldest} and newer. "
            "Upgrade Immich, or patch this release with `immich-aio patch`."
        )


def check_schema(db_url: str) -> Schema:
    """Raise naming the tables an Immich database lacks; else the column names that moved."""
    with connect(db_url) as conn:
        missing = [
            table
            for table in REQUIRED_TABLES
            if not conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]  # type: ignore[index]
        ]
        if missing:
            raise StartupError(
                f"the database is not an Immich v2.2+ database: table(s) {', '.join(missing)} missing. "
                "Start the Immich server once so that it runs its migrations, and check --db-url."
            )
        return read_schema(conn)


def create_settings_table(db_url: str) -> None:
    with connect(db_url) as conn:
        conn.execute(CREATE_TABLE)


async def prepare(settings: GatewaySettings, immich: ImmichClient) -> Prepared:
    """Check Immich's release and schema, install immich_aio's SQL (idempotent, every writer keeps it)."""
    version = await immich.version()
    check_version(version)
    schema = await to_thread.run_sync(check_schema, settings.db_url)
    if settings.install_sql:
        try:
            status = await to_thread.run_sync(lambda: install(settings.db_url, sync_mode="always"))
        except DbExtensionError as error:
            raise StartupError(str(error)) from error
        await to_thread.run_sync(create_settings_table, settings.db_url)
        log.info(
            "immich_aio SQL installed (segmenter %s, %s OCR documents)", status.segmenter, status.documents
        )
    filter_api = version.as_tuple() >= FILTER_API_SINCE
    log.info(
        "serving Immich %s at %s (search API: %s)",
        version,
        immich.base_url,
        "filter" if filter_api else "flat",
    )
    return Prepared(version, schema, filter_api)
