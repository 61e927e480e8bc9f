"""Turn database failures into clear, actionable messages for the `immich-aio db` commands."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo


class DbExtensionError(Exception):
    """A failure the user can act on; the message says what is wrong and what to do."""


def explain(error: BaseException, dsn: str = "") -> DbExtensionError:
    """Map a psycopg (or other) error to a DbExtensionError with a readable message."""
    where = f" ({redact(dsn)})" if dsn else ""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, DbExtensionError):
        return error
    if isinstance(error, psycopg.OperationalError) and not isinstance(error, pg_errors.InsufficientPrivilege):
        return DbExtensionError(f"cannot connect to the database{where}: {message}")
    if isinstance(error, pg_errors.InsufficientPrivilege):
        return DbExtensionError(
            f"insufficient privileges{where}: {message}. Connect as the owner of Immich's tables "
            "(the user Immich itself uses), which may create schemas and triggers."
        )
    lowered = message.lower()
    if "pgvector" in lowered or 'extension "vector"' in lowered or 'type "vector"' in lowered:
        return DbExtensionError(
            f"pgvector is missing{where}: {message}. Immich needs it: install pgvector on the server "
            "and run CREATE EXTENSION vector."
        )
    if "immich_aio" in lowered and isinstance(error, pg_errors.UndefinedFunction | pg_errors.UndefinedTable):
        return DbExtensionError(
            f"immich-aio's SQL is not installed{where}: run `immich-aio db install` first"
        )
    if "immich" in lowered or isinstance(error, pg_errors.UndefinedTable | pg_errors.UndefinedColumn):
        return DbExtensionError(f"this database does not look like Immich v2.2 or newer{where}: {message}")
    if isinstance(error, psycopg.Error):
        return DbExtensionError(f"database error{where}: {message}")
    return DbExtensionError(message)


def redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        params: dict[str, Any] = conninfo_to_dict(dsn)
    except Exception:
        return "<unparsable DSN>"
    if "password" in params:
        params["password"] = "***"
    return make_conninfo(**params)
