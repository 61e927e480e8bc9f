"""Settings from environment variables, alias validation, and `serve` started as a real process."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ml_service.config import Settings, SettingsError, parse_aliases
from tests.ml.conftest import free_port, wait_for_ping


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMMICH_AIO_ML_UPSTREAM_URL", "http://immich-machine-learning:3003/")
    monkeypatch.setenv("IMMICH_AIO_ML_CLIP_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv(
        "IMMICH_AIO_ML_CLIP_ALIASES", "ViT-B-16__openai=ViT-B-16__cn-clip, ViT-L-14__openai=ViT-L-14__cn-clip"
    )
    monkeypatch.setenv("MACHINE_LEARNING_MODEL_TTL", "0")
    monkeypatch.setenv("IMMICH_AIO_ML_PRELOAD", "ocr, ViT-B-16__cn-clip")
    monkeypatch.setenv("IMMICH_AIO_ML_MAX_CONCURRENT", "3")
    settings = Settings.from_env()
    assert settings.upstream_url == "http://immich-machine-learning:3003"
    assert settings.clip_weights_dir == tmp_path
    assert settings.model_ttl_s == 0 and settings.max_concurrent == 3
    assert settings.preload == ("ocr", "ViT-B-16__cn-clip")
    assert settings.resolve_clip_name("ViT-L-14__openai") == "ViT-L-14__cn-clip"
    assert settings.resolve_clip_name("ViT-B-16__cn-clip") == "ViT-B-16__cn-clip"
    assert settings.resolve_clip_name("ViT-B-32__openai") is None
    assert Settings.from_env(max_concurrent=5).max_concurrent == 5


@pytest.mark.parametrize(
    ("name", "value", "word"),
    [
        ("IMMICH_AIO_ML_MAX_UPLOAD_BYTES", "lots", "integer"),
        ("IMMICH_AIO_ML_MAX_CONCURRENT", "0", ">= 1"),
        ("IMMICH_AIO_ML_CLIP_BACKEND", "tensorrt", "onnx"),
        ("IMMICH_AIO_ML_UPSTREAM_TIMEOUT", "soon", "number"),
        ("IMMICH_AIO_ML_CLIP_ALIASES", "ViT-B-16__openai", "name=target"),
        ("IMMICH_AIO_ML_CLIP_DEFAULT_MODEL", "ViT-B-32__openai", "Chinese-CLIP"),
        ("IMMICH_AIO_ML_CLIP_MIRROR_URL", "hf-mirror.com", "http"),
        ("IMMICH_AIO_ML_CLIP_MODEL_URLS", "ViT-B-16__cn-clip", "name=url"),
        ("IMMICH_AIO_ML_CLIP_MODEL_URLS", "ViT-B-32__openai=http://lan/x.pt", "Chinese-CLIP"),
        ("IMMICH_AIO_ML_CLIP_MODEL_URLS", "ViT-B-16__cn-clip=ftp://lan/x.pt", "http"),
        ("IMMICH_AIO_ML_CLIP_SHA256", "ViT-B-16__cn-clip=abc", "64 hexadecimal"),
        ("IMMICH_AIO_ML_CLIP_DOWNLOAD", "perhaps", "true or false"),
        ("IMMICH_AIO_ML_CLIP_DOWNLOAD_TIMEOUT", "0", ">= 0.1"),
    ],
)
def test_bad_settings_are_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str, word: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=word):
        Settings.from_env()


def test_download_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HF_ENDPOINT", "IMMICH_AIO_ML_CLIP_MIRROR_URL", "IMMICH_AIO_ML_CLIP_DOWNLOAD"):
        monkeypatch.delenv(name, raising=False)
    assert Settings.from_env().clip_download is True and Settings.from_env().clip_mirror_url is None
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.com/")
    assert Settings.from_env().clip_mirror_url == "https://hf-mirror.com"
    monkeypatch.setenv("IMMICH_AIO_ML_CLIP_MIRROR_URL", "http://lan-mirror:8080")  # the first one set wins
    monkeypatch.setenv("IMMICH_AIO_ML_CLIP_DOWNLOAD", "False")
    digest = "AB" * 32
    monkeypatch.setenv(
        "IMMICH_AIO_ML_CLIP_MODEL_URLS",
        "ViT-B-16__cn-clip=http://lan/files/b16.pt?token=a=b, ViT-L-14__cn-clip=https://lan/l14.pt",
    )
    monkeypatch.setenv("IMMICH_AIO_ML_CLIP_SHA256", f"ViT-B-16__cn-clip={digest}")
    settings = Settings.from_env()
    assert settings.clip_mirror_url == "http://lan-mirror:8080" and settings.clip_download is False
    assert settings.clip_model_urls == {
        "ViT-B-16__cn-clip": "http://lan/files/b16.pt?token=a=b",
        "ViT-L-14__cn-clip": "https://lan/l14.pt",
    }
    assert settings.clip_sha256 == {"ViT-B-16__cn-clip": digest.lower()}


def test_alias_target_must_be_chinese_clip() -> None:
    with pytest.raises(SettingsError, match="not a Chinese-CLIP model"):
        parse_aliases("ViT-B-16__openai=ViT-B-32__openai")
    assert parse_aliases("") == {}


def test_serve_command_runs_a_real_server(tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ, IMMICH_AIO_ML_LOG_FORMAT="json", IMMICH_AIO_ML_CLIP_WEIGHTS_DIR=str(tmp_path))
    code = "import typer; from ml_service.cli import serve; typer.run(serve)"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--upstream",
            "http://127.0.0.1:9",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_ping(process, port)
        info = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).json()
        assert info["message"] == "Immich ML" and info["upstream"] == "http://127.0.0.1:9"
        assert info["clip_models"]["ViT-B-16__cn-clip"] == 512
        bad = httpx.post(f"http://127.0.0.1:{port}/predict", data={"entries": "{"}, timeout=5)
        assert bad.status_code == 400
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    # structured logs: one JSON object per request line
    assert '"message": "request"' in stderr and '"status": 400' in stderr


def test_bad_environment_exits_with_message(tmp_path: Path) -> None:
    env = dict(os.environ, IMMICH_AIO_ML_MAX_PIXELS="many")
    code = "import typer; from ml_service.cli import serve; typer.run(serve)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "IMMICH_AIO_ML_MAX_PIXELS" in result.stderr
