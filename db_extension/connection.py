"""Open psycopg connections with a short timeout and readable failures."""

from __future__ import annotations

from typing import Any

import psycopg

from db_extension.errors import explain


def connect(
    dsn: str, *, autocommit: bool = True, timeout_seconds: int = 10
) -> psycopg.Connection[tuple[Any, ...]]:
    """Connect to PostgreSQL or raise DbExtensionError saying why not."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=timeout_seconds)
    except psycopg.Error as error:
        raise explain(error, dsn) from error
