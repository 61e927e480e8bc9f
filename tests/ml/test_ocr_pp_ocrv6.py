"""PP-OCRv6 for Immich v3.3: its tier names answered from the wheels, the nearest tier for the others."""

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from PIL import Image

from ml_service.config import Settings
from ml_service.models.ocr import (
    DEFAULT_OCR_MODEL,
    PP_OCRV4_MOBILE,
    PP_OCRV5_MOBILE,
    PP_OCRV5_SERVER,
    PP_OCRV6_MEDIUM,
    PP_OCRV6_SMALL,
    PP_OCRV6_TIERS,
    PP_OCRV6_TINY,
    nearest_pp_ocrv6,
    shipped_models,
)
from ml_service.service import MlService
from tests.ml.conftest import encode

REPOSITORY = Path(__file__).resolve().parents[2]
SIMPLIFIED = "增值税电子普通发票"
TRADITIONAL = "臺北市信義區市府路"


def v33_entries(model: str) -> str:
    """The OCR entries an Immich v3.3 server sends for one model: detection and recognition, no other key."""
    return json.dumps(
        {
            "ocr": {
                "detection": {"modelName": model, "options": {"minScore": 0.5, "maxResolution": 736}},
                "recognition": {"modelName": model, "options": {"minScore": 0.8}},
            }
        }
    )


@pytest.fixture(scope="module")
def two_lines(render: Callable[..., Image.Image]) -> bytes:
    return encode(render([(SIMPLIFIED, (40, 40)), (TRADITIONAL, (40, 160))], size=(640, 260)))


async def predict(client: httpx.AsyncClient, model: str, image: bytes) -> httpx.Response:
    return await client.post("/predict", data={"entries": v33_entries(model)}, files={"image": ("i", image)})


def test_nearest_tier() -> None:
    both = {PP_OCRV6_TINY, PP_OCRV6_SMALL}
    assert nearest_pp_ocrv6(PP_OCRV6_MEDIUM, both) == PP_OCRV6_SMALL
    assert nearest_pp_ocrv6(PP_OCRV6_MEDIUM, {PP_OCRV6_TINY}) == PP_OCRV6_TINY
    assert nearest_pp_ocrv6(PP_OCRV6_TINY, {PP_OCRV6_SMALL, PP_OCRV6_MEDIUM}) == PP_OCRV6_SMALL
    # a tie goes to the larger tier; unknown tiers and the bare family name count as small
    assert nearest_pp_ocrv6(PP_OCRV6_SMALL, {PP_OCRV6_TINY, PP_OCRV6_MEDIUM}) == PP_OCRV6_MEDIUM
    assert nearest_pp_ocrv6("PP-OCRv6", both) == PP_OCRV6_SMALL
    assert nearest_pp_ocrv6("JA__PP-OCRv6_medium", both) == PP_OCRV6_SMALL
    assert nearest_pp_ocrv6(PP_OCRV6_MEDIUM, {PP_OCRV5_MOBILE}) is None
    assert nearest_pp_ocrv6(PP_OCRV5_MOBILE, both) is None
    assert nearest_pp_ocrv6("PP-OCRv60_small", both) is None


def test_resolution_order(make_settings: Callable[..., Settings]) -> None:
    plain = make_settings()
    assert plain.resolve_ocr_name(PP_OCRV6_SMALL) == PP_OCRV6_SMALL
    assert plain.resolve_ocr_name("CH__PP-OCRv6_tiny") == PP_OCRV6_TINY
    assert plain.resolve_ocr_name(PP_OCRV6_MEDIUM) == PP_OCRV6_SMALL
    assert plain.ocr_substitutes() == {PP_OCRV6_MEDIUM: PP_OCRV6_SMALL}
    # an explicit alias wins over the nearest tier
    aliased = make_settings(ocr_aliases=f"{PP_OCRV6_MEDIUM}={PP_OCRV5_MOBILE}")
    assert aliased.resolve_ocr_name(PP_OCRV6_MEDIUM) == PP_OCRV5_MOBILE
    assert aliased.ocr_substitutes() == {}
    # files given by hand under a tier's name serve that tier themselves
    small = shipped_models()[PP_OCRV6_SMALL]
    by_hand = make_settings(
        ocr_det_model=small.detection,
        ocr_rec_model=small.recognition,
        ocr_rec_keys=small.dictionary,
        ocr_custom_model=PP_OCRV6_MEDIUM,
    )
    assert by_hand.resolve_ocr_name(PP_OCRV6_MEDIUM) == PP_OCRV6_MEDIUM
    assert by_hand.ocr_substitutes() == {}
    strict = make_settings(ocr_pp_ocrv6_nearest=False)
    assert strict.resolve_ocr_name(PP_OCRV6_MEDIUM) is None and strict.ocr_substitutes() == {}


def test_each_v33_tier_name_is_answered_with_the_text(
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    make_settings: Callable[..., Settings],
    two_lines: bytes,
) -> None:
    async def run() -> None:
        async with asgi_client(make_settings()) as client:
            for model in PP_OCRV6_TIERS:
                response = await predict(client, model, two_lines)
                assert response.status_code == 200, (model, response.text)
                answer: dict[str, Any] = response.json()
                assert (answer["imageWidth"], answer["imageHeight"]) == (640, 260)
                ocr = answer["ocr"]
                assert ocr["text"][0] == SIMPLIFIED, (model, ocr["text"])
                assert len(ocr["box"]) == 8 * len(ocr["text"]) == 8 * len(ocr["boxScore"])
                if model != PP_OCRV6_TINY:  # small (and medium, answered by small) read the Traditional line
                    assert ocr["text"] == [SIMPLIFIED, TRADITIONAL], (model, ocr["text"])
            info = (await client.get("/")).json()
            # medium was answered by small: two models in memory, not three
            assert sorted(m["model"] for m in info["models_loaded"]) == [PP_OCRV6_SMALL, PP_OCRV6_TINY]
            assert info["ocr_substitutes"] == {PP_OCRV6_MEDIUM: PP_OCRV6_SMALL}
            listed = {m["model"]: m for m in info["ocr_models"]}
            assert set(listed) == set(shipped_models())
            assert listed[PP_OCRV6_SMALL]["loaded"] and not listed[PP_OCRV5_MOBILE]["loaded"]
            assert listed[PP_OCRV6_TINY]["dictionary"] == "ppocrv6_tiny_dict.txt"

    anyio.run(run)


def test_medium_is_a_422_when_the_nearest_tier_is_turned_off(
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    make_settings: Callable[..., Settings],
    two_lines: bytes,
) -> None:
    async def run() -> None:
        async with asgi_client(make_settings(ocr_pp_ocrv6_nearest=False)) as client:
            response = await predict(client, PP_OCRV6_MEDIUM, two_lines)
            assert response.status_code == 422
            assert PP_OCRV6_SMALL in response.text and "IMMICH_AIO_ML_OCR_ALIASES" in response.text
            assert (await client.get("/")).json()["ocr_substitutes"] == {}

    anyio.run(run)


def test_the_substitution_is_logged_at_start(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    service = MlService(make_settings())
    logger = logging.getLogger("ml_service")
    logger.addHandler(caplog.handler)  # the service's logger does not propagate to the root logger
    caplog.set_level(logging.INFO, "ml_service")

    async def run() -> None:
        await service.start()
        await service.stop()

    try:
        anyio.run(run)
    finally:
        logger.removeHandler(caplog.handler)
    # one line per substituted tier (a record may reach the handler twice, through the root logger too)
    said = {(r.requested, r.model) for r in caplog.records if "nearest PP-OCRv6" in r.getMessage()}
    assert said == {(PP_OCRV6_MEDIUM, PP_OCRV6_SMALL)}


def test_the_patched_settings_page_offers_the_catalogs_names() -> None:
    # ui_snippets are placed as they are (no generation from Python), so this test keeps the list in step.
    source = (REPOSITORY / "ui_snippets" / "ocr-pipeline" / "utils" / "ocr-models.ts").read_text(
        encoding="utf-8"
    )
    listed = re.search(r"export const ocrModels = \[(.*?)\];", source, flags=re.DOTALL)
    assert listed is not None
    items = [item.strip() for item in listed.group(1).split(",") if item.strip()]
    names = [DEFAULT_OCR_MODEL if item == "defaultOcrModel" else item.strip("'") for item in items]
    assert re.search(rf"defaultOcrModel = '{DEFAULT_OCR_MODEL}';", source)
    assert names[0] == DEFAULT_OCR_MODEL
    assert len(names) == len(set(names)) and set(names) == {
        PP_OCRV5_MOBILE,
        PP_OCRV5_SERVER,
        PP_OCRV4_MOBILE,
        *PP_OCRV6_TIERS,
    }
    # every offered name is answered here: from its files, or (medium) by the nearest PP-OCRv6 tier
    served = shipped_models()
    assert all(name in served or nearest_pp_ocrv6(name, served) in served for name in PP_OCRV6_TIERS)
