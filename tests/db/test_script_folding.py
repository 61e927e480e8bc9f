"""Traditional and Simplified text find each other; words OCR glued together are found; prices stay exact."""

from __future__ import annotations

from importlib import metadata

import pytest

from db_extension import fold_map
from db_extension.backfill import reconcile
from db_extension.installer import install, status
from tests.db.conftest import Library


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("增值稅電子普通發票", "发票"),
        ("臺北車站", "台北"),
        ("台北车站", "臺北"),
        ("店裏有位", "里有"),
        ("店裡有位", "里有"),
        ("數據綫 USB", "数据线"),
        ("數據線 USB", "數據綫"),
    ],
)
def test_either_script_finds_the_other(library: Library, text: str, query: str) -> None:
    owner = library.user()
    asset = library.asset(owner)
    library.write_ocr(asset, [text])
    assert library.ocr_search(query, [owner]) == [asset]


def test_words_written_together_are_found(library: Library) -> None:
    owner = library.user()
    camel, lower, spaced = library.asset(owner), library.asset(owner), library.asset(owner)
    library.write_ocr(camel, ["全聚德PekingDuck"])
    library.write_ocr(lower, ["pekingduck 外卖"])
    library.write_ocr(spaced, ["Peking Duck House"])
    assert set(library.ocr_search("Peking Duck", [owner])) == {camel, lower, spaced}
    assert set(library.ocr_search("Duck", [owner])) == {camel, spaced}  # a case change marks the word
    # written glued in the query, the words are found written apart too (where the case marks them)
    assert set(library.ocr_search("PekingDuck", [owner])) == {camel, lower, spaced}
    assert set(library.ocr_search("pekingduck", [owner])) == {camel, lower}
    assert library.ocr_search("Peking 外卖", [owner]) == []  # the glue joins Latin words only


def test_prices_and_numbers_stay_exact(library: Library) -> None:
    owner = library.user()
    price, number = library.asset(owner), library.asset(owner)
    library.write_ocr(price, ["拿铁 ¥35"])
    library.write_ocr(number, ["35号 出口"])
    assert library.ocr_search("¥35", [owner]) == [price]
    assert set(library.ocr_search("35", [owner])) == {price, number}


def test_documents_of_the_earlier_format_are_rebuilt(dsn: str, library: Library) -> None:
    owner = library.user()
    asset = library.asset(owner)
    library.write_ocr(asset, ["臺北車站"])
    # what an install of the earlier format left: unfolded grams, and no format marker
    library.conn.execute(
        "UPDATE immich_aio.asset_ocr_document SET document = '''臺北'':1 ''北車'':2 ''車站'':3'::tsvector"
    )
    library.conn.execute("DELETE FROM immich_aio.meta WHERE key = 'document_format'")
    assert library.ocr_search("台北", [owner]) == []
    assert install(dsn).reconcile_queued == 1
    reconcile(dsn)
    assert library.ocr_search("台北", [owner]) == [asset]
    assert status(dsn).reconcile_queued == 0


def test_the_map_in_install_sql_is_what_opencc_gives() -> None:
    current = fold_map.INSTALL_SQL.read_text(encoding="utf-8")
    generated = fold_map.section(fold_map.character_map(), metadata.version("opencc"))
    assert fold_map.rewrite(current, generated) == current, "run: python -m db_extension.fold_map"
