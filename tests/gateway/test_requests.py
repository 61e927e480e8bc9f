"""Which search requests the gateway answers itself, and what it reads from them."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.requests import (
    HybridSearch,
    OcrSearch,
    Order,
    Refusal,
    classify_metadata,
    classify_smart,
    encode_cursor,
)


@pytest.mark.parametrize("query", ["ocr:发票", "OCR：发票", "  ocr : 发票 ", "Ocr:发票"])
def test_the_prefix_in_every_spelling(query: str) -> None:
    plan = classify_smart({"query": query, "visibility": "timeline", "withExif": True}, hybrid=False)
    assert isinstance(plan, OcrSearch)
    assert (plan.text, plan.offset, plan.size) == ("发票", 0, 100)
    assert plan.filters == {"visibility": "timeline", "withExif": True}


def test_paging_and_refusal() -> None:
    plan = classify_smart({"query": "ocr:a", "page": 3, "size": 20}, hybrid=False)
    assert isinstance(plan, OcrSearch) and (plan.offset, plan.size, plan.page) == (40, 20, 3)
    assert classify_smart({"query": "ocr:  "}, hybrid=False) == Refusal(
        400, "An ocr: search needs text after the prefix, for example ocr:发票"
    )


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"query": 5},
        {"query": "ocr:a", "page": 0},
        {"query": "ocr:a", "size": 1001},
        {"query": "ocr:a", "size": True},
        {"query": "ocr:a", "visibility": "locked"},
        {"query": "ocr:a", "withDeleted": True},
        {"query": "ocr:a", "queryAssetId": "3fa85f64-5717-4562-b3fc-2c963f66afa6"},
        {"query": "ocr:a", "filter": {"or": [{"ocr": {"matches": "a"}}]}},
    ],
)
def test_shapes_left_to_immich(body: Any) -> None:
    assert classify_smart(body, hybrid=True) is None


def test_plain_queries_are_hybrid_only_when_it_is_on() -> None:
    plan = classify_smart({"query": "海边", "page": 2}, hybrid=True)
    assert isinstance(plan, HybridSearch) and (plan.text, plan.page, plan.size) == ("海边", 2, 100)
    assert classify_smart({"query": "海边"}, hybrid=False) is None


def test_metadata_flat_ocr_and_its_order() -> None:
    ranked = classify_metadata({"ocr": " 发票 ", "isFavorite": True})
    dated = classify_metadata({"ocr": "发票", "order": "asc", "page": 2, "size": 10})
    assert isinstance(ranked, OcrSearch) and ranked.order.relevance and ranked.size == 250
    assert ranked.text == "发票" and ranked.filters == {"isFavorite": True}
    assert (
        isinstance(dated, OcrSearch) and dated.order == Order("fileCreatedAt", "asc") and dated.offset == 10
    )
    assert classify_metadata({"originalFileName": "a"}) is None
    assert classify_metadata({"ocr": ""}) is None


def test_metadata_filter_api_of_v32() -> None:
    body = {
        "filter": {"ocr": {"matches": "发票"}, "isFavorite": {"eq": True}},
        "orderBy": {"field": "rating", "direction": "asc"},
        "cursor": encode_cursor(40),
        "size": 20,
    }
    plan = classify_metadata(body)
    assert isinstance(plan, OcrSearch) and plan.cursor_paging
    assert (plan.text, plan.offset, plan.order) == ("发票", 40, Order("rating", "asc"))
    assert plan.filter_form == {"isFavorite": {"eq": True}}
    # mixing a deprecated flat field with the new path is Immich's 400 to give
    assert classify_metadata({**body, "page": 2}) is None
    assert classify_metadata({**body, "cursor": "not base64 json"}) is None
    assert classify_metadata({**body, "orderBy": {"field": "relevance"}}) is None
    assert classify_metadata({"filter": {"isFavorite": {"eq": True}}}) is None  # no OCR: Immich's
    union = {"ocr": {"matches": "发票"}, "or": [{"city": {"eq": "Paris"}}, {"isFavorite": {"eq": True}}]}
    kept = classify_metadata({"filter": union})
    assert isinstance(kept, OcrSearch) and kept.filter_form == {"or": union["or"]}
    ocr_in_branch = {"or": [{"ocr": {"matches": "发票"}}, {"city": {"eq": "Paris"}}]}
    assert classify_metadata({"filter": ocr_in_branch}) is None


def test_taken_bounds_span_the_candidates_and_keep_the_callers() -> None:
    from datetime import UTC, datetime

    from gateway.readback import taken_bounds

    early = datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    late = datetime(2026, 3, 1, 12, 0, 0, 999999, tzinfo=UTC)
    assert taken_bounds({}, [late, early]) == {
        "takenAfter": "2026-01-01T00:00:00.123Z",
        "takenBefore": "2026-03-01T12:00:01.000Z",
    }
    narrowed = taken_bounds({"takenAfter": "2026-02-01T00:00:00.000Z"}, [early, late])
    assert narrowed["takenAfter"] == "2026-02-01T00:00:00.000Z"
    assert taken_bounds({}, [early, None]) == {} and taken_bounds({}, []) == {}
    assert taken_bounds({"takenBefore": "not a date"}, [early]) == {}
