"""Exports (ONNX, int8) carry the checkpoint sha256: a new checkpoint is exported again, a touched one not."""

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

import ml_service.models.clip.export as export
from ml_service.models.clip.checkpoint import checkpoint_path
from ml_service.models.clip.digest import checkpoint_digest, record_path
from ml_service.models.clip.export import ensure_onnx_export, onnx_paths
from ml_service.models.clip.quantize import TEXTUAL_INT8, ensure_int8, int8_path
from tests.ml.conftest import CLIP_ARCH


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stand in for the torch load and the ONNX export (each export writes the graphs anew)."""
    done: list[str] = []

    def fake_export(model: Any, architecture: str, visual: Path, textual: Path) -> None:
        visual.parent.mkdir(parents=True, exist_ok=True)
        visual.write_bytes(b"visual graph")
        textual.write_bytes(b"textual graph")
        done.append(architecture)

    monkeypatch.setattr(export, "load_torch_model", lambda *args: object())
    monkeypatch.setattr(export, "export_onnx", fake_export)
    return done


def touch_later(path: Path, seconds: int = 10) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 10**9))


def test_onnx_export_follows_the_checkpoint_hash(tmp_path: Path, exports: list[str]) -> None:
    checkpoint = checkpoint_path(tmp_path, CLIP_ARCH)
    checkpoint.write_bytes(b"first weights")
    graphs = ensure_onnx_export(tmp_path, CLIP_ARCH, 1)
    first = hashlib.sha256(b"first weights").hexdigest()
    assert exports == [CLIP_ARCH] and graphs.checkpoint_sha256 == first
    assert json.loads(onnx_paths(tmp_path, CLIP_ARCH)[2].read_text())["sha256"] == first
    assert json.loads(record_path(checkpoint).read_text())["sha256"] == first

    touch_later(checkpoint)  # same bytes, new mtime (copied, restored from a backup): no new export
    assert ensure_onnx_export(tmp_path, CLIP_ARCH, 1).checkpoint_sha256 == first
    assert exports == [CLIP_ARCH]

    checkpoint.write_bytes(b"other weights")  # another checkpoint in the same place
    touch_later(checkpoint, 20)
    graphs = ensure_onnx_export(tmp_path, CLIP_ARCH, 1)
    assert exports == [CLIP_ARCH, CLIP_ARCH]
    assert graphs.checkpoint_sha256 == hashlib.sha256(b"other weights").hexdigest()


def test_digest_record_is_reused_only_for_the_same_file_version(tmp_path: Path) -> None:
    checkpoint = tmp_path / "clip_cn_vit-b-16.pt"
    checkpoint.write_bytes(b"abc")
    record_path(checkpoint).write_text(
        json.dumps({"size": 3, "mtime_ns": checkpoint.stat().st_mtime_ns, "sha256": "recorded"})
    )
    assert checkpoint_digest(checkpoint) == "recorded"  # the record is trusted while size and mtime hold
    touch_later(checkpoint)
    assert checkpoint_digest(checkpoint) == hashlib.sha256(b"abc").hexdigest()


def test_int8_is_quantised_again_for_another_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quantised: list[str] = []

    def fake_quantize(source: str, target: str, **options: Any) -> None:
        Path(target).write_bytes(b"int8 of " + Path(source).read_bytes())
        quantised.append(target)

    monkeypatch.setattr("onnxruntime.quantization.quantize_dynamic", fake_quantize)
    fp32 = tmp_path / "clip_cn_vit-b-16.textual.onnx"
    fp32.write_bytes(b"graph")
    path = ensure_int8(fp32, TEXTUAL_INT8, "a" * 64)
    assert path == int8_path(fp32, TEXTUAL_INT8) and len(quantised) == 1
    assert json.loads(path.with_suffix(".stamp.json").read_text())["checkpoint_sha256"] == "a" * 64
    ensure_int8(fp32, TEXTUAL_INT8, "a" * 64)
    assert len(quantised) == 1
    ensure_int8(fp32, TEXTUAL_INT8, "b" * 64)
    assert len(quantised) == 2
    touch_later(fp32)  # copied into an image: same graph, new mtime, no new quantisation
    ensure_int8(fp32, TEXTUAL_INT8, "b" * 64)
    assert len(quantised) == 2
    fp32.write_bytes(b"another graph")  # a new fp32 export of the same checkpoint
    ensure_int8(fp32, TEXTUAL_INT8, "b" * 64)
    assert len(quantised) == 3
