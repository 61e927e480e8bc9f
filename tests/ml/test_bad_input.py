"""Every bad input gets a 4xx JSON error naming the problem, and the service stays healthy."""

import io
import json
import struct
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import anyio
import httpx
import pytest
from PIL import Image

from ml_service.config import Settings
from ml_service.limits import InferenceLimiter
from ml_service.metrics import Metrics
from tests.ml.conftest import encode

OCR = json.dumps(
    {"ocr": {"detection": {"modelName": "PP-OCRv5_mobile"}, "recognition": {"modelName": "PP-OCRv5_mobile"}}}
)
VISUAL = json.dumps({"clip": {"visual": {"modelName": "ViT-B-16__cn-clip"}}})
TEXTUAL = json.dumps({"clip": {"textual": {"modelName": "ViT-B-16__cn-clip"}}})


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def small_jpeg() -> bytes:
    return encode(Image.new("RGB", (64, 48), "gray"))


# (case name, form data, files, expected status, a word the error must contain)
CASES: list[tuple[str, dict[str, str], dict[str, Any] | None, int, str]] = [
    ("no entries", {}, {"image": ("b", small_jpeg())}, 400, "entries"),
    ("entries not JSON", {"entries": "{clip:"}, None, 400, "JSON"),
    ("entries not an object", {"entries": "[1,2]"}, None, 422, "object"),
    ("entries empty", {"entries": "{}"}, None, 422, "no task"),
    ("unknown task", {"entries": '{"caption": {}}'}, None, 422, "unknown task"),
    ("unknown clip type", {"entries": '{"clip": {"audio": {"modelName": "x"}}}'}, None, 422, "audio"),
    (
        "two clip types",
        {"entries": '{"clip": {"visual": {"modelName": "a"}, "textual": {"modelName": "a"}}}'},
        None,
        422,
        "exactly one",
    ),
    ("clip config not object", {"entries": '{"clip": "ViT-B-16__cn-clip"}'}, None, 422, "object"),
    ("missing modelName", {"entries": '{"clip": {"textual": {}}}', "text": "x"}, None, 422, "modelName"),
    (
        "unknown ocr type",
        {"entries": '{"ocr": {"layout": {"modelName": "PP-OCRv5_mobile"}}}'},
        None,
        422,
        "layout",
    ),
    (
        "ocr minScore out of range",
        {
            "entries": json.dumps(
                {
                    "ocr": {
                        "detection": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 2}},
                        "recognition": {"modelName": "PP-OCRv5_mobile"},
                    }
                }
            )
        },
        None,
        422,
        "minScore",
    ),
    (
        "ocr minScore not number",
        {
            "entries": json.dumps(
                {
                    "ocr": {
                        "detection": {"modelName": "PP-OCRv5_mobile"},
                        "recognition": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": "high"}},
                    }
                }
            )
        },
        None,
        422,
        "minScore",
    ),
    (
        "maxResolution zero",
        {
            "entries": json.dumps(
                {
                    "ocr": {
                        "detection": {"modelName": "PP-OCRv5_mobile", "options": {"maxResolution": 0}},
                        "recognition": {"modelName": "PP-OCRv5_mobile"},
                    }
                }
            )
        },
        None,
        422,
        "maxResolution",
    ),
    ("text missing for textual", {"entries": TEXTUAL}, None, 422, "text"),
    ("text empty for textual", {"entries": TEXTUAL, "text": "  "}, None, 422, "empty"),
    ("image missing for visual", {"entries": VISUAL}, None, 422, "image"),
    ("image missing for ocr", {"entries": OCR, "text": "hello"}, None, 422, "image"),
    ("image as text field", {"entries": OCR, "image": "not a file"}, None, 400, "file part"),
    ("empty image", {"entries": OCR}, {"image": ("b", b"")}, 400, "empty"),
    ("corrupt image", {"entries": OCR}, {"image": ("b", b"\xff\xd8\xff\xe0garbage" * 20)}, 400, "decoded"),
    ("non-image bytes", {"entries": OCR}, {"image": ("b", b"%PDF-1.4 not an image")}, 400, "decoded"),
    (
        "truncated JPEG",
        {"entries": OCR},
        {"image": ("b", encode(Image.new("RGB", (400, 300), "red"))[:300])},
        400,
        "decoded",
    ),
    ("decompression bomb", {"entries": OCR}, {"image": ("b", png_bomb(60000, 60000))}, 413, "pixels"),
    (
        "unknown model, no upstream",
        {"entries": '{"clip": {"textual": {"modelName": "ViT-B-32__openai"}}}', "text": "x"},
        None,
        422,
        "IMMICH_AIO_ML_UPSTREAM_URL",
    ),
    (
        "faces, no upstream",
        {"entries": '{"facial-recognition": {"detection": {"modelName": "buffalo_l"}}}'},
        {"image": ("b", small_jpeg())},
        422,
        "facial-recognition",
    ),
]


@pytest.mark.parametrize(("name", "data", "files", "status", "word"), CASES, ids=[c[0] for c in CASES])
def test_bad_predict_inputs(
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    make_settings: Callable[..., Settings],
    name: str,
    data: dict[str, str],
    files: dict[str, Any] | None,
    status: int,
    word: str,
) -> None:
    async def run() -> None:
        async with asgi_client(make_settings()) as client:
            response = await client.post("/predict", data=data, files=files)
            assert response.status_code == status, response.text
            assert response.headers["content-type"] == "application/json"
            assert word.lower() in response.json()["error"].lower()
            assert (await client.get("/ping")).text == "pong"

    anyio.run(run)


def test_body_that_is_not_multipart_and_limits(
    serve: Callable[[Settings], AbstractContextManager[str]], make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(max_upload_bytes=100_000, max_pixels=1_000_000)
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        response = client.post(
            "/predict", content=b"just bytes", headers={"content-type": "application/json"}
        )
        assert response.status_code == 400 and "entries" in response.json()["error"]
        response = client.post(
            "/predict", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data; boundary=x"}
        )
        assert response.status_code == 400

        big = {"image": ("b", b"\0" * 200_000)}
        response = client.post("/predict", data={"entries": OCR}, files=big)
        assert response.status_code == 413 and "100000" in response.json()["error"]

        def chunked() -> Any:
            for _ in range(30):
                yield b"x" * 10_000

        response = client.post(
            "/predict", content=chunked(), headers={"content-type": "multipart/form-data; boundary=x"}
        )
        assert response.status_code == 413

        too_many_pixels = encode(Image.new("RGB", (1200, 1000), "white"))
        response = client.post("/predict", data={"entries": OCR}, files={"image": ("b", too_many_pixels)})
        assert response.status_code == 413 and "1200x1000" in response.json()["error"]
        assert client.get("/ping").text == "pong"


def test_api_key(
    asgi_client: Callable[[Settings], httpx.AsyncClient], make_settings: Callable[..., Settings]
) -> None:
    async def run() -> None:
        async with asgi_client(make_settings(api_key="k3y")) as client:
            assert (await client.get("/ping")).status_code == 200
            assert (await client.get("/")).status_code == 401
            assert (await client.get("/", headers={"x-api-key": "wrong"})).status_code == 401
            assert (await client.get("/", headers={"x-api-key": "k3y"})).status_code == 200
            assert (await client.get("/", headers={"authorization": "Bearer k3y"})).status_code == 200
            denied = await client.post("/predict", data={"entries": OCR})
            assert denied.status_code == 401 and "API key" in denied.json()["error"]
        async with asgi_client(make_settings(api_key="k3y", api_key_scope="mtphotos")) as client:
            assert (await client.get("/")).status_code == 200
            assert (await client.get("/check")).status_code == 401

    anyio.run(run)


def test_busy_service_answers_503_with_retry_after(
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    make_settings: Callable[..., Settings],
    render: Callable[..., Image.Image],
) -> None:
    image = encode(render([("排队", (10, 10))], size=(200, 80)))

    async def run() -> None:
        client = asgi_client(make_settings(max_concurrent=1, queue_size=0, queue_timeout_s=1.0))
        async with client:
            service = client._transport.app.state.service  # type: ignore[attr-defined]
            async with service.limiter.slot():
                response = await client.post("/predict", data={"entries": OCR}, files={"image": ("b", image)})
            assert response.status_code == 503 and response.headers["retry-after"] == "1"
            ok = await client.post("/predict", data={"entries": OCR}, files={"image": ("b", image)})
            assert ok.status_code == 200 and ok.json()["ocr"]["text"] == ["排队"]
            metrics = (await client.get("/metrics")).text
            assert 'immich_aio_ml_errors_total{kind="queue_full"} 1.0' in metrics

    anyio.run(run)


def test_limiter_queue_then_timeout() -> None:
    async def run() -> None:
        limiter = InferenceLimiter(max_concurrent=1, queue_size=1, queue_timeout_s=5.0, metrics=Metrics())
        order: list[str] = []

        async def worker(name: str, hold: float) -> None:
            try:
                async with limiter.slot():
                    order.append(f"{name} start")
                    await anyio.sleep(hold)
            except Exception as error:
                order.append(f"{name} {getattr(error, 'status', error)}")

        async with anyio.create_task_group() as group:
            group.start_soon(worker, "a", 0.5)
            await anyio.sleep(0.01)
            group.start_soon(worker, "b", 0.0)  # queued, gets the slot after a
            await anyio.sleep(0.01)
            group.start_soon(worker, "c", 0.0)  # queue full
        assert order == ["a start", "c 503", "b start"]

        limiter = InferenceLimiter(max_concurrent=1, queue_size=1, queue_timeout_s=0.2, metrics=Metrics())
        async with anyio.create_task_group() as group:
            group.start_soon(worker, "d", 0.5)
            await anyio.sleep(0.01)
            group.start_soon(worker, "e", 0.0)  # waits 0.2 s then gives up
        assert order[-2:] == ["d start", "e 503"]

    anyio.run(run)


def test_pillow_rgba_and_grayscale_are_accepted(
    asgi_client: Callable[[Settings], httpx.AsyncClient], make_settings: Callable[..., Settings]
) -> None:
    async def run() -> None:
        async with asgi_client(make_settings()) as client:
            for mode, fmt in (("RGBA", "PNG"), ("L", "JPEG"), ("P", "GIF"), ("RGB", "WEBP")):
                buffer = io.BytesIO()
                Image.new(mode, (50, 40)).save(buffer, format=fmt)
                response = await client.post(
                    "/predict", data={"entries": OCR}, files={"image": ("b", buffer.getvalue())}
                )
                assert response.status_code == 200, (mode, response.text)
                assert response.json()["imageWidth"] == 50

    anyio.run(run)


def test_metrics_report_the_process_memory() -> None:
    exposition = Metrics().render().decode()
    rss = next(line for line in exposition.splitlines() if line.startswith("process_resident_memory_bytes"))
    assert float(rss.split()[-1]) > 10 * 2**20
