"""`immich-aio serve` tells what it serves before its first request line: address, models, settings."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ml_service.catalogue import ModelCatalogue
from ml_service.config import Settings
from ml_service.metrics import Metrics
from ml_service.models.clip.checkpoint import checkpoint_path
from ml_service.models.ocr import PP_OCRV6_MEDIUM, PP_OCRV6_SMALL, shipped_models
from ml_service.registry import ModelRegistry
from ml_service.startup import startup_block
from tests.ml.conftest import free_port, wait_for_ping


def test_block_names_models_by_their_state(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in [v for v in os.environ if v.startswith(("IMMICH_", "MACHINE_LEARNING_", "HF_ENDPOINT"))]:
        monkeypatch.delenv(variable)
    settings = make_settings(
        clip_weights_dir=tmp_path, clip_aliases="ViT-B-16__openai=ViT-B-16__cn-clip", preload="ocr"
    )
    checkpoint_path(tmp_path, "ViT-B-16").write_bytes(b"placed by hand")
    block = startup_block(settings, ModelCatalogue(ModelRegistry(settings, Metrics())))
    lines = block.splitlines()
    assert lines[0].endswith("listening on http://0.0.0.0:3003")
    assert "checkpoint present: ViT-B-16__cn-clip" in block
    assert "missing (downloads off): RN50__cn-clip" in block  # the test settings turn downloads off
    assert "ViT-B-16__openai -> ViT-B-16__cn-clip" in block
    assert f"{PP_OCRV6_MEDIUM} -> {PP_OCRV6_SMALL}" in block
    assert "upstream ML (faces, other CLIP models): none" in block
    assert "no IMMICH_AIO_ML_* / Immich variable set" in block and "loading at start: ocr" in block
    assert len(lines) <= 8


def test_serve_prints_the_block_before_the_first_request(tmp_path: Path) -> None:
    port = free_port()
    checkpoint_path(tmp_path, "ViT-B-16").write_bytes(b"placed by hand")
    env = dict(
        os.environ,
        IMMICH_AIO_ML_CLIP_WEIGHTS_DIR=str(tmp_path),
        IMMICH_AIO_ML_API_KEY="do-not-print-me",
        IMMICH_AIO_ML_LOG_FORMAT="json",
    )
    command = [sys.executable, "-m", "immich_aio", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--upstream", "http://127.0.0.1:9"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        wait_for_ping(process, port)
        answer = httpx.get(f"http://127.0.0.1:{port}/", headers={"api-key": "do-not-print-me"}, timeout=5)
        assert answer.status_code == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    lines = stderr.splitlines()
    first_request = next(i for i, line in enumerate(lines) if '"message": "request"' in line)
    block = "\n".join(lines[:first_request])
    assert f"listening on http://127.0.0.1:{port}" in block
    for name in shipped_models():
        assert name in block
    assert "checkpoint present: ViT-B-16__cn-clip" in block
    assert "upstream ML (faces, other CLIP models): http://127.0.0.1:9" in block
    assert "IMMICH_AIO_ML_API_KEY=***" in block and "flags: --host --port --upstream" in block
    assert "do-not-print-me" not in stderr
