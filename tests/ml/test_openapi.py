"""The API documents itself: /openapi.json describes every route's body, answers and status codes, a 405
says what is allowed, schemathesis finds no failure against the running service, and a client made
from the document alone calls /predict."""

import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from PIL import Image

from ml_service.config import Settings
from tests.ml.conftest import CLIP_DIM, CLIP_NAME, encode
from tests.ml.spec_client import SpecClient

CONFIG = Path(__file__).with_name("schemathesis.toml")
MT_PHOTOS = {"/ocr": "post", "/clip/img": "post", "/clip/txt": "post"}


def spec_of(settings: Settings, asgi_client: Callable[[Settings], httpx.AsyncClient]) -> dict[str, Any]:
    async def fetch() -> dict[str, Any]:
        async with asgi_client(settings) as client:
            response = await client.get("/openapi.json", headers={"api-key": settings.api_key or ""})
            assert response.status_code == 200
            document: dict[str, Any] = response.json()
            return document

    return anyio.run(fetch)


def test_predict_and_mtphotos_routes_are_described(
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    make_settings: Callable[..., Settings],
    clip_weights_dir: Path,
) -> None:
    spec = spec_of(make_settings(clip_weights_dir=clip_weights_dir), asgi_client)
    predict = spec["paths"]["/predict"]["post"]
    form = predict["requestBody"]["content"]["multipart/form-data"]
    assert form["schema"]["required"] == ["entries"]
    assert form["schema"]["properties"]["image"]["format"] == "binary"
    assert form["schema"]["properties"]["text"]["type"] == "string"
    assert form["encoding"]["entries"]["contentType"] == "application/json"
    assert set(predict["responses"]) == {"200", "400", "413", "422", "502", "503", "504"}
    assert "Retry-After" in predict["responses"]["503"]["headers"]
    schemas = spec["components"]["schemas"]
    assert set(schemas["PredictEntries"]["properties"]) == {"clip", "ocr"}  # no upstream: no faces
    # downloads off: only the model whose checkpoint is present may be asked for
    assert schemas["ClipEntry"]["properties"]["textual"]["properties"]["modelName"]["enum"] == [CLIP_NAME]
    assert set(schemas["PredictResponse"]["properties"]) >= {"clip", "ocr", "imageWidth", "imageHeight"}
    for path, method in MT_PHOTOS.items():
        operation = spec["paths"][path][method]
        assert set(operation["responses"]) == {"200", "400", "413", "422", "503"}, path
        assert "requestBody" in operation
    assert set(spec["paths"]["/check"]) == {"get", "post"}
    assert "text/plain" in spec["paths"]["/ping"]["get"]["responses"]["200"]["content"]
    assert "text/plain" in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert "securitySchemes" not in spec["components"]


def test_a_key_and_an_upstream_show_in_the_document(
    asgi_client: Callable[[Settings], httpx.AsyncClient], make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        api_key="k3y",
        upstream_url="http://127.0.0.1:9",
        clip_download=True,
        clip_aliases={"ViT-B-16__openai": CLIP_NAME},
    )
    spec = spec_of(settings, asgi_client)
    predict = spec["paths"]["/predict"]["post"]
    assert "401" in predict["responses"] and predict["security"]
    assert "401" not in spec["paths"]["/ping"]["get"]["responses"]
    assert set(spec["components"]["securitySchemes"]) == {"api-key", "x-api-key", "bearer"}
    schemas = spec["components"]["schemas"]
    assert "facial-recognition" in schemas["PredictEntries"]["properties"]
    model_name = schemas["ClipEntry"]["properties"]["visual"]["properties"]["modelName"]
    assert "enum" not in model_name and "ViT-B-16__openai" in model_name["examples"]


def test_405_says_which_methods_are_allowed(
    asgi_client: Callable[[Settings], httpx.AsyncClient], make_settings: Callable[..., Settings]
) -> None:
    async def run() -> None:
        async with asgi_client(make_settings()) as client:
            for method, path, allowed in [
                ("GET", "/predict", "POST"),
                ("TRACE", "/check", "GET, POST"),
                ("DELETE", "/ping", "GET"),
                ("PUT", "/clip/txt", "POST"),
            ]:
                response = await client.request(method, path)
                assert response.status_code == 405 and response.headers["allow"] == allowed, path
                assert "error" in response.json()

    anyio.run(run)


@pytest.fixture
def documented_service(
    serve: Callable[[Settings], AbstractContextManager[str]],
    make_settings: Callable[..., Settings],
    clip_weights_dir: Path,
) -> Any:
    """The service with a Chinese-CLIP checkpoint in place, both models loaded before the first request."""
    settings = make_settings(
        clip_weights_dir=clip_weights_dir, clip_backend="torch", preload=("ocr", CLIP_NAME), api_key="k3y"
    )
    with serve(settings) as url:
        yield url


def test_schemathesis_finds_no_failure(documented_service: str, tmp_path: Path) -> None:
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run"),
        f"{documented_service}/openapi.json",
        *("--checks", "all", "--max-examples", "25", "--seed", "20260712", "--header", "api-key: k3y"),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    summary = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert run.returncode == 0 and summary is not None, run.stdout[-6000:]
    generated, passed = map(int, summary.groups())
    assert generated == passed >= 200, run.stdout[-3000:]
    # every documented operation, /predict and the MT Photos routes among them, was tested
    assert re.search(r"Selected: 9/9\s+Tested: 9\b", run.stdout), run.stdout[-3000:]
    print(f"schemathesis: {generated} generated, {passed} passed")


def test_a_client_made_from_the_document_calls_predict(documented_service: str) -> None:
    with httpx.Client(base_url=documented_service, timeout=60, headers={"api-key": "k3y"}) as http:
        client = SpecClient.load(http)
        entries = {"clip": {"textual": {"modelName": CLIP_NAME, "options": {"language": "zh-CN"}}}}
        status, answer = client.call("post", "/predict", {"entries": entries, "text": "一只猫"})
        assert status == 200 and len(json.loads(answer["clip"])) == CLIP_DIM

        picture = io.BytesIO()
        Image.new("RGB", (80, 60), "white").save(picture, "PNG")
        both = {
            "clip": {"visual": {"modelName": CLIP_NAME}},
            "ocr": {"detection": {"modelName": "PP-OCRv5_mobile"}},
        }
        status, answer = client.call("post", "/predict", {"entries": both, "image": picture.getvalue()})
        assert status == 200 and answer["imageWidth"] == 80 and answer["ocr"]["text"] == []

        status, answer = client.call("post", "/predict", {"entries": {"ocr": {}}, "image": b"not a picture"})
        assert status == 400 and "decoded" in answer["error"]

        status, answer = client.call("post", "/clip/img", {"file": encode(Image.new("RGB", (32, 32)))})
        assert status == 200 and len(answer["result"]) == CLIP_DIM
        status, answer = client.call("post", "/clip/txt", {"text": "海边"})
        assert status == 200 and len(answer["result"]) == CLIP_DIM
