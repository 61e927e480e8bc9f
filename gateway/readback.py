"""Reads ranked candidates back through Immich's own search with the caller's credential.

Immich stays the judge: an asset the gateway returns is an item of an answer Immich gave that caller for
that request's filters. To avoid one request per asset, the bulk of the candidates comes from a few
searches that return many at once, and only the rest is asked for one by one:

- v3.2 and later: one metadata search whose `filter.or[]` names each candidate's id;
- before: Immich's own OCR filter for the query text (which finds most exact matches) inside the page's
  dates, then one metadata search per remaining id (`id` plus the caller's filters), a few at a time. The
  OCR filter is skipped where the index counts too many matches for its one answer to cover the page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.immich import Credential, ImmichClient
from gateway.requests import MAX_SIZE, SHAPE_FIELDS
from gateway.timing import Timings

#: Before v3.2 the bulk read-back returns at most MAX_SIZE of Immich's OCR matches in the page's dates,
#: newest first, and pays Immich's OCR filter over all of them. Where the index counts more than this many
#: times MAX_SIZE matches, the bulk would bring back under a quarter of the page for more than reading that
#: quarter one by one costs (bench/gateway_vs_patched.py, docs/gateway.md): the page is read one by one.
BULK_SKIP_RATIO = 4


@dataclass
class ReadBack:
    """Items Immich returned, by asset id, and the envelope of one of its answers (for the reply's shape)."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    envelope: dict[str, Any] | None = None
    requests: int = 0

    def take(self, answer: dict[str, Any], wanted: set[str]) -> None:
        self.requests += 1
        if self.envelope is None:
            self.envelope = answer
        assets = answer.get("assets")
        items = assets.get("items") if isinstance(assets, dict) else None
        for item in items if isinstance(items, list) else []:
            asset_id = item.get("id") if isinstance(item, dict) else None
            if asset_id in wanted:
                self.items[asset_id] = item


def taken_bounds(filters: dict[str, Any], taken: Sequence[datetime | None]) -> dict[str, str]:
    """`takenAfter` / `takenBefore` spanning the candidates (to the millisecond, outward), narrowed further
    by the caller's own bounds: the bulk read-back then scans what the page needs, not the whole match."""
    stamps = [stamp for stamp in taken if stamp is not None]
    if len(stamps) != len(taken) or not stamps:
        return {}
    low = min(stamps).replace(microsecond=min(stamps).microsecond // 1000 * 1000)
    high = max(stamps) + timedelta(milliseconds=1)
    bounds = {"takenAfter": low, "takenBefore": high}
    for key, pick in (("takenAfter", max), ("takenBefore", min)):
        given = filters.get(key)
        if isinstance(given, str):
            try:
                bounds[key] = pick(bounds[key], datetime.fromisoformat(given.replace("Z", "+00:00")))
            except (TypeError, ValueError):
                return {}  # a bound Immich will judge itself: leave the caller's as it is
    return {key: value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for key, value in bounds.items()}  # fmt: skip


async def read_back(
    immich: ImmichClient,
    credential: Credential,
    ids: Sequence[str],
    *,
    filters: dict[str, Any],
    text: str,
    filter_form: dict[str, Any] | None,
    filter_api: bool,
    concurrency: int,
    taken: Sequence[datetime | None] = (),
    timings: Timings | None = None,
    index_matches: int | None = None,
) -> ReadBack:
    """The items of `ids` that Immich returns to this caller under these filters (`taken`: each id's
    fileCreatedAt, which narrows the bulk search of releases before v3.2; `index_matches`: how many matches
    the index counts in the caller's scope, which says whether that bulk search can cover the page)."""
    result = ReadBack()
    timings = timings if timings is not None else Timings()
    wanted = set(ids)
    if not wanted:
        return result
    if not filter_api and (index_matches is None or index_matches <= BULK_SKIP_RATIO * MAX_SIZE):
        with timings.phase("bulk"):
            body = {**filters, **taken_bounds(filters, taken), "ocr": text, "size": MAX_SIZE}
            result.take(await immich.search("metadata", body, credential), wanted)
        timings.count("bulk", len(result.items))
    elif filter_api and not (filter_form and "or" in filter_form):
        # (the caller's own or[] keeps the one-by-one path below: two unions cannot share one filter)
        with timings.phase("bulk"):
            await _by_id_branches(immich, credential, list(dict.fromkeys(ids)), filters, filter_form, result)
        timings.count("bulk", len(result.items))
    missing = [asset_id for asset_id in dict.fromkeys(ids) if asset_id not in result.items]
    if missing:
        with timings.phase("one_by_one"):
            await _one_by_one(immich, credential, missing, filters, filter_form, concurrency, result)
        timings.count("one_by_one", len(missing))
    return result


async def _by_id_branches(
    immich: ImmichClient,
    credential: Credential,
    ids: list[str],
    filters: dict[str, Any],
    filter_form: dict[str, Any] | None,
    result: ReadBack,
) -> None:
    shape = {key: value for key, value in filters.items() if key in SHAPE_FIELDS}
    base = filter_form if filter_form is not None else _as_filter(filters)
    if base is None:
        return  # flat filters the gateway does not translate: the one-by-one path keeps them flat
    for start in range(0, len(ids), MAX_SIZE):
        chunk = ids[start : start + MAX_SIZE]
        body = {**shape, "filter": {**base, "or": [{"id": {"eq": asset_id}} for asset_id in chunk]}}
        result.take(await immich.search("metadata", {**body, "size": len(chunk)}, credential), set(chunk))


#: Flat filters with a one-to-one branch condition in v3.2's SearchFilter.
_FLAT_TO_BRANCH_EQ = ("type", "visibility", "isFavorite", "isMotion", "isOffline", "isEncoded")


def _as_filter(filters: dict[str, Any]) -> dict[str, Any] | None:
    """A flat request's filters as a v3.2 filter, where each has a one-to-one counterpart; else None."""
    branch: dict[str, Any] = {}
    for key, value in filters.items():
        if key in SHAPE_FIELDS:
            continue
        if key not in _FLAT_TO_BRANCH_EQ:
            return None
        branch[key] = {"eq": value}
    return branch


async def _one_by_one(
    immich: ImmichClient,
    credential: Credential,
    ids: list[str],
    filters: dict[str, Any],
    filter_form: dict[str, Any] | None,
    concurrency: int,
    result: ReadBack,
) -> None:
    limit = asyncio.Semaphore(concurrency)

    async def one(asset_id: str) -> None:
        if filter_form is not None:
            shape = {key: value for key, value in filters.items() if key in SHAPE_FIELDS}
            body = {**shape, "filter": {**filter_form, "id": {"eq": asset_id}}, "size": 1}
        else:
            body = {**filters, "id": asset_id, "size": 1}
        async with limit:
            answer = await immich.search("metadata", body, credential)
        result.take(answer, {asset_id})

    await asyncio.gather(*(one(asset_id) for asset_id in ids))
