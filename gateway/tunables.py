"""The settings an admin changes while the gateway runs, kept in immich_aio's schema (gateway_settings).

Defaults come from the gateway's start-up settings (flags and IMMICH_AIO_GATEWAY_* variables, the patched
servers' defaults); a value saved on the settings page wins over them. `immich-aio db uninstall` drops the
table with the schema.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.settings import GatewaySettings
from ml_service.models.clip.script import TextConversion

TABLE = "immich_aio.gateway_settings"
CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (key text PRIMARY KEY, value jsonb NOT NULL, "
    '"updatedAt" timestamptz NOT NULL DEFAULT now())'
)


class Tunables(BaseModel):
    """What the settings page shows and saves; ranges as the patched servers' admin settings."""

    model_config = ConfigDict(extra="forbid")

    hybrid: bool = True
    rrf_k: int = Field(default=60, ge=1, le=1000)
    clip_weight: float = Field(default=1.0, ge=0, le=10)
    ocr_weight: float = Field(default=1.0, ge=0, le=10)
    near: bool = True
    #: How a Traditional smart-search query is read before Immich has it encoded (t2s as the patched servers)
    text_conversion: TextConversion = "t2s"
    admin_api_key: str | None = None

    def public(self) -> dict[str, Any]:
        """The values as the page shows them: the API key only as whether one is set."""
        shown = self.model_dump(exclude={"admin_api_key"})
        shown["admin_api_key_set"] = bool(self.admin_api_key)
        return shown


class TunablesError(ValueError):
    """A change the page sent that is not a valid setting; the message says which and why."""


def defaults(settings: GatewaySettings) -> Tunables:
    return Tunables(
        hybrid=settings.hybrid,
        rrf_k=settings.rrf_k,
        clip_weight=settings.clip_weight,
        ocr_weight=settings.ocr_weight,
        near=settings.near,
        admin_api_key=settings.admin_api_key,
    )


def load(conn: Any, settings: GatewaySettings) -> Tunables:
    """The start-up values with every saved one over them (a saved value no longer valid is ignored)."""
    values = defaults(settings).model_dump()
    if not conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()[0]:
        return defaults(settings)
    for key, value in conn.execute(f"SELECT key, value FROM {TABLE}").fetchall():
        if key in values:
            values[key] = value
    try:
        return Tunables(**values)
    except ValidationError:
        return defaults(settings)


def save(conn: Any, settings: GatewaySettings, changes: Any) -> Tunables:
    """Validate `changes` (a JSON object of settings) against the current values and store them."""
    if not isinstance(changes, dict):
        raise TunablesError("send a JSON object of settings")
    current = load(conn, settings).model_dump()
    try:
        updated = Tunables(**{**current, **changes})
    except (ValidationError, TypeError) as error:
        raise TunablesError(_explain(error)) from error
    with conn.transaction():
        for key in changes:
            conn.execute(
                f'INSERT INTO {TABLE} (key, value, "updatedAt") VALUES (%s, %s::jsonb, now()) '
                'ON CONFLICT (key) DO UPDATE SET value = excluded.value, "updatedAt" = now()',
                (key, json.dumps(getattr(updated, key))),
            )
    return updated


def _explain(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    return str(error)
