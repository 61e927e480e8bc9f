"""Search an Immich database from the command line: `ocr:` queries rank OCR text, others run hybrid."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Literal

import httpx
import psycopg

from db_extension.connection import connect
from db_extension.errors import DbExtensionError, explain
from db_extension.installer import require_installed
from ml_service.models.clip.names import UPSTREAM_ALIAS_MODEL

# `ocr:` in any case, with an ASCII or full-width colon, spaces allowed around it.
_OCR_PREFIX = re.compile(r"^\s*ocr\s*[:：]\s*", re.IGNORECASE)

SearchMode = Literal["rrf", "weighted"]


@dataclass(frozen=True)
class ParsedQuery:
    """A user query split into its kind and the text to search for."""

    ocr_only: bool
    text: str


def parse_query(raw: str) -> ParsedQuery:
    """Recognise the `ocr:` prefix (also `OCR:`, `ocr：`, surrounding spaces)."""
    raw = raw.replace("\x00", "")  # PostgreSQL text cannot hold NUL; it carries no meaning in a query
    match = _OCR_PREFIX.match(raw)
    if match:
        return ParsedQuery(ocr_only=True, text=raw[match.end() :].strip())
    return ParsedQuery(ocr_only=False, text=raw.strip())


@dataclass(frozen=True)
class SearchHit:
    """One result row."""

    assetId: str
    score: float
    clipRank: int | None = None
    ocrRank: int | None = None
    clipDistance: float | None = None
    ocrScore: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def embed_text(
    ml_url: str, text: str, *, model: str = UPSTREAM_ALIAS_MODEL, language: str = "zh"
) -> list[float]:
    """Ask an Immich ML service (Immich's own protocol) for the CLIP text embedding of `text`."""
    entries = {"clip": {"textual": {"modelName": model, "options": {"language": language}}}}
    url = ml_url.rstrip("/") + "/predict"
    try:
        # multipart/form-data like Immich's FormData: file-less parts carry the two fields
        form = {"entries": (None, json.dumps(entries)), "text": (None, text)}
        response = httpx.post(url, files=form, timeout=60.0)
    except httpx.HTTPError as error:
        raise DbExtensionError(f"cannot reach the ML service at {ml_url}: {error}") from error
    if response.status_code != 200:
        raise DbExtensionError(
            f"the ML service at {ml_url} answered {response.status_code}: {response.text[:300]}"
        )
    try:
        clip = response.json()["clip"]
        vector = json.loads(clip) if isinstance(clip, str) else clip
        return [float(value) for value in vector]
    except (ValueError, KeyError, TypeError) as error:
        raise DbExtensionError(
            f"the ML service at {ml_url} sent no CLIP embedding: {response.text[:300]}"
        ) from error


def vector_literal(values: list[float]) -> str:
    """pgvector's text form of an embedding."""
    return "[" + ",".join(repr(float(value)) for value in values) + "]"


def user_ids_to_search(conn: Any, user_id: str, *, with_partners: bool) -> list[str]:
    """The user plus, like Immich's smart search, partners who share into the user's timeline."""
    ids = [user_id]
    has_partner_table = conn.execute("SELECT to_regclass('partner') IS NOT NULL").fetchone()[0]
    if with_partners and has_partner_table:
        rows = conn.execute(
            'SELECT "sharedById"::text FROM partner WHERE "sharedWithId" = %s::uuid AND "inTimeline" '
            'ORDER BY "sharedById"',
            (user_id,),
        ).fetchall()
        ids.extend(row[0] for row in rows if row[0] not in ids)
    return ids


def search(
    dsn: str,
    *,
    query: str,
    user_id: str,
    limit: int = 20,
    offset: int = 0,
    ml_url: str | None = None,
    model: str = UPSTREAM_ALIAS_MODEL,
    mode: SearchMode = "rrf",
    k: int = 60,
    with_partners: bool = True,
    embedding: list[float] | None = None,
) -> list[SearchHit]:
    """Run an OCR-only (`ocr:` prefix) or hybrid search for one user and return ranked hits.

    A hybrid query needs its text embedding: given directly, or fetched from the ML service at `ml_url`.
    """
    parsed = parse_query(query)
    _check_uuid(user_id)
    if not parsed.ocr_only and embedding is None:
        if not ml_url:
            raise DbExtensionError(
                "a hybrid search needs --ml-url (or use the ocr: prefix for OCR-only search)"
            )
        embedding = embed_text(ml_url, parsed.text, model=model)
    with connect(dsn) as conn:
        try:
            require_installed(conn, dsn)
            user_ids = user_ids_to_search(conn, user_id, with_partners=with_partners)
            if parsed.ocr_only:
                rows = conn.execute(
                    'SELECT "assetId"::text, score FROM immich_aio.search_ocr(%s, %s::uuid[], %s, %s)',
                    (parsed.text, user_ids, limit, offset),
                ).fetchall()
                return [
                    SearchHit(
                        assetId=row[0], score=float(row[1]), ocrRank=offset + i + 1, ocrScore=float(row[1])
                    )
                    for i, row in enumerate(rows)
                ]
            assert embedding is not None
            rows = conn.execute(
                'SELECT "assetId"::text, score, "clipRank", "ocrRank", "clipDistance", "ocrScore" '
                "FROM immich_aio.search_hybrid(%s, %s::vector, %s::uuid[], %s, %s, %s, %s)",
                (parsed.text, vector_literal(embedding), user_ids, limit, offset, mode, k),
            ).fetchall()
        except psycopg.Error as error:
            raise explain(error, dsn) from error
    return [
        SearchHit(
            assetId=row[0],
            score=float(row[1]),
            clipRank=row[2],
            ocrRank=row[3],
            clipDistance=None if row[4] is None else float(row[4]),
            ocrScore=None if row[5] is None else float(row[5]),
        )
        for row in rows
    ]


def _check_uuid(value: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError as error:
        raise DbExtensionError(f"--user must be a user id (UUID), not {value!r}") from error
