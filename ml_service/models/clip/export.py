"""ONNX export of a cn_clip checkpoint's two encoders, once per checkpoint version (class-token shortcut)."""

import contextlib
import importlib.util
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

from ml_service.models.clip.checkpoint import (
    checkpoint_path,
    input_resolution,
    load_torch_model,
    require_checkpoint,
)
from ml_service.models.clip.digest import checkpoint_digest
from ml_service.models.clip.locks import PathLocks

log = logging.getLogger("ml_service.clip")

_ONNX_OPSET = 17
# Bumped when the exported graphs change for the same checkpoint, so cached exports are redone.
EXPORT_REVISION = 2
_export_locks = PathLocks()


class ExportedGraphs(NamedTuple):
    """The fp32 ONNX graphs of one checkpoint's two encoders, and the sha256 of that checkpoint."""

    visual: Path
    textual: Path
    checkpoint_sha256: str


def onnx_paths(weights_dir: Path, release: str) -> tuple[Path, Path, Path]:
    """(visual.onnx, textual.onnx, stamp.json) cached next to the checkpoint."""
    stem = checkpoint_path(weights_dir, release).stem
    cache = weights_dir / "onnx"
    return cache / f"{stem}.visual.onnx", cache / f"{stem}.textual.onnx", cache / f"{stem}.stamp.json"


def _checkpoint_stamp(path: Path) -> dict[str, Any]:
    return {
        "checkpoint": path.name,
        "sha256": checkpoint_digest(path),
        "opset": _ONNX_OPSET,
        "revision": EXPORT_REVISION,
    }


def prebuilt_graphs(weights_dir: Path, release: str) -> ExportedGraphs | None:
    """Graphs exported elsewhere (an image build) and placed without their checkpoint, if complete.

    They are served as they are: with no checkpoint there is nothing to compare them with, and a
    torch-free runtime could not export again anyway.
    """
    visual, textual, stamp_file = onnx_paths(weights_dir, release)
    if checkpoint_path(weights_dir, release).is_file() or not (visual.is_file() and textual.is_file()):
        return None
    with contextlib.suppress(ValueError, OSError, KeyError, TypeError):
        stamp = json.loads(stamp_file.read_text())
        if stamp["opset"] == _ONNX_OPSET and stamp["revision"] == EXPORT_REVISION:
            return ExportedGraphs(visual, textual, str(stamp["sha256"]))
    return None


def can_export() -> bool:
    """Whether checkpoints can become graphs here: the torch-free runtime (an image) cannot."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "onnx", "cn_clip"))


def ensure_onnx_export(weights_dir: Path, release: str, threads: int) -> ExportedGraphs:
    """Export both encoders to ONNX once per checkpoint content; later calls reuse the cached files."""
    prebuilt = prebuilt_graphs(weights_dir, release)
    if prebuilt is not None:
        return prebuilt
    visual, textual, stamp_file = onnx_paths(weights_dir, release)
    checkpoint = require_checkpoint(weights_dir, release)
    with _export_locks(checkpoint):
        stamp = _checkpoint_stamp(checkpoint)
        graphs = ExportedGraphs(visual, textual, str(stamp["sha256"]))
        if visual.is_file() and textual.is_file() and stamp_file.is_file():
            with contextlib.suppress(ValueError, OSError):
                if json.loads(stamp_file.read_text()) == stamp:
                    return graphs
        log.info("exporting Chinese-CLIP to ONNX", extra={"model": release, "dir": str(visual.parent)})
        export_onnx(load_torch_model(weights_dir, release, threads), release, visual, textual)
        stamp_file.write_text(json.dumps(stamp))
    return graphs


def class_token_shortcut_applies(visual: Any) -> bool:
    """Whether a visual tower is a plain cn_clip ViT (the structure encode_image_class_token_only assumes)."""
    # cn_clip imports torch (measured: ~5 s and ~1 GB RSS), which only an export should pay.
    from cn_clip.clip.model import VisualTransformer

    if not isinstance(visual, VisualTransformer):
        return False
    last = visual.transformer.resblocks[-1]
    return last.attn_mask is None and not last.use_flash_attention


def encode_image_class_token_only(visual: Any, image: Any) -> Any:
    """cn_clip's ViT image encoder with the same output, computing the last block for the class token only.

    The embedding is read from the class token alone, so in the last block the other 196 tokens serve
    only as keys and values of its attention; their own attention outputs and MLP (about 7 % of the
    whole encoder's arithmetic) are never used. Layers, weights and order of operations are cn_clip's.
    """
    # torch costs ~4 s and ~0.9 GB RSS to import (measured), which only an export should pay.
    import torch

    x = visual.conv1(image.type(visual.conv1.weight.dtype))
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    class_token = visual.class_embedding.to(x.dtype) + torch.zeros(
        x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device
    )
    x = torch.cat([class_token, x], dim=1) + visual.positional_embedding.to(x.dtype)
    x = visual.ln_pre(x).permute(1, 0, 2)  # NLD -> LND, as cn_clip's transformer expects
    blocks = visual.transformer.resblocks
    for block in blocks[:-1]:
        x = block(x)
    last = blocks[-1]
    normed = last.ln_1(x)
    head = x[:1] + last.attn(normed[:1], normed, normed, need_weights=False)[0]
    head = head + last.mlp(last.ln_2(head))
    embedding = visual.ln_post(head[0])
    return embedding @ visual.proj if visual.proj is not None else embedding


def export_onnx(model: Any, release: str, visual_path: Path, textual_path: Path) -> None:
    """Trace the image and text encoders into two ONNX graphs (dynamic batch; dynamic text length)."""
    # torch and cn_clip cost ~5 s and ~1 GB RSS to import (measured), which only an export should pay.
    import torch
    from cn_clip.clip import tokenize

    class VisualEncoder(torch.nn.Module):
        def __init__(self, clip: Any) -> None:
            super().__init__()
            self.clip = clip

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            if class_token_shortcut_applies(self.clip.visual):
                return encode_image_class_token_only(self.clip.visual, image)  # type: ignore[no-any-return]
            return self.clip.encode_image(image)  # type: ignore[no-any-return]

    class TextualEncoder(torch.nn.Module):
        def __init__(self, clip: Any) -> None:
            super().__init__()
            self.clip = clip

        def forward(self, text: torch.Tensor) -> torch.Tensor:
            return self.clip.encode_text(text)  # type: ignore[no-any-return]

    visual_path.parent.mkdir(parents=True, exist_ok=True)
    resolution = input_resolution(release)
    sample_image = torch.zeros(1, 3, resolution, resolution)
    # The token axis is dynamic, so a padded sample traces the same graph as the service's unpadded
    # tokens (checked: identical ONNX graphs).
    sample_text = tokenize(["一张照片"])
    jobs: list[tuple[torch.nn.Module, torch.Tensor, str, Path, dict[int, str]]] = [
        (VisualEncoder(model), sample_image, "image", visual_path, {0: "batch"}),
        (TextualEncoder(model), sample_text, "text", textual_path, {0: "batch", 1: "tokens"}),
    ]
    for wrapper, sample, input_name, path, axes in jobs:
        # The wrappers must be in eval mode: the exporter restores the wrapper's training flag afterwards,
        # which would otherwise switch the shared model's dropout on.
        wrapper.eval()
        partial = path.with_suffix(".partial")
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter is deprecated upstream but is the one that needs no onnxscript.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                (sample,),
                str(partial),
                dynamo=False,
                input_names=[input_name],
                output_names=["embedding"],
                dynamic_axes={input_name: axes, "embedding": {0: "batch"}},
                opset_version=_ONNX_OPSET,
            )
        os.replace(partial, path)
