"""What a search request asks of the gateway: which requests it answers itself, and with which parts.

Pure parsing, no I/O. Anything it does not recognise is left to Immich (`None`), so a request shape of a
future release is never answered wrongly by the gateway: Immich answers it, as without the gateway.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from db_extension.search import parse_query

#: Immich's page sizes when a request names none (v3.1 SearchService).
SMART_DEFAULT_SIZE = 100
METADATA_DEFAULT_SIZE = 250
MAX_SIZE = 1000

#: Fields of a smart-search body that are the query itself, not a filter on the results.
_QUERY_FIELDS = frozenset({"query", "queryAssetId", "language", "page", "size", "ocr", "cursor", "order"})
#: Fields that say how results are shaped, kept on every read-back so items look as the caller asked.
SHAPE_FIELDS = frozenset({"withExif", "withPeople", "withStacked"})
#: Fields of v3.2's search API; a request with any of them takes Immich's new path.
NEW_PATH_FIELDS = frozenset({"filter", "orderBy", "cursor"})
#: orderBy fields of v3.2 (SearchOrderField) the gateway can order OCR matches by.
ORDER_FIELDS = frozenset({"fileCreatedAt", "localDateTime", "fileSizeInBytes", "rating"})

Endpoint = Literal["smart", "metadata"]


@dataclass(frozen=True)
class Order:
    """How matches are listed: by relevance, or by a field of the asset as the caller asked."""

    field: str = "relevance"
    direction: Literal["asc", "desc"] = "desc"

    @property
    def relevance(self) -> bool:
        return self.field == "relevance"


@dataclass(frozen=True)
class Refusal:
    """A request the gateway answers with a 4xx of its own, as the patched server does."""

    status: int
    message: str


@dataclass(frozen=True)
class OcrSearch:
    """Ranked OCR matches for `text`: the `ocr:` prefix of smart search, or OCR in metadata search."""

    endpoint: Endpoint
    text: str
    #: The caller's flat filters and shape fields, as Immich takes them in a metadata search.
    filters: dict[str, Any]
    offset: int
    size: int
    order: Order = field(default_factory=Order)
    #: v3.2: the request's `filter` without its OCR condition (None for a flat request).
    filter_form: dict[str, Any] | None = None
    #: Whether paging goes by `cursor` (v3.2's new path) rather than `page`.
    cursor_paging: bool = False

    @property
    def page(self) -> int:
        return self.offset // self.size + 1


@dataclass(frozen=True)
class HybridSearch:
    """A plain smart search: Immich's CLIP ranking fused with the OCR ranking of the same text."""

    text: str
    body: dict[str, Any]
    filters: dict[str, Any]
    page: int
    size: int
    filter_form: dict[str, Any] | None = None


Plan = OcrSearch | HybridSearch | Refusal | None


def classify_smart(body: Any, *, hybrid: bool) -> Plan:
    """`POST /api/search/smart`: `ocr:` queries, and plain queries when hybrid ranking is on."""
    if not isinstance(body, dict) or not _plain_scope(body):
        return None
    query = body.get("query")
    if not isinstance(query, str) or "queryAssetId" in body:
        return None
    paging = _paging(body, SMART_DEFAULT_SIZE)
    if paging is None or "cursor" in body or "orderBy" in body:
        return None
    filter_form = _filter_without_ocr(body["filter"]) if "filter" in body else None
    if "filter" in body and filter_form is None:
        return None
    filters = _filters(body)
    parsed = parse_query(query)
    if parsed.ocr_only:
        if not parsed.text:
            return Refusal(400, "An ocr: search needs text after the prefix, for example ocr:发票")
        offset, size = paging
        return OcrSearch("smart", parsed.text, filters, offset, size, filter_form=filter_form)
    if not hybrid or not parsed.text:
        return None
    offset, size = paging
    return HybridSearch(parsed.text, body, filters, offset // size + 1, size, filter_form=filter_form)


def classify_metadata(body: Any) -> Plan:
    """`POST /api/search/metadata` carrying OCR text: the flat `ocr` field, or v3.2's `filter.ocr.matches`."""
    if not isinstance(body, dict) or not _plain_scope(body):
        return None
    flat_ocr = body.get("ocr")
    new_path = bool(NEW_PATH_FIELDS & body.keys())
    if new_path:
        if flat_ocr is not None or "page" in body or "order" in body:
            return None  # Immich's own 400 for mixing the two shapes: passed through
        text = _filter_ocr_text(body.get("filter"))
        filter_form = _filter_without_ocr(body.get("filter"))
        order = _order_by(body.get("orderBy"))
        offset = _cursor_offset(body.get("cursor"))
        size = _size(body, METADATA_DEFAULT_SIZE)
        if text is None or filter_form is None or order is None or offset is None or size is None:
            return None
        return OcrSearch(
            "metadata", text, _filters(body), offset, size, order, filter_form=filter_form, cursor_paging=True
        )
    if not isinstance(flat_ocr, str) or not flat_ocr.strip():
        return None
    paging = _paging(body, METADATA_DEFAULT_SIZE)
    order = _flat_order(body.get("order"))
    if paging is None or order is None:
        return None
    offset, size = paging
    return OcrSearch("metadata", flat_ocr.strip(), _filters(body), offset, size, order)


def encode_cursor(offset: int) -> str:
    """v3.2's cursor: base64url JSON `{"offset": n}` without padding."""
    raw = json.dumps({"offset": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_offset(cursor: Any) -> int | None:
    if cursor is None:
        return 0
    if not isinstance(cursor, str):
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        return None
    offset = decoded.get("offset") if isinstance(decoded, dict) else None
    return offset if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0 else None


def _plain_scope(body: dict[str, Any]) -> bool:
    """Whether the request searches what the gateway's index covers: not the locked folder, not the trash."""
    if body.get("visibility") == "locked" or body.get("withDeleted"):
        return False
    return not any(key in body for key in ("trashedBefore", "trashedAfter", "id"))


def _size(body: dict[str, Any], default: int) -> int | None:
    size = body.get("size", default)
    if not _is_int(size) or not 1 <= size <= MAX_SIZE:
        return None
    return int(size)


def _paging(body: dict[str, Any], default_size: int) -> tuple[int, int] | None:
    size = _size(body, default_size)
    page = body.get("page", 1)
    if size is None or not _is_int(page) or page < 1:
        return None
    return (page - 1) * size, size


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _flat_order(order: Any) -> Order | None:
    if order is None:
        return Order()
    if order in ("asc", "desc"):
        return Order("fileCreatedAt", order)
    return None


def _order_by(order_by: Any) -> Order | None:
    if order_by is None:
        return Order()
    if not isinstance(order_by, dict) or not set(order_by) <= {"field", "direction"}:
        return None
    field_name = order_by.get("field", "fileCreatedAt")
    direction = order_by.get("direction", "desc")
    if field_name not in ORDER_FIELDS or direction not in ("asc", "desc"):
        return None
    return Order(field_name, direction)


def _filters(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in _QUERY_FIELDS | NEW_PATH_FIELDS}


def _filter_ocr_text(filter_: Any) -> str | None:
    if not isinstance(filter_, dict):
        return None
    ocr = filter_.get("ocr")
    matches = ocr.get("matches") if isinstance(ocr, dict) else None
    return matches.strip() if isinstance(matches, str) and matches.strip() else None


def _filter_without_ocr(filter_: Any) -> dict[str, Any] | None:
    """A v3.2 `filter` less its top-level OCR condition; None where the gateway cannot take it apart.

    An `or` list stays in the filter (Immich applies it when reading results back) unless one of its
    branches carries OCR: such a union is left to Immich, and so is an `id` condition (read-backs name ids).
    """
    if filter_ is None:
        return {}
    if not isinstance(filter_, dict) or "id" in filter_:
        return None
    branches = filter_.get("or", [])
    if not isinstance(branches, list) or any(not isinstance(b, dict) or "ocr" in b for b in branches):
        return None
    return {key: value for key, value in filter_.items() if key != "ocr"}
