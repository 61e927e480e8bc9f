"""The search answers the gateway gives itself: ranked `ocr:` search, hybrid smart search, OCR in metadata.

Each answer has the shape of Immich's own (the envelope of one of Immich's answers, its items as Immich
returned them to the caller); only the order and the paging are the gateway's.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from anyio import to_thread
from psycopg_pool import ConnectionPool

from db_extension.search import user_ids_to_search
from gateway import tunables
from gateway.immich import Caller, Credential, ImmichAnswered, ImmichClient
from gateway.proxy import Upstream
from gateway.ranking import (
    Composable,
    FusedHit,
    RankedWindow,
    Schema,
    fused_window,
    ocr_window,
    scope_conditions,
)
from gateway.readback import read_back
from gateway.requests import HybridSearch, OcrSearch, encode_cursor
from gateway.settings import GatewaySettings
from gateway.timing import Timings
from gateway.tunables import Tunables
from ml_service.models.clip.script import to_simplified

log = logging.getLogger("immich_aio.gateway")
T = TypeVar("T")

#: How many candidates each ranking of a hybrid search contributes at least (as the patched servers).
HYBRID_MIN_DEPTH = 200


#: How long the admin's settings are read from memory before the table is read again.
TUNABLES_TTL_SECONDS = 2.0


@dataclass
class SearchContext:
    """What every answer needs: the database, Immich, the settings and what the server is."""

    pool: ConnectionPool[Any]
    immich: ImmichClient
    upstream: Upstream
    settings: GatewaySettings
    schema: Schema
    filter_api: bool
    _tunables: tuple[float, Tunables] | None = field(default=None, repr=False)

    async def in_db(self, work: Callable[[Any], T]) -> T:
        def run() -> T:
            with self.pool.connection() as conn:
                return work(conn)

        return await to_thread.run_sync(run)

    async def tunables(self) -> Tunables:
        """The admin's settings (saved values over the start-up ones), read again every few seconds."""
        now = time.monotonic()
        if self._tunables is None or now - self._tunables[0] > TUNABLES_TTL_SECONDS:
            self._tunables = (now, await self.in_db(lambda conn: tunables.load(conn, self.settings)))
        return self._tunables[1]

    def remember(self, saved: Tunables) -> None:
        """Use settings just saved from the next request on."""
        self._tunables = (time.monotonic(), saved)


def empty_envelope() -> dict[str, Any]:
    """Immich's SearchResponseDto with no results (v3.1's shape)."""
    return {
        "albums": {"total": 0, "count": 0, "items": [], "facets": []},
        "assets": {"total": 0, "count": 0, "items": [], "facets": [], "nextPage": None},
    }


def _shell(envelope: dict[str, Any]) -> dict[str, Any]:
    """A copy of an answer of Immich without its items (a deep copy of the bulk read-back's 1,000 items took
    longer than ranking the page)."""
    assets = envelope.get("assets")
    if isinstance(assets, dict):
        envelope = {**envelope, "assets": {key: value for key, value in assets.items() if key != "items"}}
    return copy.deepcopy(envelope)


def _reply(
    envelope: dict[str, Any] | None,
    items: list[dict[str, Any]],
    next_offset: int | None,
    *,
    page: int | None,
    cursor_paging: bool,
) -> dict[str, Any]:
    reply = _shell(envelope) if envelope is not None else empty_envelope()
    reply["albums"] = {"total": 0, "count": 0, "items": [], "facets": []}
    assets = reply.setdefault("assets", {})
    assets.update({"total": len(items), "count": len(items), "items": items, "facets": []})
    if cursor_paging:
        assets.pop("nextPage", None)
        assets["nextCursor"] = None if next_offset is None else encode_cursor(next_offset)
    else:
        assets["nextPage"] = None if next_offset is None or page is None else str(page + 1)
        if "nextCursor" in assets:
            assets["nextCursor"] = None if next_offset is None else encode_cursor(next_offset)
    return reply


async def answer_ocr(
    context: SearchContext, plan: OcrSearch, caller: Caller, credential: Credential, timings: Timings
) -> dict[str, Any]:
    """One page of OCR matches, most relevant first unless the request names another order."""
    near = (await context.tunables()).near

    def rank(conn: Any) -> RankedWindow:
        window = ocr_window(
            conn,
            text=plan.text,
            conditions=_scope(conn, context, caller, plan.filters),
            order=plan.order,
            offset=plan.offset,
            limit=plan.size + 1,
            near=near,
        )
        return window

    with timings.phase("rank"):
        ranked = await context.in_db(rank)
    has_more = len(ranked.candidates) > plan.size
    page = ranked.candidates[: plan.size]
    page_ids = [candidate.asset_id for candidate in page]
    found = await read_back(
        context.immich,
        credential,
        page_ids,
        filters=plan.filters,
        text=plan.text,
        filter_form=plan.filter_form,
        filter_api=context.filter_api,
        concurrency=context.settings.read_back_concurrency,
        taken=[candidate.taken for candidate in page],
        timings=timings,
        # a page in date order spans only its own dates, which the bulk search is narrowed to: it covers it
        index_matches=ranked.matches if plan.order.relevance else None,
    )
    items = [found.items[asset_id] for asset_id in page_ids if asset_id in found.items]
    next_offset = plan.offset + plan.size if has_more else None
    with timings.phase("reply"):
        return _reply(found.envelope, items, next_offset, page=plan.page, cursor_paging=plan.cursor_paging)


async def answer_hybrid(
    context: SearchContext, plan: HybridSearch, caller: Caller, credential: Credential, timings: Timings
) -> dict[str, Any]:
    """Immich's CLIP ranking fused with the OCR ranking (reciprocal-rank fusion), one page of it.

    When Immich cannot rank by CLIP (its ML is down), the OCR ranking answers alone, as the patched servers
    do; any 4xx of Immich is the caller's answer.
    """
    settings = context.settings
    tuned = await context.tunables()
    depth = min(1000, max(HYBRID_MIN_DEPTH, plan.page * plan.size + 1))
    clip_body = {**converted(plan.body, tuned), "page": 1, "size": depth}
    try:
        with timings.phase("clip"):
            clip_answer: dict[str, Any] | None = await context.immich.search("smart", clip_body, credential)
    except ImmichAnswered as answered:
        if answered.status < 500:
            raise
        log.warning(
            "Smart search answered with OCR ranking only, the query could not be encoded: Immich answered %s",
            answered.status,
        )
        clip_answer = None
    clip_items = _items(clip_answer)
    clip_by_id = {item["id"]: item for item in clip_items}

    def fuse(conn: Any) -> list[FusedHit]:
        hits = fused_window(
            conn,
            text=plan.text,
            clip_ids=list(clip_by_id),
            conditions=_scope(conn, context, caller, plan.filters),
            depth=depth,
            offset=(plan.page - 1) * plan.size,
            limit=plan.size + 1,
            k=tuned.rrf_k,
            clip_weight=tuned.clip_weight,
            ocr_weight=tuned.ocr_weight,
            near=tuned.near,
        )
        return hits

    with timings.phase("rank"):
        fused = await context.in_db(fuse)
    has_more = len(fused) > plan.size
    page = fused[: plan.size]
    ocr_only = [hit for hit in page if not hit.from_clip or hit.asset_id not in clip_by_id]
    found = await read_back(
        context.immich,
        credential,
        [hit.asset_id for hit in ocr_only],
        filters=plan.filters,
        text=plan.text,
        filter_form=plan.filter_form,
        filter_api=context.filter_api,
        concurrency=settings.read_back_concurrency,
        taken=[hit.taken for hit in ocr_only],
        timings=timings,
    )
    items: list[dict[str, Any]] = []
    for hit in page:
        item = clip_by_id.get(hit.asset_id) or found.items.get(hit.asset_id)
        if item is not None:
            items.append(item)
    envelope = clip_answer if clip_answer is not None else found.envelope
    next_offset = plan.page * plan.size if has_more else None
    with timings.phase("reply"):
        return _reply(envelope, items, next_offset, page=plan.page, cursor_paging=False)


def converted(body: dict[str, Any], tuned: Tunables) -> dict[str, Any]:
    """A plain smart search with its query read as the admin's text-conversion setting says (Chinese-CLIP
    learned from Simplified captions); OCR matching folds scripts in the database and needs no such step."""
    query = body.get("query")
    if not isinstance(query, str) or tuned.text_conversion == "off":
        return body
    simplified = to_simplified(query, tuned.text_conversion)
    return body if simplified == query else {**body, "query": simplified}


def _scope(conn: Any, context: SearchContext, caller: Caller, filters: dict[str, Any]) -> list[Composable]:
    """The SQL scope of a caller's search: the caller and timeline partners, and the request's filters."""
    user_ids = user_ids_to_search(conn, caller.user_id, with_partners=True)
    return scope_conditions(filters, user_ids, context.schema)


def _items(answer: dict[str, Any] | None) -> list[dict[str, Any]]:
    assets = answer.get("assets") if answer else None
    items = assets.get("items") if isinstance(assets, dict) else None
    return (
        [item for item in items if isinstance(item, dict) and "id" in item] if isinstance(items, list) else []
    )
