"""Segmentation and relevance ranking on a small hand-made Chinese corpus."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from e2e.postgres import EmbeddedPostgres
from tests.db.conftest import Library, new_database

# (key, lines as (text, box height)); the first line of a poster/menu is title-sized.
CORPUS: dict[str, list[tuple[str, float]]] = {
    "tea_menu": [("茶", 0.2), ("绿茶 15元", 0.05), ("红茶 18元", 0.05)],
    "tea_title": [("奶茶店", 0.2), ("营业时间 9:00-21:00", 0.04)],
    "tea_mention": [("欢迎光临本店", 0.08), ("本店提供咖啡、果汁，也有奶茶和点心，欢迎品尝", 0.03)],
    "shanghai_south": [("上海南站", 0.1), ("出口 Exit", 0.05)],
    "shanghai_west": [("上海西站", 0.1), ("南广场", 0.05)],
    "egg_pancake": [("鸡蛋饼 6元", 0.06)],
    "egg_noodles": [("鸡蛋面 12元", 0.06)],
    "scattered": [("鸡肉饭", 0.05), ("蛋糕", 0.05), ("煎饼果子", 0.05)],
    "wifi": [("WIFI5G密码:88886666", 0.05)],
    "price": [("合计 ¥35.00", 0.05)],
    "number_35": [("35号", 0.1), ("候车室", 0.05)],
    "invoice_title": [("增值税电子普通发票", 0.12), ("开票日期 2024年03月15日", 0.04)],
    "invoice_mention": [
        ("会议纪要", 0.12),
        ("请各部门于月底前提交报销单据，附上发票原件与审批表，逾期不予受理，谢谢配合", 0.03),
    ],
    "wordy": [("天天向上", 0.08)],
    "proverb": [("一帆风顺 万事如意", 0.08)],
    "latin": [("Café de Flore — PARIS", 0.08)],
    "fullwidth": [("ＡＢＣ超市 营业中", 0.08)],
    "japanese": [("ラーメン 東京", 0.08)],
    "korean": [("서울역 出口", 0.08)],
}


@pytest.fixture(scope="module")
def corpus(pg_cluster: EmbeddedPostgres) -> Iterator[tuple[Library, str, dict[str, str]]]:
    with new_database(pg_cluster, installed=True) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        library = Library(conn)
        owner = library.user()
        ids = {}
        for key, lines in CORPUS.items():
            ids[key] = library.asset(owner)
            library.write_ocr(ids[key], lines)
        yield library, owner, ids


def _search(corpus: tuple[Library, str, dict[str, str]], query: str) -> list[str]:
    library, owner, ids = corpus
    names = {asset: key for key, asset in ids.items()}
    return [names[asset] for asset in library.ocr_search(query, [owner])]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("茶", {"tea_menu", "tea_title", "tea_mention"}),  # 1 character inside longer words
        ("蛋", {"egg_pancake", "egg_noodles", "scattered"}),
        ("发票", {"invoice_title", "invoice_mention"}),  # 2 characters
        ("上海南", {"shanghai_south"}),  # 3 characters: not 上海西站 (shares only 上海)
        ("鸡蛋饼", {"egg_pancake"}),  # not 鸡蛋面, not scattered 鸡…蛋…饼
        ("天天向上", {"wordy"}),  # 4 characters
        ("一帆风顺", {"proverb"}),
        ("WIFI", {"wifi"}),  # Latin glued to digits and Chinese by OCR
        ("wifi5g", {"wifi"}),
        ("5G密码", {"wifi"}),
        ("88886666", {"wifi"}),
        ("¥35", {"price"}),  # currency keeps its meaning
        ("35", {"price", "number_35"}),
        ("35号", {"number_35"}),
        ("cafe", {"latin"}),  # accent folded
        ("PARIS", {"latin"}),
        ("abc超市", {"fullwidth"}),  # full-width folded
        ("ＡＢＣ", {"fullwidth"}),
        ("ラーメン", {"japanese"}),
        ("東京", {"japanese"}),
        ("서울역", {"korean"}),
        ("出口", {"shanghai_south", "korean"}),
        ("上海 南广场", {"shanghai_west"}),  # separate words: both required, anywhere
        ("上海西站 南广场", {"shanghai_west"}),
        ("2024年03月", {"invoice_title"}),
    ],
)
def test_fallback_segmentation_matches(
    corpus: tuple[Library, str, dict[str, str]], query: str, expected: set[str]
) -> None:
    assert set(_search(corpus, query)) == expected


def test_title_line_outranks_passing_mention(corpus: tuple[Library, str, dict[str, str]]) -> None:
    assert _search(corpus, "发票") == ["invoice_title", "invoice_mention"]
    assert _search(corpus, "茶")[0] == "tea_menu"
    assert _search(corpus, "奶茶") == ["tea_title", "tea_mention"]


def test_exact_word_beats_scattered_characters(corpus: tuple[Library, str, dict[str, str]]) -> None:
    # The scattered characters 鸡…蛋…饼 never match the word; the contiguous word is first.
    assert _search(corpus, "鸡蛋饼") == ["egg_pancake"]
    ranked = _search(corpus, "鸡 蛋 饼")  # explicit separate characters: all three assets with them
    assert ranked == ["scattered"] or ranked[0] == "egg_pancake"


def test_ties_are_broken_by_asset_id(library: Library) -> None:
    owner = library.user()
    assets = sorted(library.asset(owner) for _ in range(6))
    for asset in assets:
        library.write_ocr(asset, ["停车缴费"])
    assert library.ocr_search("停车", [owner]) == assets
    pages = [library.ocr_search("停车", [owner], limit=2, offset=offset) for offset in (0, 2, 4)]
    assert [asset for page in pages for asset in page] == assets


@pytest.mark.parametrize(
    "query", ["", "   ", "\t\n", "&|!():*<->", "''", "\\", "。，！", "<-> <->", "!!!", "*:", "（）【】", "…"]
)
def test_blank_or_operator_only_queries_match_nothing(library: Library, query: str) -> None:
    owner = library.user()
    library.write_ocr(library.asset(owner), ["发票 & | ! ( ) : * <-> 123"])
    assert library.ocr_search(query, [owner]) == []
    numnode = library.conn.execute("SELECT numnode(immich_aio.ocr_query(%s))", (query,)).fetchone()[0]
    assert numnode == 0
