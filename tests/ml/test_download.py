"""Checkpoints arrive by themselves: first-use download, resume, verification, mirrors, one download, offline.

Every download here comes from a loopback release host (tests/ml/release_server.py) serving a seeded
random-weight checkpoint in cn_clip's format, under the same paths as cn_clip's release host.
"""

import asyncio
import contextlib
import filecmp
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

import ml_service.checkpoints as checkpoints
from immich_aio.cli import app as root_cli
from ml_service.checkpoints import CheckpointStore
from ml_service.config import Settings
from ml_service.download import partial_path
from ml_service.metrics import Metrics
from ml_service.models.clip.checkpoint import checkpoint_path
from ml_service.models.clip.digest import file_sha256, record_path
from ml_service.models.clip.names import CN_CLIP_MODELS, QA_CLIP_VIT_B_16, clip_release
from ml_service.models.clip.release import RELEASE_HOST, RELEASES, checkpoint_file, release_url
from ml_service.models.errors import ModelUnavailable
from tests.ml.conftest import CLIP_ARCH, CLIP_DIM, CLIP_NAME, encode, free_port
from tests.ml.release_server import ReleaseServer

FILE = checkpoint_file(CLIP_ARCH)
RELEASE_ORG = RELEASES[CLIP_ARCH].organisation
TEXTUAL = json.dumps({"clip": {"textual": {"modelName": CLIP_NAME, "options": {"language": "zh-CN"}}}})
VISUAL = json.dumps({"clip": {"visual": {"modelName": CLIP_NAME}}})
OCR = json.dumps(
    {"ocr": {"detection": {"modelName": "PP-OCRv5_mobile"}, "recognition": {"modelName": "PP-OCRv5_mobile"}}}
)


@pytest.fixture(scope="module")
def release_sha256(release_checkpoint: Path) -> str:
    return file_sha256(release_checkpoint)


@pytest.fixture
def retry_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the next attempt follow a failed one at once (the service waits RETRY_AFTER_S)."""
    monkeypatch.setattr(checkpoints, "RETRY_AFTER_S", 0.0)


def downloading(make_settings: Callable[..., Settings], weights: Path, **overrides: Any) -> Settings:
    return make_settings(clip_download=True, clip_weights_dir=weights, **overrides)


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample in a /metrics text, or None when it is absent."""
    for family in text_string_to_metric_families(metrics):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


def ensure(store: CheckpointStore) -> Path:
    return asyncio.run(store.ensure(CLIP_NAME))


def failure(store: CheckpointStore) -> ModelUnavailable:
    with pytest.raises(ModelUnavailable) as caught:
        ensure(store)
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    return caught.value


def test_release_table_is_cn_clips() -> None:
    from cn_clip.clip.utils import _HUGGINGFACE_ORG, _MODEL_INFO, _MODELS

    cn_clip = {clip_release(name): RELEASES[str(clip_release(name))] for name in CN_CLIP_MODELS}
    assert {key: (r.repository, r.file) for key, r in cn_clip.items()} == _MODELS
    assert {r.organisation for r in cn_clip.values()} == {_HUGGINGFACE_ORG}
    assert {key: (f"{r.vision_model}@{r.text_model}", r.resolution) for key, r in cn_clip.items()} == {
        name: (info["struct"], info["input_resolution"]) for name, info in _MODEL_INFO.items()
    }
    # QA-CLIP ViT-B/16 is cn_clip's ViT-B-16 structure, published by TencentARC (its model card's URL)
    qa_clip = RELEASES[str(clip_release(QA_CLIP_VIT_B_16))]
    vision, text = _MODEL_INFO["ViT-B-16"]["struct"].split("@")
    assert (qa_clip.vision_model, qa_clip.text_model, qa_clip.resolution) == (vision, text, 224)
    published = (qa_clip.organisation, qa_clip.repository, qa_clip.file)
    assert published == ("TencentARC", "QA-CLIP", "QA-CLIP-base.pt")
    hub = pytest.importorskip("huggingface_hub")
    for release, published in RELEASES.items():
        # cn_clip downloads with hf_hub_download(org/repo, file): the URL the hub library builds for it.
        repository = f"{published.organisation}/{published.repository}"
        assert release_url(release) == hub.hf_hub_url(repository, published.file, endpoint=RELEASE_HOST)
    assert release_url("RN50", "https://hf-mirror.com/") == (
        "https://hf-mirror.com/OFA-Sys/chinese-clip-rn50/resolve/main/clip_cn_rn50.pt"
    )
    assert release_url(str(clip_release(QA_CLIP_VIT_B_16))) == (
        "https://huggingface.co/TencentARC/QA-CLIP/resolve/main/QA-CLIP-base.pt"
    )


def test_first_use_downloads_once_for_concurrent_requests_and_reports_progress(
    serve: Callable[[Settings], AbstractContextManager[str]],
    make_settings: Callable[..., Settings],
    release: ReleaseServer,
    release_checkpoint: Path,
    release_sha256: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(checkpoints, "_LOG_EVERY_S", 0.2)
    release.delay_per_block_s = 0.006  # about 2 s for the whole file, so the download can be watched
    weights = tmp_path / "weights"
    settings = downloading(make_settings, weights, clip_mirror_url=release.url, clip_backend="torch")
    logger = logging.getLogger("ml_service")
    logger.addHandler(caplog.handler)  # the service's logger does not propagate to the root logger
    caplog.set_level(logging.INFO, "ml_service")
    answers: dict[str, httpx.Response] = {}
    try:
        with serve(settings) as url, httpx.Client(base_url=url, timeout=300) as client:
            before = client.get("/").json()["clip_model_status"]
            assert {"model": CLIP_NAME, "present": False, "downloading": None, "loaded": {}}.items() <= next(
                s for s in before if s["model"] == CLIP_NAME
            ).items()

            def ask(key: str, **request: Any) -> None:
                with httpx.Client(base_url=url, timeout=300) as own:
                    answers[key] = own.post("/predict", **request)

            image = encode(Image.new("RGB", (64, 48), "gray"))
            askers = [
                threading.Thread(
                    target=ask, args=("text-1",), kwargs={"data": {"entries": TEXTUAL, "text": "猫"}}
                ),
                threading.Thread(
                    target=ask, args=("text-2",), kwargs={"data": {"entries": TEXTUAL, "text": "狗"}}
                ),
                threading.Thread(
                    target=ask,
                    args=("image",),
                    kwargs={"data": {"entries": VISUAL}, "files": {"image": ("b", image)}},
                ),
            ]
            for asker in askers:
                asker.start()
            seen_running: dict[str, Any] | None = None
            metrics_running = ""
            deadline = time.monotonic() + 60
            while seen_running is None and time.monotonic() < deadline:
                status = next(
                    s for s in client.get("/").json()["clip_model_status"] if s["model"] == CLIP_NAME
                )
                if status["downloading"] and status["downloading"]["bytes_done"] > 0:
                    seen_running = status["downloading"]
                    metrics_running = client.get("/metrics").text
                time.sleep(0.05)
            assert client.get("/ping").text == "pong"  # the event loop is free while the file arrives
            for asker in askers:
                asker.join(timeout=300)
            info = client.get("/").json()
            metrics = client.get("/metrics").text
    finally:
        logger.removeHandler(caplog.handler)

    for key, answer in answers.items():
        assert answer.status_code == 200, (key, answer.text)
        assert len(json.loads(answer.json()["clip"])) == CLIP_DIM
    assert len(answers) == 3
    assert len(release.transfers()) == 1, release.requests
    assert filecmp.cmp(checkpoint_path(weights, CLIP_ARCH), release_checkpoint, shallow=False)
    assert (
        json.loads(record_path(checkpoint_path(weights, CLIP_ARCH)).read_text())["sha256"] == release_sha256
    )
    assert not partial_path(checkpoint_path(weights, CLIP_ARCH)).exists()

    size = release_checkpoint.stat().st_size
    assert seen_running is not None and seen_running["bytes_total"] == size
    assert 0 < seen_running["bytes_done"] <= size
    assert sample(metrics_running, "immich_aio_ml_model_download_size_bytes", model=CLIP_NAME) == size
    assert sample(metrics_running, "immich_aio_ml_model_present", model=CLIP_NAME) == 0

    status = next(s for s in info["clip_model_status"] if s["model"] == CLIP_NAME)
    assert status["present"] and status["downloading"] is None and status["download_error"] is None
    assert status["loaded"] == {"clip-textual": "torch", "clip-visual": "torch"}
    assert status["url"] == release_url(CLIP_ARCH, release.url)
    assert sample(metrics, "immich_aio_ml_model_present", model=CLIP_NAME) == 1
    assert sample(metrics, "immich_aio_ml_model_download_bytes", model=CLIP_NAME) == 0
    serving = {"task": "clip-textual", "model": CLIP_NAME, "backend": "torch"}
    assert sample(metrics, "immich_aio_ml_model_serving", **serving) == 1
    complete = {"model": CLIP_NAME, "outcome": "complete"}
    assert sample(metrics, "immich_aio_ml_model_downloads_total", **complete) == 1

    messages = [record.getMessage() for record in caplog.records if record.name == "ml_service.download"]
    assert messages[0] == "downloading CLIP checkpoint" and messages[-1] == "checkpoint downloaded"
    progress = [r for r in caplog.records if r.getMessage() == "downloading"]
    assert progress and all(0 < r.__dict__["bytes"] <= size and r.__dict__["total"] == size for r in progress)


def test_interrupted_download_resumes_where_it_stopped(
    make_settings: Callable[..., Settings],
    release: ReleaseServer,
    release_checkpoint: Path,
    tmp_path: Path,
    retry_at_once: None,
) -> None:
    store = CheckpointStore(downloading(make_settings, tmp_path, clip_mirror_url=release.url))
    target = checkpoint_path(tmp_path, CLIP_ARCH)
    release.cut_after = 100_000_000
    error = failure(store)
    assert release_url(CLIP_ARCH, release.url) in error.message and "resume" in error.message
    kept = partial_path(target).stat().st_size
    assert 0 < kept <= 100_000_000 and not target.exists()

    assert ensure(store) == target
    first, second = release.transfers()
    assert first.range is None
    assert second.range == f"bytes={kept}-" and second.if_range  # the same file, from where it stopped
    assert filecmp.cmp(target, release_checkpoint, shallow=False)
    assert not partial_path(target).exists()


def test_a_download_stopped_by_shutdown_resumes_later(
    make_settings: Callable[..., Settings], release: ReleaseServer, release_checkpoint: Path, tmp_path: Path
) -> None:
    settings = downloading(make_settings, tmp_path, clip_mirror_url=release.url)
    target = checkpoint_path(tmp_path, CLIP_ARCH)
    release.delay_per_block_s = 0.01

    async def stop_midway() -> None:
        store = CheckpointStore(settings)
        waiter = asyncio.create_task(store.ensure(CLIP_NAME))
        while not (store.status(CLIP_NAME)["downloading"] or {}).get("bytes_done"):
            await asyncio.sleep(0.02)
        await store.close()
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(stop_midway())
    kept = partial_path(target).stat().st_size
    assert 0 < kept < release_checkpoint.stat().st_size and not target.exists()
    release.delay_per_block_s = 0.0
    assert ensure(CheckpointStore(settings)) == target
    assert release.transfers()[-1].range == f"bytes={kept}-"
    assert filecmp.cmp(target, release_checkpoint, shallow=False)


def test_server_without_range_support_is_read_from_the_start(
    make_settings: Callable[..., Settings],
    release: ReleaseServer,
    release_checkpoint: Path,
    tmp_path: Path,
    retry_at_once: None,
) -> None:
    store = CheckpointStore(downloading(make_settings, tmp_path, clip_mirror_url=release.url))
    release.cut_after = 30_000_000
    failure(store)
    release.ignore_range = True
    path = ensure(store)
    assert release.transfers()[-1].range is not None  # asked for the rest, got the whole file, kept it whole
    assert filecmp.cmp(path, release_checkpoint, shallow=False)


def test_corrupted_download_is_deleted_and_reported(
    make_settings: Callable[..., Settings],
    release: ReleaseServer,
    release_checkpoint: Path,
    release_sha256: str,
    tmp_path: Path,
    retry_at_once: None,
) -> None:
    metrics = Metrics()
    settings = downloading(
        make_settings, tmp_path, clip_mirror_url=release.url, clip_sha256={CLIP_NAME: release_sha256}
    )
    store = CheckpointStore(settings, metrics)
    target = checkpoint_path(tmp_path, CLIP_ARCH)

    # A whole corrupted copy: every byte arrives, the sha256 differs, nothing is kept.
    release.corrupt_from = 5_000_000
    error = failure(store)
    assert f"sha256 mismatch: expected {release_sha256}" in error.message and "deleted" in error.message
    assert not target.exists() and not partial_path(target).exists()

    # Corrupted bytes in a partial file from an interrupted attempt are found once the rest arrives.
    release.cut_after = 50_000_000
    failure(store)
    release.corrupt_from = None
    assert "sha256 mismatch" in failure(store).message
    assert not target.exists() and not partial_path(target).exists()
    assert "sha256 mismatch" in store.status(CLIP_NAME)["download_error"]

    assert ensure(store) == target
    assert filecmp.cmp(target, release_checkpoint, shallow=False)
    rendered = metrics.render().decode()
    for outcome, count in (("rejected", 2), ("failed", 1), ("complete", 1)):
        assert (
            sample(rendered, "immich_aio_ml_model_downloads_total", model=CLIP_NAME, outcome=outcome) == count
        )


def test_mirror_from_hf_endpoint_and_models_pull(
    release: ReleaseServer,
    release_checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # HF_ENDPOINT is what users of Hugging Face mirrors have set already; it names the mirror too.
    monkeypatch.setenv("HF_ENDPOINT", release.url)
    monkeypatch.setenv("IMMICH_AIO_ML_CLIP_WEIGHTS_DIR", str(tmp_path))
    runner = CliRunner()
    listed = runner.invoke(root_cli, ["models", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    row = next(r for r in json.loads(listed.stdout) if r["model"] == CLIP_NAME)
    assert row == {
        "model": CLIP_NAME,
        "dimension": CLIP_DIM,
        "path": str(checkpoint_path(tmp_path, CLIP_ARCH)),
        "present": False,
        "url": f"{release.url}/{RELEASE_ORG}/chinese-clip-vit-base-patch16/resolve/main/{FILE}",
    }
    pulled = runner.invoke(root_cli, ["models", "pull", "ViT-B-16__cn-clip"])
    assert pulled.exit_code == 0, pulled.output
    assert str(checkpoint_path(tmp_path, CLIP_ARCH)) in pulled.output
    assert [seen.path for seen in release.requests if seen.method == "GET"] == [
        f"/{RELEASE_ORG}/chinese-clip-vit-base-patch16/resolve/main/{FILE}",
        f"/blobs/{RELEASE_ORG}/chinese-clip-vit-base-patch16/resolve/main/{FILE}",
    ]
    assert filecmp.cmp(checkpoint_path(tmp_path, CLIP_ARCH), release_checkpoint, shallow=False)
    again = runner.invoke(root_cli, ["models", "pull"])  # the default model, already present: no transfer
    assert again.exit_code == 0 and len(release.transfers()) == 1
    unknown = runner.invoke(root_cli, ["models", "pull", "ViT-B-32__openai"])
    assert unknown.exit_code == 2 and "ViT-B-32__openai" in unknown.output


def test_per_model_url_wins_over_the_mirror(
    make_settings: Callable[..., Settings],
    release: ReleaseServer,
    release_checkpoint: Path,
    tmp_path: Path,
) -> None:
    release.publish(release_checkpoint, "/lan-share/models/vit-b-16.pt")
    settings = downloading(
        make_settings,
        tmp_path,
        clip_mirror_url=f"http://127.0.0.1:{free_port()}",
        clip_model_urls={CLIP_NAME: f"{release.url}/lan-share/models/vit-b-16.pt"},
    )
    path = ensure(CheckpointStore(settings))
    assert release.transfers()[0].path == "/blobs/lan-share/models/vit-b-16.pt"
    assert path == checkpoint_path(tmp_path, CLIP_ARCH)


def test_offline_answer_names_url_and_file_and_the_rest_keeps_working(
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    make_settings: Callable[..., Settings],
    release: ReleaseServer,
    tmp_path: Path,
    render: Callable[..., Any],
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    weights = tmp_path / "weights"
    missing = f"{release.url}/nowhere/{FILE}"
    sign = encode(render([("欢迎光临", (20, 20))], size=(300, 100)))

    async def run() -> None:
        async with asgi_client(downloading(make_settings, weights, clip_mirror_url=dead)) as client:
            answer = await client.post("/predict", data={"entries": TEXTUAL, "text": "猫"})
            assert answer.status_code == 503
            error = answer.json()["error"]
            assert f"expected {FILE} in {weights}" in error
            assert release_url(CLIP_ARCH, dead) in error and "ConnectError" in error
            assert "IMMICH_AIO_ML_CLIP_MIRROR_URL" in error and int(answer.headers["retry-after"]) >= 1
            ocr = await client.post("/predict", data={"entries": OCR}, files={"image": ("b", sign)})
            assert ocr.status_code == 200 and ocr.json()["ocr"]["text"] == ["欢迎光临"]
            assert (await client.get("/ping")).text == "pong"
            status = next(
                s for s in (await client.get("/")).json()["clip_model_status"] if s["model"] == CLIP_NAME
            )
            assert status["present"] is False and dead in status["download_error"]

        settings = downloading(make_settings, weights, clip_model_urls={CLIP_NAME: missing})
        async with asgi_client(settings) as client:
            for _ in range(3):  # within RETRY_AFTER_S the answer is given again without a new attempt
                answer = await client.post("/predict", data={"entries": VISUAL}, files={"image": ("b", sign)})
                assert answer.status_code == 503 and "HTTP 404" in answer.json()["error"]
            assert len([seen for seen in release.requests if seen.path.startswith("/nowhere/")]) == 1

        async with asgi_client(make_settings(clip_weights_dir=weights)) as client:
            answer = await client.post("/predict", data={"entries": TEXTUAL, "text": "猫"})
            assert answer.status_code == 503 and "IMMICH_AIO_ML_CLIP_DOWNLOAD=false" in answer.json()["error"]
        target = checkpoint_path(weights, CLIP_ARCH)
        assert not target.exists() and not partial_path(target).exists()

    anyio.run(run)


def test_preload_downloads_at_start(
    make_settings: Callable[..., Settings],
    release: ReleaseServer,
    release_checkpoint: Path,
    tmp_path: Path,
    serve: Callable[[Settings], AbstractContextManager[str]],
) -> None:
    settings = downloading(
        make_settings, tmp_path, clip_mirror_url=release.url, clip_backend="torch", preload=(CLIP_NAME,)
    )
    with serve(settings) as url:
        status = next(
            s for s in httpx.get(f"{url}/", timeout=30).json()["clip_model_status"] if s["model"] == CLIP_NAME
        )
    assert status["present"] and status["loaded"] == {"clip-textual": "torch", "clip-visual": "torch"}
    assert len(release.transfers()) == 1


def test_preload_that_cannot_download_leaves_the_service_up(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    serve: Callable[[Settings], AbstractContextManager[str]],
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = downloading(make_settings, tmp_path, clip_mirror_url=dead, preload=(CLIP_NAME,))
    with serve(settings) as url:
        assert httpx.get(f"{url}/ping", timeout=10).text == "pong"
        answer = httpx.post(f"{url}/predict", data={"entries": TEXTUAL, "text": "猫"}, timeout=30)
        assert answer.status_code == 503 and dead in answer.json()["error"]


@pytest.mark.slow
def test_a_fresh_serve_answers_the_first_request(release: ReleaseServer, tmp_path: Path) -> None:
    """What a new user does: start the service with its defaults and a reachable mirror, then ask."""
    port = free_port()
    env = dict(
        os.environ, IMMICH_AIO_ML_CLIP_WEIGHTS_DIR=str(tmp_path / "cn-clip"), IMMICH_AIO_ML_LOG_FORMAT="json"
    )
    command = [sys.executable, "-m", "immich_aio", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--mirror", release.url],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ping", timeout=1).text == "pong":
                    break
            assert process.poll() is None and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)
        answer = httpx.post(f"{url}/predict", data={"entries": TEXTUAL, "text": "一只猫"}, timeout=600)
        assert answer.status_code == 200, answer.text
        assert len(json.loads(answer.json()["clip"])) == CLIP_DIM
        status = next(
            s for s in httpx.get(f"{url}/", timeout=10).json()["clip_model_status"] if s["model"] == CLIP_NAME
        )
        # the default backend: int8, or fp32 where the fidelity guard finds int8 strays
        assert status["present"] and status["loaded"]["clip-textual"] in ("onnx-int8", "onnx")
    finally:
        process.terminate()
        _, log = process.communicate(timeout=30)
    assert len(release.transfers()) == 1
    events = [json.loads(line)["message"] for line in log.splitlines() if line.startswith("{")]
    assert "downloading CLIP checkpoint" in events and "checkpoint downloaded" in events
