"""Any user text becomes a valid query: thousands of random queries, not one error."""

from __future__ import annotations

import random
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.db.conftest import Library

OPERATORS = ["&", "|", "!", "(", ")", ":", "*", "<->", "<1>", "<0>", "<-1>", "'", '"', "\\", ":*", "!!", "&&"]
ALPHABETS = [
    "发票上海南站鸡蛋饼茶咖啡",  # Han
    "ひらがなカタカナー",  # kana
    "서울역한국어",  # Hangul
    "abcXYZéÀßøÆ",  # Latin with accents
    "0123456789.,",  # digits
    "¥$€£￥＄％",  # currency, full-width
    "ＡＢＣ１２３　",  # full-width letters, ideographic space
    "，。！？、；：「」『』（）【】…—",  # CJK punctuation
    " \t\n\r\x0b\x0c\u00a0\u2003\u200b\ufeff",  # spaces, zero-width, BOM
    "😀🍵🀄︎\u0301\u0300\u20dd",  # emoji, variation selector, combining marks
    "𠀀𪜀𫝀𰀀",  # CJK extensions B..G (astral)
    "ⅫⅠ㈱㎏ﬁ",  # compatibility characters that NFKC expands
    "אבגدهو",  # RTL scripts
]


def _random_query(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 12)):
        if rng.random() < 0.3:
            parts.append(rng.choice(OPERATORS))
        elif rng.random() < 0.1:
            parts.append(chr(rng.choice([rng.randint(1, 0xD7FF), rng.randint(0xE000, sys.maxunicode)])))
        else:
            alphabet = rng.choice(ALPHABETS)
            parts.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))))
    return rng.choice(["", " ", "ocr:"]).join(parts)


def test_thousands_of_random_queries_never_raise(library: Library) -> None:
    owner = library.user()
    for lines in (["发票 上海南站 ¥35.00 WIFI5G"], ["ラーメン 서울역 Café"], ["😀 𠀀𪜀 ⅫⅠ"]):
        library.write_ocr(library.asset(owner), lines)
    rng = random.Random(20240601)
    queries = [_random_query(rng) for _ in range(5000)]
    queries += ["x" * 5000, "发" * 3000, "<->" * 500, "(" * 1000 + "a", "'" * 999, "1" * 20000]
    # Every query is parsed, run against the GIN index and ranked, in one round trip.
    row = library.conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE numnode(q.tsq) = 0), sum(hits) FROM ("
        "  SELECT immich_aio.ocr_query(t) AS tsq, ("
        "    SELECT count(*) FROM immich_aio.asset_ocr_document d"
        "    WHERE d.document @@ immich_aio.ocr_query(t)"
        "      AND immich_aio.ocr_rank(d.document, immich_aio.ocr_query(t)) >= 0"
        "  ) AS hits FROM unnest(%s::text[]) AS t) AS q",
        (queries,),
    ).fetchone()
    assert row[0] == len(queries)
    assert 0 < row[1] < len(queries)  # some queries are empty, most are not
    assert row[2] > 0  # and some of them find the documents


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
)
def test_hypothesis_queries_run_through_search_ocr(library: Library, text: str) -> None:
    owner = library.conn.execute('SELECT id::text FROM "user" LIMIT 1').fetchone()
    user_ids = [owner[0]] if owner else [library.user()]
    hits = library.ocr_search(text, user_ids)
    assert isinstance(hits, list)
