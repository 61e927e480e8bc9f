"""QA-CLIP ViT-B/16 in the service: its own checkpoint layout loads, encodes, exports, passes the int8 guard.

The published QA-CLIP-base.pt (TencentARC/QA-CLIP) cannot be downloaded here, so the test writes a
checkpoint of its layout with seeded random weights: cn_clip's ViT-B-16 with RoBERTa-wwm-ext-base-chinese
(QA-CLIP's model card), saved as QA-CLIP's training saves it — a dict with ``epoch``, ``step`` and a
``state_dict`` whose keys carry DistributedDataParallel's ``module.`` prefix and include the text
tower's unused ``bert.pooler`` weights, which QA-CLIP's loader (and cn_clip's) drop.
"""

import contextlib
import filecmp
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from immich_aio.cli import app as root_cli
from ml_service.config import Settings
from ml_service.models.clip.checkpoint import checkpoint_path, load_torch_model
from ml_service.models.clip.names import CLIP_MODELS, QA_CLIP_VIT_B_16, clip_release
from ml_service.models.clip.quantize import INT8_MIN_COSINE
from ml_service.models.clip.release import release_url
from ml_service.models.clip.textual import ClipTextualModel, tokenize
from ml_service.models.clip.visual import ClipVisualModel, preprocess_image
from tests.ml.release_server import release_server

RELEASE = str(clip_release(QA_CLIP_VIT_B_16))
HIDDEN = 768  # RoBERTa-wwm-ext-base's width: the size of the pooler QA-CLIP's checkpoints carry
TEXTS = ["一只猫在沙发上睡觉", "海边日落", "a red car"]


def write_qa_clip_checkpoint(path: Path, seed: int) -> dict[str, Any]:
    """A QA-CLIP-layout checkpoint of cn_clip's ViT-B-16 structure with seeded random weights."""
    import torch
    from cn_clip.clip.utils import create_model

    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        model = create_model("ViT-B-16@RoBERTa-wwm-ext-base-chinese")
    state = {f"module.{name}": tensor for name, tensor in model.state_dict().items()}
    state["module.bert.pooler.dense.weight"] = torch.randn(HIDDEN, HIDDEN)
    state["module.bert.pooler.dense.bias"] = torch.randn(HIDDEN)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 1, "step": 100, "state_dict": state}, path)
    return {name: tensor.float() for name, tensor in model.state_dict().items()}


@pytest.fixture(scope="module")
def qa_clip_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    directory = tmp_path_factory.mktemp("qa-clip")
    written = write_qa_clip_checkpoint(checkpoint_path(directory, RELEASE), seed=20230101)
    return directory, written


def test_the_name_is_served_with_its_own_checkpoint_file() -> None:
    assert CLIP_MODELS[QA_CLIP_VIT_B_16] == 512
    assert checkpoint_path(Path("w"), RELEASE) == Path("w/QA-CLIP-base.pt")
    assert release_url(RELEASE) == "https://huggingface.co/TencentARC/QA-CLIP/resolve/main/QA-CLIP-base.pt"


def test_its_checkpoint_loads_every_weight_of_it(qa_clip_weights: tuple[Path, dict[str, Any]]) -> None:
    directory, written = qa_clip_weights
    loaded = load_torch_model(directory, RELEASE, 2).state_dict()
    assert set(loaded) == set(written)  # the pooler dropped, the DDP prefix gone, nothing missing
    for name, tensor in written.items():
        assert np.array_equal(loaded[name].float().numpy(), tensor.numpy()), name


def test_it_encodes_exports_and_its_int8_graphs_pass_the_guard(
    qa_clip_weights: tuple[Path, dict[str, Any]], render: Callable[..., Image.Image]
) -> None:
    directory, _ = qa_clip_weights
    picture = render([("二维码 扫一扫", (20, 40))], size=(400, 200))
    torch_model = load_torch_model(directory, RELEASE, 2)
    # torch costs seconds to import; the module's other tests need none of it.
    import torch

    with torch.inference_mode():
        expected_image = torch_model.encode_image(torch.from_numpy(preprocess_image(picture, 224)))[0].numpy()
        expected_texts = [torch_model.encode_text(torch.from_numpy(tokenize(t)))[0].numpy() for t in TEXTS]
    for backend in ("onnx", "onnx-int8"):
        visual = ClipVisualModel(QA_CLIP_VIT_B_16, RELEASE, directory, backend, 2)
        textual = ClipTextualModel(QA_CLIP_VIT_B_16, RELEASE, directory, backend, 2)
        visual.load()
        textual.load()
        assert visual.active_backend == textual.active_backend == backend
        assert visual.served_graph is not None and visual.served_graph.name.startswith("QA-CLIP-base.")
        floor = 0.9999 if backend == "onnx" else INT8_MIN_COSINE
        image = visual.predict(picture)
        assert image.shape == (512,) and abs(float(np.linalg.norm(image)) - 1) < 1e-5
        assert cosine(image, expected_image) >= floor
        for text, expected in zip(TEXTS, expected_texts, strict=True):
            assert cosine(textual.predict(text), expected) >= floor
        if backend == "onnx-int8":
            for encoder in (visual, textual):
                assert encoder.int8_cosine is not None and encoder.int8_cosine >= INT8_MIN_COSINE


def cosine(a: Any, b: Any) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_models_pull_fetches_it_from_the_mirror(
    qa_clip_weights: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published = checkpoint_path(qa_clip_weights[0], RELEASE)
    with release_server() as server:
        server.publish(published, urlsplit(release_url(RELEASE, server.url)).path)
        monkeypatch.setenv("IMMICH_AIO_ML_CLIP_MIRROR_URL", server.url)
        monkeypatch.setenv("IMMICH_AIO_ML_CLIP_WEIGHTS_DIR", str(tmp_path))
        runner = CliRunner()
        listed = runner.invoke(root_cli, ["models", "list", "--json"])
        row = next(r for r in json.loads(listed.stdout) if r["model"] == QA_CLIP_VIT_B_16)
        assert row["url"] == f"{server.url}/TencentARC/QA-CLIP/resolve/main/QA-CLIP-base.pt"
        assert row["present"] is False and row["dimension"] == 512
        pulled = runner.invoke(root_cli, ["models", "pull", QA_CLIP_VIT_B_16])
        assert pulled.exit_code == 0, pulled.output
        assert [seen.path for seen in server.transfers()] == [
            "/blobs/TencentARC/QA-CLIP/resolve/main/QA-CLIP-base.pt"
        ]
    assert filecmp.cmp(checkpoint_path(tmp_path, RELEASE), published, shallow=False)
    # the cn-clip ViT-B-16 checkpoint, same architecture, is another file: neither stands for the other
    assert not (tmp_path / "clip_cn_vit-b-16.pt").exists()


def test_offline_it_answers_503_naming_its_file_and_url(
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    entries = json.dumps({"clip": {"textual": {"modelName": QA_CLIP_VIT_B_16}}})

    async def run() -> None:
        async with asgi_client(make_settings(clip_weights_dir=tmp_path)) as client:
            answer = await client.post("/predict", data={"entries": entries, "text": "猫"})
            assert answer.status_code == 503, answer.text
            error = answer.json()["error"]
            assert f"expected QA-CLIP-base.pt in {tmp_path}" in error
            assert "IMMICH_AIO_ML_CLIP_DOWNLOAD=false" in error
            info = (await client.get("/")).json()
            assert info["clip_models"][QA_CLIP_VIT_B_16] == 512
            status = next(s for s in info["clip_model_status"] if s["model"] == QA_CLIP_VIT_B_16)
            assert status["file"] == "QA-CLIP-base.pt" and status["present"] is False

    anyio.run(run)
