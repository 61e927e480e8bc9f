"""Near matches: a character OCR misread, dropped or added is forgiven once, always after every exact one."""

from __future__ import annotations

import psycopg
import pytest

from tests.db.conftest import Library


@pytest.mark.parametrize(
    ("read_as", "query"),
    [
        ("窦性心率 正常", "窦性心律正常"),  # one inside misread
        ("如有凝问请联系", "如有疑问"),  # one inside misread
        ("请握扶手", "请紧握扶手"),  # one dropped
        ("请紧握住扶手", "请紧握扶手"),  # one added
        ("臺比車站", "台北车站"),  # folded to one script first, then one edit
    ],
)
def test_one_edit_is_forgiven(library: Library, read_as: str, query: str) -> None:
    owner = library.user()
    asset = library.asset(owner)
    library.write_ocr(asset, [read_as])
    assert library.ocr_search(query, [owner]) == [asset]


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("上海南站", "上海西"),  # the ends of a run are never edited: the rest would match unanchored
        ("实性心律", "窦性心律"),
        ("有疑", "如有疑问"),  # two edits
        ("发货", "发票"),  # one or two characters take no edit
        ("如有凝问 ¥36", "如有疑问 ¥35"),  # the price stays exact
        ("G1235 次列车", "G1234 次列车"),  # so does a code
        ("如凝问", "如有疑问"),  # an edit and a drop together
    ],
)
def test_more_than_one_edit_or_an_inexact_number_is_not_a_match(
    library: Library, text: str, query: str
) -> None:
    owner = library.user()
    library.write_ocr(library.asset(owner), [text])
    assert library.ocr_search(query, [owner]) == []


def test_every_exact_match_ranks_before_every_near_one(library: Library) -> None:
    owner = library.user()
    # a near match in a title-sized line would outrank a small exact one by weight alone
    near_title = library.asset(owner)
    library.write_ocr(near_title, [("如有凝问", 0.3)] * 3)
    exact_small = library.asset(owner)
    library.write_ocr(exact_small, [("如有疑问请联系前台，我们将尽快为您处理相关的发票和退款事宜", 0.02)])
    exact_title = library.asset(owner)
    library.write_ocr(exact_title, [("如有疑问", 0.3)])
    found = library.ocr_search("如有疑问", [owner])
    assert found[:2] in ([exact_title, exact_small], [exact_small, exact_title]) and found[2:] == [near_title]


def test_the_hybrid_search_takes_the_near_matches_as_ocr_candidates(dsn: str, library: Library) -> None:
    owner = library.user()
    near = library.asset(owner)
    library.write_ocr(near, ["请握扶手"])
    library.embed(near, [1.0] + [0.0] * 511)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            'SELECT "assetId", "ocrRank" FROM immich_aio.search_hybrid(%s, %s::vector, %s::uuid[])',
            ("请紧握扶手", str([0.0, 1.0] + [0.0] * 510), [owner]),
        ).fetchall()
    assert [(str(asset), rank) for asset, rank in rows] == [(near, 1)]
