"""Ranked OCR candidates for one caller, read from immich_aio's SQL in Immich's database.

Scoring lives in db_extension's SQL alone (`ocr_query`, `ocr_rank`, `hybrid_score`): this module only
scopes and orders. The scope is a superset of what Immich would return (the caller and the partners who
share into their timeline, searchable assets, the request's filters where the schema has them); Immich
itself, reading every result back, is the judge of what the caller sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql

from gateway.requests import Order

Composable = sql.Composable

#: Asset columns a flat filter compares for equality (filter name -> column).
_ASSET_EQUAL = {
    "type": "type",
    "isFavorite": "isFavorite",
    "isOffline": "isOffline",
    "libraryId": "libraryId",
}
#: Date filters: filter name -> (column, operator).
_ASSET_DATES = {
    "takenBefore": ("fileCreatedAt", "<="),
    "takenAfter": ("fileCreatedAt", ">="),
    "createdBefore": ("createdAt", "<="),
    "createdAfter": ("createdAt", ">="),
    "updatedBefore": ("updatedAt", "<="),
    "updatedAfter": ("updatedAt", ">="),
}
_EXIF_EQUAL = ("city", "state", "country", "make", "model", "lensModel", "rating")
#: orderBy field -> the column it orders by (v3.2's SearchOrderField).
_ORDER_COLUMNS = {
    "fileCreatedAt": sql.SQL('a."fileCreatedAt"'),
    "localDateTime": sql.SQL('a."localDateTime"'),
    "fileSizeInBytes": sql.SQL('(SELECT e."fileSizeInByte" FROM asset_exif e WHERE e."assetId" = a.id)'),
    "rating": sql.SQL('(SELECT e.rating FROM asset_exif e WHERE e."assetId" = a.id)'),
}


@dataclass(frozen=True)
class Schema:
    """Names in Immich's tables that moved between releases (album_asset's columns were plural in v2.2)."""

    album_asset_album: str = "albumId"
    album_asset_asset: str = "assetId"


def read_schema(conn: Any) -> Schema:
    """The column names of this database's album_asset table."""
    columns = {
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'album_asset'"
        ).fetchall()
    }
    if "albumsId" in columns:
        return Schema(album_asset_album="albumsId", album_asset_asset="assetsId")
    return Schema()


@dataclass(frozen=True)
class Candidate:
    """One asset the OCR ranking found, with its relevance and when its file was made (Immich's "taken")."""

    asset_id: str
    score: float
    taken: datetime | None = None


def scope_conditions(filters: dict[str, Any], user_ids: Sequence[str], schema: Schema) -> list[Composable]:
    """WHERE conditions on `d` (the OCR document) and `a` (the asset) for the caller's flat filters.

    Never narrower than Immich's own filters: a filter this module does not translate restricts nothing
    here, and Immich's read-back applies it.
    """
    album_ids = filters.get("albumIds")
    conditions: list[Composable] = [sql.SQL("d.searchable")]
    if isinstance(album_ids, list) and album_ids:
        # Immich searches albums on album access, not ownership (metadata search drops its user scope).
        conditions.append(
            sql.SQL(
                "(SELECT count(DISTINCT aa.{album}) FROM album_asset aa "
                "WHERE aa.{asset} = a.id AND aa.{album} = ANY({ids}::uuid[])) = {n}"
            ).format(
                album=sql.Identifier(schema.album_asset_album),
                asset=sql.Identifier(schema.album_asset_asset),
                ids=sql.Literal([str(i) for i in album_ids]),
                n=sql.Literal(len(set(album_ids))),
            )
        )
    else:
        conditions.append(sql.SQL('d."ownerId" = ANY({}::uuid[])').format(sql.Literal(list(user_ids))))
    visibility = filters.get("visibility")
    if isinstance(visibility, str):
        conditions.append(sql.SQL("a.visibility::text = {}").format(sql.Literal(visibility)))
    for name, column in _ASSET_EQUAL.items():
        value = filters.get(name)
        if isinstance(value, str | bool):
            text = str(value).lower() if isinstance(value, bool) else value
            conditions.append(sql.SQL("a.{}::text = {}").format(sql.Identifier(column), sql.Literal(text)))
    for name, (column, operator) in _ASSET_DATES.items():
        value = filters.get(name)
        if isinstance(value, str):
            conditions.append(
                sql.SQL("a.{} " + operator + " {}::timestamptz").format(
                    sql.Identifier(column), sql.Literal(value)
                )
            )
    for name in _EXIF_EQUAL:
        if name not in filters:
            continue
        value = filters[name]
        exif_column = sql.Identifier(name)
        test: Composable
        if value is None:
            test = sql.SQL("e.{} IS NULL").format(exif_column)
        elif isinstance(value, str | int) and not isinstance(value, bool):
            test = sql.SQL("e.{}::text = {}").format(exif_column, sql.Literal(str(value)))
        else:
            continue
        conditions.append(
            sql.SQL('EXISTS (SELECT 1 FROM asset_exif e WHERE e."assetId" = a.id AND {})').format(test)
        )
    if filters.get("isNotInAlbum") is True and not album_ids:
        conditions.append(
            sql.SQL("NOT EXISTS (SELECT 1 FROM album_asset aa WHERE aa.{} = a.id)").format(
                sql.Identifier(schema.album_asset_asset)
            )
        )
    return conditions


def _query_function(near: bool) -> Composable:
    return sql.SQL("immich_aio.ocr_query" if near else "immich_aio.exact_query")


def ocr_window(
    conn: Any,
    *,
    text: str,
    conditions: list[Composable],
    order: Order,
    offset: int,
    limit: int,
    near: bool = True,
) -> RankedWindow:
    """`limit` OCR matches from `offset` on, most relevant first (or in the caller's order), and how many
    matches there are in all."""
    ordering: Composable
    if order.relevance:
        ordering = sql.SQL('score DESC, d."assetId" ASC')
    else:
        direction = sql.SQL("ASC" if order.direction == "asc" else "DESC")
        ordering = sql.SQL('{} {} NULLS LAST, d."assetId" ASC').format(_ORDER_COLUMNS[order.field], direction)
    query = sql.SQL(
        'SELECT d."assetId"::text, immich_aio.ocr_rank(d.document, q.query) AS score, a."fileCreatedAt", '
        "count(*) OVER () "
        "FROM (SELECT {fn}(%(text)s) AS query) q "
        "JOIN immich_aio.asset_ocr_document d ON d.document @@ q.query "
        'JOIN asset a ON a.id = d."assetId" '
        "WHERE {conditions} ORDER BY {ordering} LIMIT %(limit)s OFFSET %(offset)s"
    ).format(fn=_query_function(near), conditions=sql.SQL(" AND ").join(conditions), ordering=ordering)
    rows = conn.execute(query, {"text": text, "limit": limit, "offset": offset}).fetchall()
    candidates = [Candidate(row[0], float(row[1]), row[2]) for row in rows]
    return RankedWindow(candidates, int(rows[0][3]) if rows else 0)


@dataclass(frozen=True)
class RankedWindow:
    """One window of the OCR ranking, and how many assets match in the whole scope (0 when the window is
    past the last match)."""

    candidates: list[Candidate]
    matches: int


@dataclass(frozen=True)
class FusedHit:
    """One place in a hybrid ranking; `from_clip` says whether Immich's CLIP answer holds the asset."""

    asset_id: str
    score: float
    from_clip: bool
    taken: datetime | None = None


def fused_window(
    conn: Any,
    *,
    text: str,
    clip_ids: Sequence[str],
    conditions: list[Composable],
    depth: int,
    offset: int,
    limit: int,
    k: int,
    clip_weight: float,
    ocr_weight: float,
    near: bool = True,
) -> list[FusedHit]:
    """Reciprocal-rank fusion of Immich's CLIP order (`clip_ids`) with the best `depth` OCR matches.

    The CLIP ranks are Immich's own order; `immich_aio.hybrid_score` fuses, as in the patched servers.
    """
    query = sql.SQL(
        "WITH clip AS (SELECT c.id, c.rank FROM unnest(%(clip)s::uuid[]) WITH ORDINALITY AS c(id, rank)), "
        "ocr_hits AS MATERIALIZED ("
        '  SELECT d."assetId" AS id, immich_aio.ocr_rank(d.document, q.query) AS score '
        "  FROM (SELECT {fn}(%(text)s) AS query) q "
        "  JOIN immich_aio.asset_ocr_document d ON d.document @@ q.query "
        '  JOIN asset a ON a.id = d."assetId" '
        '  WHERE {conditions} ORDER BY score DESC, d."assetId" ASC LIMIT %(depth)s), '
        "ocr AS (SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank FROM ocr_hits) "
        "SELECT coalesce(clip.id, ocr.id)::text AS id, "
        "  immich_aio.hybrid_score(clip.rank, ocr.rank, NULL, ocr.score, 'rrf', %(k)s, %(cw)s, %(ow)s) AS s, "
        "  clip.id IS NOT NULL, "
        '  (SELECT a."fileCreatedAt" FROM asset a WHERE a.id = coalesce(clip.id, ocr.id)) '
        "FROM clip FULL JOIN ocr ON ocr.id = clip.id "
        "ORDER BY s DESC, id ASC LIMIT %(limit)s OFFSET %(offset)s"
    ).format(fn=_query_function(near), conditions=sql.SQL(" AND ").join(conditions))
    rows = conn.execute(
        query,
        {
            "clip": list(clip_ids),
            "text": text,
            "depth": depth,
            "k": k,
            "cw": clip_weight,
            "ow": ocr_weight,
            "limit": limit,
            "offset": offset,
        },
    ).fetchall()
    return [FusedHit(row[0], float(row[1]), bool(row[2]), row[3]) for row in rows]
