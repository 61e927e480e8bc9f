"""Near matches: a character OCR misread, dropped or added is forgiven once, always after every exact one."""

from __future__ import annotations

import psycopg
import pytest

from db_extension.installer import install
from tests.db.conftest import Library
from testsupport.near_cases import CASES, NearCase


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


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_issue_cases(library: Library, case: NearCase) -> None:
    owner = library.user()
    asset = library.asset(owner)
    library.write_ocr(asset, [case.read_as])
    assert library.ocr_search(case.query, [owner]) == ([asset] if case.found else [])


# every case found through a near match (a glued query is an exact one: 'maple leaf' | 'mapleleaf')
NEAR_CASES = [case for case in CASES if case.found and case.name != "latin glued"]


@pytest.mark.parametrize("case", NEAR_CASES, ids=lambda case: case.name)
def test_near_false_searches_exactly(dsn: str, library: Library, case: NearCase) -> None:
    owner = library.user()
    library.write_ocr(library.asset(owner), [case.read_as])
    exact = library.asset(owner)
    library.write_ocr(exact, [case.says])
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            'SELECT "assetId"::text FROM immich_aio.search_ocr(%s, %s::uuid[], near => false)',
            (case.query, [owner]),
        ).fetchall()
    assert [row[0] for row in rows] == [exact]


@pytest.mark.parametrize(
    ("read_as", "query"),
    [
        ("Mapl", "Maple"),  # dropped
        ("aple", "Maple"),  # the first letter dropped
        ("Tota", "Total"),  # the document's word may be shorter than 5 letters
        ("Maplle", "Maple"),  # added
        ("Maplex", "Maple"),  # the last letter added
        ("Mable", "Maple"),  # misread
        ("Naple", "Maple"),  # the first letter misread
        ("COFFEE咖啡", "Cofee"),  # glued to CJK: still a word
        ("Ｍａｐｌ", "Maple"),  # full-width letters fold first
    ],
)
def test_one_letter_of_a_latin_word_is_forgiven(library: Library, read_as: str, query: str) -> None:
    owner = library.user()
    asset = library.asset(owner)
    library.write_ocr(asset, [read_as])
    assert library.ocr_search(query, [owner]) == [asset]


@pytest.mark.parametrize(
    ("read_as", "query"),
    [
        ("Mbplx", "Maple"),  # two letters
        ("Mpale", "Maple"),  # two letters swapped: two edits
        ("Maple", "Mapl"),  # a query word of 4 letters takes no edit
        ("Edit", "Exit"),
        ("Hotal5", "Hotel5"),  # a code
        ("Parking 36", "Parkng 35"),  # the number stays exact
        ("Мапле", "Мапла"),  # other scripts stay exact
    ],
)
def test_latin_words_that_are_not_near(library: Library, read_as: str, query: str) -> None:
    owner = library.user()
    library.write_ocr(library.asset(owner), [read_as])
    assert library.ocr_search(query, [owner]) == []


def test_pages_run_from_the_exact_matches_into_the_near_ones(library: Library) -> None:
    owner = library.user()
    exact = [library.asset(owner) for _ in range(3)]
    near = [library.asset(owner) for _ in range(3)]
    for asset in exact:
        library.write_ocr(asset, ["请紧握扶手"])
    for asset in near:
        library.write_ocr(asset, ["请握扶手"])
    whole = library.ocr_search("请紧握扶手", [owner])
    assert sorted(whole[:3]) == sorted(exact) and sorted(whole[3:]) == sorted(near)
    pages = [library.ocr_search("请紧握扶手", [owner], limit=2, offset=offset) for offset in (0, 2, 4, 6)]
    assert [asset for page in pages for asset in page] == whole
    # a page past every exact match (none of them on it) still starts at the right near match
    assert library.ocr_search("请紧握扶手", [owner], limit=1, offset=4) == whole[4:5]


def test_hybrid_takes_near_candidates_only_where_exact_ones_leave_room(dsn: str, library: Library) -> None:
    owner = library.user()
    exact = library.asset(owner)
    library.write_ocr(exact, ["请紧握扶手"])
    near = library.asset(owner)
    library.write_ocr(near, ["请握扶手"])
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            'SELECT "assetId"::text, "ocrRank" FROM immich_aio.search_hybrid(%s, %s::vector, %s::uuid[], '
            "1, candidates => 1)",
            ("请紧握扶手", str([1.0] + [0.0] * 511), [owner]),
        ).fetchall()
    assert rows == [(exact, 1)]


def test_documents_of_the_earlier_format_are_rebuilt(dsn: str, library: Library) -> None:
    owner = library.user()
    asset = library.asset(owner)
    library.write_ocr(asset, ["MapIe Leaf"])
    # as an install of the previous version left it: no edited words in the document
    library.conn.execute(
        "UPDATE immich_aio.asset_ocr_document SET document = ts_delete(document, "
        "ARRAY(SELECT lexeme FROM unnest(document) WHERE lexeme LIKE '⁑%'))"
    )
    library.conn.execute("UPDATE immich_aio.meta SET value = '2' WHERE key = 'document_format'")
    assert library.ocr_search("Maple Leaf", [owner]) == []
    install(dsn)
    library.conn.execute("SELECT immich_aio.reconcile_step(100)")
    assert library.ocr_search("Maple Leaf", [owner]) == [asset]
