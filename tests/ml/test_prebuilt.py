"""A torch-free service: graphs exported once (an image build) are served without checkpoints or torch."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from immich_aio.cli import app
from ml_service.config import Settings
from ml_service.models.clip import base as clip_base
from ml_service.models.clip.names import DEFAULT_CN_CLIP_MODEL
from ml_service.models.clip.textual import ClipTextualModel
from ml_service.models.clip.tokenizer import cn_clip_folder
from tests.ml.release_server import release_server

# Runs in a fresh interpreter: tokenises, encodes a text and an image from the prebuilt graphs, reports
# the embeddings and whether torch or cn_clip's package was imported on the way.
SERVE = """
import json, sys
from pathlib import Path
from PIL import Image
from ml_service.models.clip.textual import ClipTextualModel
from ml_service.models.clip.visual import ClipVisualModel
weights, backend = Path(sys.argv[1]), sys.argv[2]
text = ClipTextualModel("ViT-B-16__cn-clip", "ViT-B-16", weights, backend, 1)
image = ClipVisualModel("ViT-B-16__cn-clip", "ViT-B-16", weights, backend, 1)
text.load(); image.load()
result = {
    "text": text.predict("海边日落").tolist(),
    "image": image.predict(Image.new("RGB", (320, 240), (200, 120, 40))).tolist(),
    "backends": [text.active_backend, image.active_backend],
    "prebuilt": [text.prebuilt, image.prebuilt],
    "torch": "torch" in sys.modules,
    "cn_clip_package": "cn_clip.clip" in sys.modules,
}
print(json.dumps(result))
"""


def export(clip_weights_dir: Path, out: Path, *options: str) -> set[str]:
    env = {"IMMICH_AIO_ML_CLIP_WEIGHTS_DIR": str(clip_weights_dir), "IMMICH_AIO_ML_CLIP_DOWNLOAD": "false"}
    command = ["models", "export", DEFAULT_CN_CLIP_MODEL, "--to", str(out), *options]
    result = CliRunner().invoke(app, command, env=env)
    assert result.exit_code == 0, result.output
    assert not list(out.rglob("*.pt")), "the image holds graphs only"
    return {p.name for p in (out / "onnx").iterdir()}


def serve_apart(weights: Path, backend: str = "onnx-int8") -> dict[str, Any]:
    served = subprocess.run(
        [sys.executable, "-c", SERVE, str(weights), backend],
        capture_output=True,
        text=True,
        env={**os.environ},
        check=True,
    )
    data: dict[str, Any] = json.loads(served.stdout.splitlines()[-1])
    return data


def test_exported_graphs_serve_without_checkpoint_or_torch(clip_weights_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "image-models"
    files = export(clip_weights_dir, out)
    # Only what serves: the int8 graphs (they pass the fidelity guard here) and which file serves what.
    assert files == {
        "clip_cn_vit-b-16.visual.int8-pc7.onnx",
        "clip_cn_vit-b-16.textual.int8.onnx",
        "clip_cn_vit-b-16.shipped.json",
    }
    data = serve_apart(out)
    assert data["torch"] is False and data["cn_clip_package"] is False
    assert data["prebuilt"] == [True, True]
    assert data["backends"] == ["onnx-int8", "onnx-int8"]
    reference = ClipTextualModel(DEFAULT_CN_CLIP_MODEL, "ViT-B-16", clip_weights_dir, "onnx-int8", 1)
    reference.load()
    assert float(np.dot(reference.predict("海边日落"), np.asarray(data["text"]))) > 0.9999
    # fp32 asked of an int8-only image: not served from it (the registry then refuses the model clearly)
    fp32 = ClipTextualModel(DEFAULT_CN_CLIP_MODEL, "ViT-B-16", out, "onnx", 1)
    assert fp32.prebuilt is False


def test_all_graphs_serve_fp32_too(clip_weights_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "image-models"
    files = export(clip_weights_dir, out, "--graphs", "all")
    assert {
        "clip_cn_vit-b-16.visual.onnx",
        "clip_cn_vit-b-16.textual.onnx",
        "clip_cn_vit-b-16.stamp.json",
    } <= files
    data = serve_apart(out, "onnx")
    assert data["torch"] is False and data["prebuilt"] == [True, True]
    assert data["backends"] == ["onnx", "onnx"]
    result = CliRunner().invoke(app, ["models", "export", "--to", str(out), "--graphs", "some"])
    assert result.exit_code == 2 and "served or all" in result.output


def test_the_tokenizer_is_found_without_importing_cn_clip() -> None:
    assert (cn_clip_folder() / "vocab.txt").is_file()


def test_a_model_the_image_was_not_built_with_is_refused_before_any_download(
    make_settings: Callable[..., Settings],
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(clip_base, "can_export", lambda: False)  # as in the torch-free image
    textual = json.dumps({"clip": {"textual": {"modelName": "ViT-L-14__cn-clip"}}})
    with release_server() as release:
        settings = make_settings(clip_download=True, clip_weights_dir=tmp_path, clip_mirror_url=release.url)

        async def ask() -> httpx.Response:
            async with asgi_client(settings) as client:
                return await client.post("/predict", data={"entries": textual, "text": "猫"})

        response = asyncio.run(ask())
    assert response.status_code == 422
    assert "--ml-models ViT-L-14__cn-clip" in response.text, response.text
    assert release.requests == []
