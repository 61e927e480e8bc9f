"""Refresh OCR / Refresh smart search of chosen assets on an unmodified Immich: Immich decides, its jobs run.

`POST /api/assets/jobs` with `refresh-ocr` or `refresh-smart-search` (the names the patched servers take)
is answered here; every other asset job goes to Immich. The caller's credential must be one Immich lets
create jobs (an empty asset job, which queues nothing, is Immich's own answer to that) and edit each asset
(`PUT /api/assets/{id}` with no change, Immich's answer for that asset). Then the assets' OCR boxes and run
time, or their embedding, are cleared, and the queue's "missing" run is started with the admin API key the
gateway was given: Immich's own OCR / smart-search job recomputes exactly what was cleared.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.immich import Credential, GatewayError, ImmichAnswered, ImmichClient

#: Asset job name -> Immich's queue that recomputes it.
REFRESH_JOBS = {"refresh-ocr": "ocr", "refresh-smart-search": "smartSearch"}
#: An asset job every release has; sent with no assets it only asks Immich whether the caller may create jobs.
_PROBE_JOB = "refresh-faces"


class RefreshUnavailable(GatewayError):
    """The gateway cannot start Immich's jobs (no admin API key, or Immich refused it)."""


@dataclass(frozen=True)
class RefreshRequest:
    job: str
    asset_ids: tuple[str, ...]

    @property
    def queue(self) -> str:
        return REFRESH_JOBS[self.job]


def classify_asset_job(body: Any) -> RefreshRequest | None:
    """A refresh the gateway runs, or None (another job, or a body Immich should judge)."""
    if not isinstance(body, dict) or body.get("name") not in REFRESH_JOBS:
        return None
    ids = body.get("assetIds")
    if not isinstance(ids, list) or not all(isinstance(i, str) and _is_uuid(i) for i in ids):
        return None
    return RefreshRequest(str(body["name"]), tuple(dict.fromkeys(ids)))


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def check_access(
    immich: ImmichClient, credential: Credential, asset_ids: Sequence[str], concurrency: int
) -> None:
    """Raise Immich's own refusal unless the caller may create jobs and edit every one of the assets."""
    await immich.call("POST", "/api/assets/jobs", credential, {"assetIds": [], "name": _PROBE_JOB})
    limit = asyncio.Semaphore(concurrency)

    async def editable(asset_id: str) -> None:
        async with limit:
            await immich.call("PUT", f"/api/assets/{asset_id}", credential, {})

    await asyncio.gather(*(editable(asset_id) for asset_id in asset_ids))


def clear_state(conn: Any, request: RefreshRequest) -> int:
    """Forget what Immich's job will recompute for these assets, in one transaction; returns how many."""
    ids = list(request.asset_ids)
    with conn.transaction():
        if request.queue == "ocr":
            conn.execute('DELETE FROM asset_ocr WHERE "assetId" = ANY(%s::uuid[])', (ids,))
            conn.execute('DELETE FROM ocr_search WHERE "assetId" = ANY(%s::uuid[])', (ids,))
            cleared = conn.execute(
                'UPDATE asset_job_status SET "ocrAt" = NULL WHERE "assetId" = ANY(%s::uuid[])', (ids,)
            ).rowcount
        else:
            cleared = conn.execute(
                'DELETE FROM smart_search WHERE "assetId" = ANY(%s::uuid[])', (ids,)
            ).rowcount
    return int(cleared)


def admin_credential(admin_api_key: str | None) -> Credential:
    if not admin_api_key:
        raise RefreshUnavailable(
            "Refresh needs an admin API key: set it on the gateway's settings page (/immich-aio/settings) "
            "or in IMMICH_AIO_GATEWAY_ADMIN_API_KEY"
        )
    return Credential((("x-api-key", admin_api_key),))


async def check_admin(immich: ImmichClient, admin: Credential) -> None:
    """Raise RefreshUnavailable unless Immich takes the admin key (GET /api/jobs: admins only, no effect)."""
    try:
        await immich.call("GET", "/api/jobs", admin)
    except ImmichAnswered as answered:
        raise RefreshUnavailable(
            f"Immich refused the gateway's admin API key ({answered.status}): set a key of an admin with "
            "job.read and job.create on the gateway's settings page"
        ) from answered


async def start_missing_run(immich: ImmichClient, admin: Credential, queue: str) -> None:
    """Start the queue's run over assets without its result (`PUT /api/jobs/{queue}`, v2.2 – v3.3)."""
    try:
        await immich.call("PUT", f"/api/jobs/{queue}", admin, {"command": "start", "force": False})
    except ImmichAnswered as answered:
        raise RefreshUnavailable(f"Immich did not start its {queue} run ({answered.status})") from answered
