"""The gateway refuses what it cannot serve, naming what is missing, and installs what it needs."""

from __future__ import annotations

import pytest

from db_extension.installer import status
from gateway.immich import ServerVersion
from gateway.startup import StartupError, check_schema, check_version
from tests.gateway.conftest import Stack


def test_releases_before_ocr_are_refused_with_the_reason() -> None:
    check_version(ServerVersion(2, 2, 0))
    check_version(ServerVersion(3, 3, 5))
    with pytest.raises(StartupError, match=r"v2\.1\.9 has no OCR .* v2\.2\.0 and newer"):
        check_version(ServerVersion(2, 1, 9))


def test_a_database_without_immichs_tables_is_refused_naming_them(stack: Stack) -> None:
    stack.library.conn.execute("DROP TABLE album_asset, partner CASCADE")
    with pytest.raises(StartupError, match="partner, album_asset missing"):
        check_schema(stack.dsn)


def test_start_installs_the_sql_for_every_writer(stack: Stack) -> None:
    installed = status(stack.dsn)
    assert installed.installed and installed.sync_mode == "always"
    assert "immich_aio_ocr_insert" in installed.triggers
