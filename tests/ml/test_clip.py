"""Chinese-CLIP through the service's real loading path: preprocessing, tokens, torch vs ONNX, HTTP shapes."""

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from ml_service.config import Settings
from ml_service.models.clip.export import (
    class_token_shortcut_applies,
    encode_image_class_token_only,
    ensure_onnx_export,
    onnx_paths,
)
from ml_service.models.clip.names import CLIP_MODELS, CN_CLIP_MODELS, QA_CLIP_VIT_B_16, clip_release
from ml_service.models.clip.quantize import INT8_MIN_COSINE, VISUAL_INT8, int8_path
from ml_service.models.clip.textual import ClipTextualModel, tokenize
from ml_service.models.clip.visual import ClipVisualModel, preprocess_image
from tests.ml.conftest import CLIP_ARCH, CLIP_DIM, CLIP_NAME, encode

TEXTS = ["一只猫在沙发上睡觉", "北京故宫的雪景", "a red car", "发票", "海边日落和椰子树"]


def cosine(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def photos(render: Callable[..., Image.Image]) -> list[Image.Image]:
    rng = np.random.default_rng(7)
    noise = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8))
    gradient = Image.fromarray(np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))).convert("RGB")
    return [noise, gradient, render([("你好世界", (30, 30))], size=(500, 200))]


@pytest.fixture(scope="module")
def encoders(clip_weights_dir: Path) -> dict[str, Any]:
    built: dict[str, Any] = {}
    for backend in ("torch", "onnx"):
        visual = ClipVisualModel(CLIP_NAME, CLIP_ARCH, clip_weights_dir, backend, 2)
        textual = ClipTextualModel(CLIP_NAME, CLIP_ARCH, clip_weights_dir, backend, 2)
        visual.load()
        textual.load()
        assert visual.active_backend == backend and textual.active_backend == backend
        built[backend] = (visual, textual)
    return built


def test_names_constant() -> None:
    assert CN_CLIP_MODELS["ViT-B-16__cn-clip"] == 512
    assert set(CN_CLIP_MODELS) == {
        f"{a}__cn-clip" for a in ("RN50", "ViT-B-16", "ViT-L-14", "ViT-L-14-336", "ViT-H-14")
    }
    assert clip_release("ViT-L-14-336__cn-clip") == "ViT-L-14-336"
    assert clip_release("ViT-B-16__openai") is None
    # QA-CLIP has a release of its own (its checkpoint and graphs never collide with cn-clip ViT-B-16's)
    assert CLIP_MODELS == {**CN_CLIP_MODELS, QA_CLIP_VIT_B_16: 512}
    assert clip_release(QA_CLIP_VIT_B_16) not in {clip_release(name) for name in CN_CLIP_MODELS}


def test_preprocessing_matches_cn_clip(photos: list[Image.Image]) -> None:
    from cn_clip.clip.utils import image_transform

    for photo in photos:
        ours = preprocess_image(photo, 224)
        theirs = image_transform(224)(photo).unsqueeze(0).numpy()
        assert ours.shape == theirs.shape == (1, 3, 224, 224)
        assert float(np.abs(ours - theirs).max()) < 1e-5


def test_tokenize_is_cn_clip_without_padding() -> None:
    from cn_clip.clip import tokenize as cn_tokenize

    for text in [*TEXTS, "长" * 80]:
        ours = tokenize(text)
        theirs = cn_tokenize([text], context_length=52).numpy()
        assert ours.shape[1] <= 52
        assert (theirs[0, : ours.shape[1]] == ours[0]).all()
        assert (theirs[0, ours.shape[1] :] == 0).all()
    assert tokenize("长" * 80).shape == (1, 52)


def test_torch_and_onnx_agree(encoders: dict[str, Any], photos: list[Image.Image]) -> None:
    torch_visual, torch_textual = encoders["torch"]
    onnx_visual, onnx_textual = encoders["onnx"]
    image_vectors = []
    for photo in photos[:2]:
        reference, fast = torch_visual.predict(photo), onnx_visual.predict(photo)
        assert reference.shape == fast.shape == (CLIP_DIM,)
        assert cosine(reference, fast) >= 0.999
        image_vectors.append(reference)
    text_vectors = []
    for text in TEXTS[:3]:
        reference, fast = torch_textual.predict(text), onnx_textual.predict(text)
        assert cosine(reference, fast) >= 0.999
        assert abs(float(np.linalg.norm(fast)) - 1.0) < 1e-5
        text_vectors.append(reference)
    # The agreement means something only if different inputs give different embeddings.
    assert cosine(image_vectors[0], image_vectors[1]) < 0.99
    assert min(cosine(text_vectors[0], v) for v in text_vectors[1:]) < 0.99


def test_class_token_only_last_block_equals_cn_clip(
    encoders: dict[str, Any], photos: list[Image.Image]
) -> None:
    import torch

    model = encoders["torch"][0]._torch_model
    assert class_token_shortcut_applies(model.visual)
    with torch.inference_mode():
        for photo in photos:
            pixels = torch.from_numpy(preprocess_image(photo, 224))
            reference = model.encode_image(pixels)
            shortcut = encode_image_class_token_only(model.visual, pixels)
            assert shortcut.shape == reference.shape == (1, CLIP_DIM)
            assert float((shortcut - reference).abs().max()) < 1e-4


def test_int8_text_encoder_stays_close_to_fp32(clip_weights_dir: Path, encoders: dict[str, Any]) -> None:
    quantised = ClipTextualModel(CLIP_NAME, CLIP_ARCH, clip_weights_dir, "onnx-int8", 2)
    quantised.load()
    assert quantised.active_backend == "onnx-int8"
    assert (clip_weights_dir / "onnx" / "clip_cn_vit-b-16.textual.int8.onnx").is_file()
    fp32 = encoders["onnx"][1]
    for text in TEXTS:
        assert cosine(fp32.predict(text), quantised.predict(text)) >= 0.999
    assert quantised.int8_cosine is not None and quantised.int8_cosine >= INT8_MIN_COSINE


def test_int8_image_encoder_stays_close_to_fp32(
    clip_weights_dir: Path, encoders: dict[str, Any], photos: list[Image.Image]
) -> None:
    quantised = ClipVisualModel(CLIP_NAME, CLIP_ARCH, clip_weights_dir, "onnx-int8", 2)
    quantised.load()
    assert quantised.active_backend == "onnx-int8"
    quantised_file = int8_path(onnx_paths(clip_weights_dir, CLIP_ARCH)[0], VISUAL_INT8)
    assert quantised_file.is_file()
    # int8 weights really are in the served graph (not a copy of the fp32 one)
    assert quantised_file.stat().st_size < onnx_paths(clip_weights_dir, CLIP_ARCH)[0].stat().st_size / 2
    fp32 = encoders["onnx"][0]
    vectors = []
    for photo in photos:
        reference = fp32.predict(photo)
        vectors.append(reference)
        assert cosine(reference, quantised.predict(photo)) >= 0.999
    assert cosine(vectors[0], vectors[1]) < 0.99
    # The fidelity measured at load time is recorded next to the int8 file and reused by the next load.
    record = json.loads(quantised_file.with_suffix(".fidelity.json").read_text())
    assert record["min_cosine"] == quantised.int8_cosine >= INT8_MIN_COSINE


def test_int8_encoder_that_strays_is_not_served(
    clip_weights_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import ml_service.models.clip.quantize as clip_module

    # A bar no quantised graph can clear stands in for weights whose int8 version drifts.
    monkeypatch.setattr(clip_module, "INT8_MIN_COSINE", 1.000001)
    textual = ClipTextualModel(CLIP_NAME, CLIP_ARCH, clip_weights_dir, "onnx-int8", 2)
    logger = logging.getLogger("ml_service.clip")
    logger.addHandler(caplog.handler)  # the service's logger does not propagate to the root logger
    try:
        textual.load()
    finally:
        logger.removeHandler(caplog.handler)
    assert textual.active_backend == "onnx"
    assert textual.int8_cosine is not None and textual.int8_cosine < 1.000001
    assert any("strays from fp32" in record.getMessage() for record in caplog.records)


def test_unpadded_text_equals_padded(encoders: dict[str, Any]) -> None:
    import torch
    from cn_clip.clip import tokenize as cn_tokenize

    textual = encoders["torch"][1]
    model = textual._torch_model
    with torch.inference_mode():
        padded = model.encode_text(cn_tokenize(["海边日落"], context_length=52))[0].numpy()
    assert cosine(padded, textual.predict("海边日落")) >= 0.9999


def test_onnx_export_is_cached(clip_weights_dir: Path, encoders: dict[str, Any]) -> None:
    visual, textual, stamp = onnx_paths(clip_weights_dir, CLIP_ARCH)
    assert visual.is_file() and textual.is_file() and stamp.is_file()
    before = (visual.stat().st_mtime_ns, textual.stat().st_mtime_ns)
    ensure_onnx_export(clip_weights_dir, CLIP_ARCH, 2)
    assert (visual.stat().st_mtime_ns, textual.stat().st_mtime_ns) == before


def clip_entries(kind: str, model: str = CLIP_NAME) -> str:
    config: dict[str, Any] = {"modelName": model}
    if kind == "textual":
        config["options"] = {"language": "zh-CN"}
    return json.dumps({"clip": {kind: config}})


def test_http_shapes_aliases_multitask_and_single_load(
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    make_settings: Callable[..., Settings],
    clip_weights_dir: Path,
    encoders: dict[str, Any],
    photos: list[Image.Image],
    render: Callable[..., Image.Image],
) -> None:
    settings = make_settings(clip_weights_dir=clip_weights_dir, clip_aliases={"ViT-B-16__openai": CLIP_NAME})
    jpeg = encode(photos[0])

    async def run() -> None:
        client = asgi_client(settings)
        async with client:
            app_service = client._transport.app.state.service  # type: ignore[attr-defined]
            # several first requests at once: one single load per encoder
            statuses: list[int] = []

            async def ask(text: str) -> None:
                answer = await client.post(
                    "/predict", data={"entries": clip_entries("textual"), "text": text}
                )
                statuses.append(answer.status_code)

            async with anyio.create_task_group() as group:
                for text in TEXTS:
                    group.start_soon(ask, text)
            assert statuses == [200] * len(TEXTS)
            textual_model = app_service.registry.get(ClipTextualModel.task, CLIP_NAME)
            assert textual_model.load_count == 1
            assert textual_model.active_backend == "onnx-int8"  # the default backend

            text = await client.post("/predict", data={"entries": clip_entries("textual"), "text": "猫"})
            assert text.status_code == 200, text.text
            body = text.json()
            assert set(body) == {"clip"} and isinstance(body["clip"], str)
            vector = json.loads(body["clip"])
            assert len(vector) == CLIP_DIM and all(isinstance(v, float) for v in vector)
            expected = encoders["onnx"][1].predict("猫")
            assert cosine(np.array(vector, dtype=np.float32), expected) >= 0.999

            visual = await client.post(
                "/predict", data={"entries": clip_entries("visual")}, files={"image": ("b", jpeg)}
            )
            assert visual.status_code == 200, visual.text
            body = visual.json()
            assert body["imageWidth"] == 400 and body["imageHeight"] == 300
            assert len(json.loads(body["clip"])) == CLIP_DIM

            alias = await client.post(
                "/predict", data={"entries": clip_entries("textual", "ViT-B-16__openai"), "text": "猫"}
            )
            assert alias.status_code == 200 and alias.json()["clip"] == text.json()["clip"]

            both = {
                "clip": {"visual": {"modelName": CLIP_NAME}},
                "ocr": {
                    "detection": {"modelName": "PP-OCRv5_mobile"},
                    "recognition": {"modelName": "PP-OCRv5_mobile"},
                },
            }
            sign = encode(render([("欢迎光临", (20, 20))], size=(300, 100)))
            multi = await client.post(
                "/predict", data={"entries": json.dumps(both)}, files={"image": ("b", sign)}
            )
            assert multi.status_code == 200, multi.text
            body = multi.json()
            assert body["ocr"]["text"] == ["欢迎光临"] and len(json.loads(body["clip"])) == CLIP_DIM

            txt = await client.post("/clip/txt", json={"text": "猫"})
            assert txt.status_code == 200
            assert np.allclose([float(v) for v in txt.json()["result"]], vector, atol=1e-6)
            img = await client.post("/clip/img", files={"file": ("a.jpg", jpeg)})
            assert len(img.json()["result"]) == CLIP_DIM

            info = (await client.get("/")).json()
            loaded = {"task": "clip-textual", "model": CLIP_NAME, "backend": "onnx-int8"}
            assert loaded in info["models_loaded"]
            metrics = (await client.get("/metrics")).text
            assert (
                'immich_aio_ml_inference_seconds_count{model="ViT-B-16__cn-clip",task="clip-textual"}'
                in metrics
            )
            assert "immich_aio_ml_model_load_seconds_count" in metrics

            # idle unload, then a transparent reload on the next request
            object.__setattr__(app_service.registry.settings, "model_ttl_s", 1.0)
            unloaded = await app_service.registry.unload_idle(now=10**9)
            assert (ClipTextualModel.task, CLIP_NAME) in unloaded and not textual_model.loaded
            again = await client.post("/predict", data={"entries": clip_entries("textual"), "text": "猫"})
            assert again.json()["clip"] == text.json()["clip"] and textual_model.load_count == 2

    anyio.run(run)


def test_missing_weights_is_a_clear_error(
    asgi_client: Callable[[Settings], httpx.AsyncClient], make_settings: Callable[..., Settings]
) -> None:
    async def run() -> None:
        async with asgi_client(make_settings()) as client:
            response = await client.post("/predict", data={"entries": clip_entries("textual"), "text": "猫"})
            assert response.status_code == 503
            assert "clip_cn_vit-b-16.pt" in response.json()["error"]

    anyio.run(run)
