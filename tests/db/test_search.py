"""Visibility rules, hybrid fusion, index use and stable pagination."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from tests.db.conftest import Library


def _unit(rng: random.Random, near: list[float] | None = None, noise: float = 1.0) -> list[float]:
    raw = [rng.gauss(0, 1) * noise + (near[i] if near else 0.0) for i in range(512)]
    norm = math.sqrt(sum(v * v for v in raw))
    return [v / norm for v in raw]


def _literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{v:.6f}" for v in vector) + "]"


def _hybrid(
    library: Library, text: str, vector: list[float], users: list[str], **options: Any
) -> list[tuple[Any, ...]]:
    names = ", ".join(f"{key} => %({key})s" for key in options)
    rows = library.conn.execute(
        'SELECT "assetId"::text, score, "clipRank", "ocrRank", "clipDistance", "ocrScore" '
        "FROM immich_aio.search_hybrid(%(q)s, %(v)s::vector, %(u)s::uuid[]"
        + (", " + names if names else "")
        + ")",
        {"q": text, "v": _literal(vector), "u": users, **options},
    ).fetchall()
    return [tuple(row) for row in rows]


def test_visibility_and_ownership(library: Library) -> None:
    rng = random.Random(1)
    me, partner, stranger = library.user(), library.user(), library.user()
    query_vector = _unit(rng)
    visible = {
        "mine": library.asset(me),
        "archived": library.asset(me, visibility="archive"),
        "partner": library.asset(partner),
    }
    invisible = {
        "trashed": library.asset(me, deleted=True),
        "locked": library.asset(me, visibility="locked"),
        "hidden": library.asset(me, visibility="hidden"),
        "stranger": library.asset(stranger),
    }
    for asset in [*visible.values(), *invisible.values()]:
        library.write_ocr(asset, ["停车票"])
        library.embed(asset, _unit(rng, near=query_vector, noise=0.01))

    users = [me, partner]
    assert sorted(library.ocr_search("停车票", users)) == sorted(visible.values())
    hybrid = {row[0] for row in _hybrid(library, "停车票", query_vector, users)}
    assert hybrid == set(visible.values())
    clip_only = {row[0] for row in _hybrid(library, "", query_vector, users)}
    assert clip_only == set(visible.values())
    assert library.ocr_search("停车票", [me]) == sorted([visible["mine"], visible["archived"]])


def test_visibility_changes_after_indexing_are_followed(library: Library) -> None:
    """Trash, lock, hide and transfer an asset after its text was indexed: searches follow each change."""
    rng = random.Random(2)
    me, other = library.user(), library.user()
    query_vector = _unit(rng)
    photo = library.asset(me)
    library.write_ocr(photo, ["收据"])
    library.embed(photo, _unit(rng, near=query_vector, noise=0.01))

    def found() -> tuple[bool, bool]:
        in_ocr = photo in library.ocr_search("收据", [me])
        in_hybrid = any(
            row[0] == photo and row[3] is not None for row in _hybrid(library, "收据", query_vector, [me])
        )
        return in_ocr, in_hybrid

    assert found() == (True, True)
    changes = [
        ('"deletedAt" = now()', (False, False)),
        ('"deletedAt" = NULL', (True, True)),
        ("visibility = 'locked'", (False, False)),
        ("visibility = 'archive'", (True, True)),
        ("visibility = 'hidden'", (False, False)),
        ("visibility = 'timeline'", (True, True)),
        ('"ownerId" = %(other)s', (False, False)),
        ('"ownerId" = %(me)s', (True, True)),
    ]
    for assignment, expected in changes:
        library.conn.execute(
            f"UPDATE asset SET {assignment} WHERE id = %(id)s", {"id": photo, "me": me, "other": other}
        )
        assert found() == expected, assignment


def test_common_word_candidates_are_bounded_and_titles_come_first(library: Library) -> None:
    """More matching documents than the OCR candidate pool: the ones where the word is a title still win."""
    owner = library.user()
    mentions = []
    for index in range(40):  # the word in small print under a large unrelated heading, written first
        mentions.append(library.asset(owner))
        library.write_ocr(mentions[-1], [(f"第{index}号通知", 0.2), ("请走安全出口", 0.03)])
    titles = []
    for _ in range(3):  # the word as the headline, written last
        titles.append(library.asset(owner))
        library.write_ocr(titles[-1], [("安全出口", 0.2), ("紧急情况请勿使用电梯", 0.05)])
    # depth 5 -> at most 10 documents ranked per branch, far fewer than the 43 that match
    rows = _hybrid(library, "安全出口", _unit(random.Random(3)), [owner], result_limit=5, candidates=5)
    by_ocr_rank = sorted((row[3], row[0]) for row in rows if row[3] is not None)
    assert [asset for _rank, asset in by_ocr_rank[:3]] == sorted(titles)
    # with room for every match the ranking is the exact one: the same titles first, then the mentions
    exact = library.ocr_search("安全出口", [owner])
    assert sorted(exact[:3]) == sorted(titles) and len(exact) == 43


@pytest.fixture
def mixed_library(library: Library) -> tuple[Library, str, list[float], dict[str, str]]:
    rng = random.Random(7)
    owner = library.user()
    query_vector = _unit(rng)
    ids: dict[str, str] = {}
    # Assets resembling the query image-wise (CLIP) and/or containing the words (OCR).
    for index in range(40):
        ids[f"noise{index}"] = library.asset(owner)
        library.embed(ids[f"noise{index}"], _unit(rng))
        library.write_ocr(ids[f"noise{index}"], [f"无关文字{index}"])
    ids["both"] = library.asset(owner)
    library.embed(ids["both"], _unit(rng, near=query_vector, noise=0.02))
    library.write_ocr(ids["both"], [("奶茶店", 0.2)])
    ids["clip_only"] = library.asset(owner)
    library.embed(ids["clip_only"], _unit(rng, near=query_vector, noise=0.01))
    ids["ocr_only"] = library.asset(owner)
    library.embed(ids["ocr_only"], _unit(rng))
    library.write_ocr(ids["ocr_only"], [("奶茶", 0.2), ("半糖", 0.05)])
    return library, owner, query_vector, ids


def test_rrf_puts_assets_found_both_ways_first(
    mixed_library: tuple[Library, str, list[float], dict[str, str]],
) -> None:
    library, owner, query_vector, ids = mixed_library
    rows = _hybrid(library, "奶茶", query_vector, [owner], result_limit=5)
    names = {asset: key for key, asset in ids.items()}
    ranked = [names[row[0]] for row in rows]
    assert ranked[0] == "both"
    assert set(ranked[1:3]) == {"clip_only", "ocr_only"}
    both = rows[0]
    assert both[2] is not None and both[3] is not None
    assert both[1] == pytest.approx(1 / (60 + both[2]) + 1 / (60 + both[3]))
    # rrf reports CLIP distances of CLIP candidates only.
    assert [row[4] is None for row in rows] == [row[2] is None for row in rows]
    # k and weights change the fusion as documented.
    rows_k1 = _hybrid(library, "奶茶", query_vector, [owner], result_limit=3, k=1)
    assert rows_k1[0][1] == pytest.approx(1 / (1 + rows_k1[0][2]) + 1 / (1 + rows_k1[0][3]))
    ocr_heavy = _hybrid(library, "奶茶", query_vector, [owner], result_limit=3, clip_weight=0.0)
    assert {names[row[0]] for row in ocr_heavy[:2]} == {"both", "ocr_only"}


def test_weighted_mode(mixed_library: tuple[Library, str, list[float], dict[str, str]]) -> None:
    library, owner, query_vector, ids = mixed_library
    rows = _hybrid(library, "奶茶", query_vector, [owner], result_limit=50, mode="weighted")
    assert all(row[4] is not None for row in rows)  # the real distance, also for OCR-only candidates
    for row in rows:
        expected = (1 - row[4]) + (row[5] or 0.0)
        assert row[1] == pytest.approx(expected, rel=1e-6)
    assert rows[0][0] == ids["both"]
    assert [row[1] for row in rows] == sorted((row[1] for row in rows), reverse=True)
    with pytest.raises(Exception, match="mode must be rrf or weighted"):
        _hybrid(library, "奶茶", query_vector, [owner], mode="bogus")


def test_hybrid_pagination_is_stable(mixed_library: tuple[Library, str, list[float], dict[str, str]]) -> None:
    library, owner, query_vector, _ids = mixed_library
    everything = [row[0] for row in _hybrid(library, "文字", query_vector, [owner], result_limit=100)]
    assert len(everything) == len(set(everything)) == 43
    paged = []
    for offset in range(0, 45, 7):
        paged += [
            row[0]
            for row in _hybrid(library, "文字", query_vector, [owner], result_limit=7, result_offset=offset)
        ]
    assert paged == everything


def test_candidate_sets_use_the_indexes(
    mixed_library: tuple[Library, str, list[float], dict[str, str]],
) -> None:
    library, _owner, query_vector, _ids = mixed_library
    conn = library.conn
    conn.execute("SET enable_seqscan = off")  # a tiny table would otherwise be scanned; is an index *usable*?
    ocr_plan = "\n".join(
        row[0]
        for row in conn.execute(
            'EXPLAIN SELECT d."assetId" FROM immich_aio.asset_ocr_document d '
            "WHERE d.document @@ immich_aio.ocr_query('奶茶')"
        )
    )
    assert "asset_ocr_document_gin" in ocr_plan
    assert "'奶茶'" in ocr_plan  # the query was folded to a constant at plan time
    clip_plan = "\n".join(
        row[0]
        for row in conn.execute(
            'EXPLAIN SELECT s."assetId" FROM smart_search s ORDER BY s.embedding <=> %s::vector LIMIT 200',
            (_literal(query_vector),),
        )
    )
    assert "clip_index" in clip_plan
