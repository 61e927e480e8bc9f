"""OCR on the hard photo-like corpus: the corpus itself, and what PP-OCRv5 and v4 read of it over HTTP."""

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

from ml_service.config import Settings
from ml_service.models.ocr import PP_OCRV4_MOBILE, PP_OCRV5_MOBILE
from testsupport.ocr_corpus import (
    CLASSES,
    FONTS,
    TRADITIONAL,
    CorpusImage,
    corpus,
    covers,
    missing_fonts,
)
from testsupport.ocr_scoring import Scorecard, edit_distance, normalise, rebuilt_order

PER_CLASS = 2


@pytest.fixture(scope="module")
def images() -> list[CorpusImage]:
    missing = missing_fonts()
    if missing:
        pytest.fail(f"CJK fonts missing: install the Debian packages {' '.join(missing)} (install.sh does)")
    return corpus(per_class=PER_CLASS)


def test_corpus_is_seeded_and_covers_every_class_script_and_font(images: list[CorpusImage]) -> None:
    assert [image.jpeg for image in corpus(per_class=PER_CLASS)] == [image.jpeg for image in images]
    assert corpus(per_class=1, seed=7)[0].jpeg != corpus(per_class=1, seed=8)[0].jpeg
    assert {image.kind for image in images} == set(CLASSES)
    for kind in CLASSES:
        assert {image.script for image in images if image.kind == kind} == {"simplified", TRADITIONAL}
    faces = {image.font for image in images}
    for family in ("WenQuanYi Zen Hei", "Noto Sans CJK", "Noto Serif CJK", "UKai", "UMing"):
        assert any(family in face for face in faces), (family, faces)
    assert len(FONTS) == 5
    for image in images:
        assert image.lines and all(len(line.replace(" ", "")) >= 2 for line in image.lines)
        assert image.jpeg[:3] == b"\xff\xd8\xff"
    vertical = [image for image in images if image.kind == "vertical"]
    assert all(len(image.lines) == 1 and " " not in image.lines[0] for image in vertical)
    # The gold text is really drawable: the Kai face has no glyph for this rare character, Noto does.
    assert covers("NotoSansCJK-Regular.ttc", 2, "龘") and not covers("ukai.ttc", 0, "𪚥")


def test_scoring_helpers() -> None:
    assert normalise("合计 ￥35.00：") == "合计¥35.00:"
    assert normalise("臺灣", fold_script=True) == "台湾"
    assert edit_distance("北京市", "北京") == 1 and edit_distance("", "ab") == 2
    # Two boxes of one line given right first, then a line above them, then a vertical column.
    line = [0.5, 0.5, 0.7, 0.5, 0.7, 0.55, 0.5, 0.55]
    left = [0.1, 0.51, 0.3, 0.51, 0.3, 0.56, 0.1, 0.56]
    above = [0.1, 0.1, 0.4, 0.1, 0.4, 0.15, 0.1, 0.15]
    column = [0.9, 0.1, 0.95, 0.1, 0.95, 0.6, 0.9, 0.6]
    assert rebuilt_order(line + left + above + column) == [2, 1, 0, 3]
    card = Scorecard()
    card.add(("clean",), ["北京市", "海淀区"], ["海淀区", "北京"], left + above)
    figures = card.figures()["clean"]
    assert figures["char_accuracy"] == round(1 - 1 / 6, 4) and figures["lines_exact"] == 0.5
    assert figures["in_reading_order"] == 0.0


def read_corpus(
    client: httpx.Client, images: list[CorpusImage], model: str
) -> tuple[dict[str, dict[str, float]], list[list[str]]]:
    entries = json.dumps(
        {
            "ocr": {
                "detection": {"modelName": model, "options": {"minScore": 0.5, "maxResolution": 736}},
                "recognition": {"modelName": model, "options": {"minScore": 0.8}},
            }
        }
    )
    card, texts = Scorecard(), []
    for image in images:
        response = client.post("/predict", data={"entries": entries}, files={"image": ("x.jpg", image.jpeg)})
        assert response.status_code == 200, response.text
        ocr: dict[str, Any] = response.json()["ocr"]
        card.add((image.kind, image.script), image.lines, ocr["text"], ocr["box"])
        texts.append(ocr["text"])
    return card.figures(), texts


def test_pp_ocrv5_reads_the_hard_corpus_and_beats_v4_on_traditional(
    serve: Callable[[Settings], AbstractContextManager[str]],
    make_settings: Callable[..., Settings],
    images: list[CorpusImage],
) -> None:
    with serve(make_settings()) as url, httpx.Client(base_url=url, timeout=120) as client:
        v5, _ = read_corpus(client, images, PP_OCRV5_MOBILE)
        v4, _ = read_corpus(client, images, PP_OCRV4_MOBILE)
    assert v5["all"]["images"] == len(images)
    assert v5["all"]["char_accuracy"] >= 0.97 and v5["all"]["lines_exact"] >= 0.9
    for kind in CLASSES:
        assert v5[kind]["char_accuracy"] >= 0.9, (kind, v5[kind])
    # Every answer comes back in reading order, as the gold lines were drawn.
    assert v5["all"]["in_reading_order"] == 1.0
    # What PP-OCRv5 is served for: Traditional print, where PP-OCRv4 answers Simplified or misreads.
    assert v5[TRADITIONAL]["char_accuracy"] > v4[TRADITIONAL]["char_accuracy"]
    assert v5[TRADITIONAL]["lines_exact"] > v4[TRADITIONAL]["lines_exact"]
    assert v4["simplified"]["char_accuracy"] >= 0.95
