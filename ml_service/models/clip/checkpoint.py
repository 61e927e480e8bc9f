"""CLIP checkpoints: where each release's file lies, its input size, one torch model per file."""

import contextlib
import io
import weakref
from pathlib import Path
from typing import Any

from ml_service.models.clip.locks import PathLocks
from ml_service.models.clip.release import RELEASES, checkpoint_file
from ml_service.models.errors import ModelUnavailable

_load_locks = PathLocks()
_shared_models: "weakref.WeakValueDictionary[Path, Any]" = weakref.WeakValueDictionary()


def checkpoint_path(weights_dir: Path, release: str) -> Path:
    """Where a release's checkpoint lies inside weights_dir (cn_clip's own file name for its releases)."""
    return weights_dir / checkpoint_file(release)


def input_resolution(release: str) -> int:
    """The side of the square image a release's visual tower takes."""
    return RELEASES[release].resolution


def require_checkpoint(weights_dir: Path, release: str) -> Path:
    """The checkpoint's path; ModelUnavailable naming the expected file when it is missing."""
    path = checkpoint_path(weights_dir, release)
    if not path.is_file():
        raise ModelUnavailable(
            f"Chinese-CLIP weights for {release} not found: expected {path.name} in {weights_dir}"
        )
    return path


def load_torch_model(weights_dir: Path, release: str, threads: int) -> Any:
    """Load a release's checkpoint into its cn_clip model through cn_clip's own loader (CPU, fp32, eval mode).

    Every release is loaded from its file with its structure named (QA-CLIP's is cn_clip's ViT-B-16 with
    RoBERTa-wwm-ext-base-chinese), so cn_clip never looks for, or downloads, a file of its own.

    Encoders of the same checkpoint share one torch model while any of them holds it.
    """
    # torch and cn_clip cost ~5 s and ~1 GB RSS to import (measured); only torch serving and export need them.
    import torch
    from cn_clip.clip import load_from_name

    path = require_checkpoint(weights_dir, release)
    published = RELEASES[release]
    with _load_locks(path):
        model = _shared_models.get(path)
        if model is not None:
            return model
        if threads > 0:
            torch.set_num_threads(threads)
        # cn_clip prints its model config on stdout; keep the service's output to structured logs.
        with contextlib.redirect_stdout(io.StringIO()):
            model, _ = load_from_name(
                str(path),
                device="cpu",
                vision_model_name=published.vision_model,
                text_model_name=published.text_model,
                input_resolution=published.resolution,
            )
        model = model.eval()
        _shared_models[path] = model
        return model
