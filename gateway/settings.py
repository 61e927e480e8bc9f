"""The gateway's settings: where Immich and its database are, where to listen, and how search ranks."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Immich's own port; the gateway is published in its place.
DEFAULT_PORT = 2283


class GatewaySettings(BaseSettings):
    """Read from the command line, else IMMICH_AIO_GATEWAY_* variables, else these defaults."""

    model_config = SettingsConfigDict(env_prefix="IMMICH_AIO_GATEWAY_", extra="ignore")

    immich_url: str = Field(description="The Immich server the gateway stands in front of.")
    db_url: str = Field(description="Immich's PostgreSQL (the DSN the server itself uses).")
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    #: Defaults as the patched servers': hybrid on, reciprocal-rank fusion with k = 60, equal weights. (The
    #: gateway fuses by rank only: Immich's smart-search answer carries no distances to weigh.)
    hybrid: bool = True
    rrf_k: int = Field(default=60, ge=1)
    clip_weight: float = Field(default=1.0, ge=0)
    ocr_weight: float = Field(default=1.0, ge=0)
    near: bool = True
    #: How many single-asset read-backs run at once against Immich.
    read_back_concurrency: int = Field(default=8, ge=1, le=64)
    #: How long a credential's identity (GET /api/users/me) is remembered.
    identity_ttl_seconds: float = Field(default=10.0, ge=0)
    #: An admin's API key (job.read, job.create): starts Immich's own OCR / smart-search runs for refreshes.
    admin_api_key: str | None = None
    #: Install immich_aio's SQL at start (idempotent); off for a database the gateway may not alter.
    install_sql: bool = True
