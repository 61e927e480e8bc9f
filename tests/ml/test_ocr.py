"""OCR end to end over real HTTP on rendered Chinese text: text, boxes, scores, thresholds, reading order."""

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from PIL import Image

from ml_service.config import Settings
from ml_service.models.ocr import reading_order
from tests.ml.conftest import encode

LINES = [
    ("增值税专用发票", (40, 40)),
    ("金额128元", (600, 26)),  # starts 14 px higher than its left neighbour, still the same line
    ("北京市海淀区", (40, 200)),
    ("开票日期2024年", (560, 210)),
]
EXPECTED_ORDER = ["增值税专用发票", "金额128元", "北京市海淀区", "开票日期2024年"]


def ocr_entries(det_score: float = 0.5, rec_score: float = 0.5, max_resolution: int = 736) -> str:
    return json.dumps(
        {
            "ocr": {
                "detection": {
                    "modelName": "PP-OCRv5_mobile",
                    "options": {"minScore": det_score, "maxResolution": max_resolution},
                },
                "recognition": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": rec_score}},
            }
        }
    )


def post_ocr(client: httpx.Client, image: bytes, **options: Any) -> dict[str, Any]:
    response = client.post(
        "/predict", data={"entries": ocr_entries(**options)}, files={"image": ("blob", image)}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def invoice(render: Callable[..., Image.Image]) -> bytes:
    return encode(render(LINES))


def check_shape(body: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    assert body["imageWidth"] == width and body["imageHeight"] == height
    ocr: dict[str, Any] = body["ocr"]
    count = len(ocr["text"])
    assert len(ocr["box"]) == 8 * count
    assert len(ocr["boxScore"]) == count and len(ocr["textScore"]) == count
    assert all(0.0 <= v <= 1.0 for v in ocr["box"])
    assert all(0.0 <= s <= 1.0 for s in ocr["boxScore"] + ocr["textScore"])
    return ocr


def test_ocr_over_real_socket(
    serve: Callable[[Settings], AbstractContextManager[str]],
    make_settings: Callable[..., Settings],
    invoice: bytes,
) -> None:
    with serve(make_settings()) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/ping").text == "pong"
        body = post_ocr(client, invoice)
        ocr = check_shape(body, 1000, 400)
        assert ocr["text"] == EXPECTED_ORDER

        # Boxes sit where the text was drawn: the first box starts near x=40/1000, y=40/400.
        first = ocr["box"][:8]
        assert 0.02 < first[0] < 0.06 and 0.07 < first[1] < 0.13
        # corners are clockwise from top-left
        assert first[2] > first[0] and first[5] > first[3] and first[6] < first[4]

        # Recognition threshold: raise it just above the lowest text score and that line disappears.
        lowest = min(ocr["textScore"])
        strict = check_shape(post_ocr(client, invoice, rec_score=min(1.0, lowest + 1e-6)), 1000, 400)
        assert len(strict["text"]) < len(ocr["text"])
        assert all(s >= lowest + 1e-6 for s in strict["textScore"])

        # Detection threshold: the same for box scores.
        lowest_box = min(ocr["boxScore"])
        strict_det = check_shape(post_ocr(client, invoice, det_score=min(1.0, lowest_box + 1e-4)), 1000, 400)
        assert len(strict_det["text"]) < len(ocr["text"])
        assert all(s >= lowest_box + 1e-4 for s in strict_det["boxScore"])

        # maxResolution: at 32 px on the short side the 40 px glyphs shrink to 3 px and most lines are lost.
        tiny = check_shape(post_ocr(client, invoice, max_resolution=32), 1000, 400)
        assert len(tiny["text"]) < len(ocr["text"]) and tiny["text"] != EXPECTED_ORDER


def test_ocr_png_and_blank_image(
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    make_settings: Callable[..., Settings],
    render: Callable[..., Image.Image],
) -> None:
    import anyio

    async def run() -> None:
        async with asgi_client(make_settings()) as client:
            png = encode(render([("上海浦东机场", (20, 20))], size=(420, 100)), "PNG")
            response = await client.post(
                "/predict", data={"entries": ocr_entries()}, files={"image": ("x", png)}
            )
            assert response.status_code == 200, response.text
            assert check_shape(response.json(), 420, 100)["text"] == ["上海浦东机场"]
            blank = encode(Image.new("RGB", (300, 200), "white"))
            response = await client.post(
                "/predict", data={"entries": ocr_entries()}, files={"image": ("x", blank)}
            )
            assert response.status_code == 200
            assert response.json()["ocr"] == {"text": [], "box": [], "boxScore": [], "textScore": []}

    anyio.run(run)


def test_reading_order_groups_lines_despite_offsets() -> None:
    import numpy as np

    def box(x: float, y: float, w: float = 100, h: float = 40) -> list[list[float]]:
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    # second line's right box is higher than its left box; first line's boxes are given out of order
    boxes = np.array([box(500, 108), box(10, 120), box(300, 2), box(10, 10), box(700, 14)], dtype=np.float32)
    assert reading_order(boxes) == [3, 2, 4, 1, 0]
    assert reading_order(np.zeros((0, 4, 2), dtype=np.float32)) == []


def test_mtphotos_ocr(
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    make_settings: Callable[..., Settings],
    invoice: bytes,
) -> None:
    import anyio

    async def run() -> None:
        async with asgi_client(make_settings(api_key="s3cret")) as client:
            assert (await client.get("/check")).status_code == 401
            check = await client.get("/check", headers={"api-key": "s3cret"})
            assert check.json()["result"] == "pass"
            response = await client.post(
                "/ocr", files={"file": ("a.jpg", invoice)}, headers={"api-key": "s3cret"}
            )
            assert response.status_code == 200, response.text
            result = response.json()["result"]
            assert result["texts"] == EXPECTED_ORDER
            assert len(result["scores"]) == 4 and all(0 <= float(s) <= 1 for s in result["scores"])
            first = {k: float(v) for k, v in result["boxes"][0].items()}
            assert (
                30 < first["x"] < 60
                and 25 < first["y"] < 55
                and first["width"] > 200
                and first["height"] > 30
            )

    anyio.run(run)
