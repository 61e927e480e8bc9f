"""cn_clip checkpoints: where each architecture's file lies, its input size, one torch model per file."""

import contextlib
import io
import weakref
from pathlib import Path
from typing import Any

from ml_service.models.clip.locks import PathLocks
from ml_service.models.clip_release import INPUT_RESOLUTIONS, checkpoint_file
from ml_service.models.errors import ModelUnavailable

_load_locks = PathLocks()
_shared_models: "weakref.WeakValueDictionary[Path, Any]" = weakref.WeakValueDictionary()


def checkpoint_path(weights_dir: Path, architecture: str) -> Path:
    """Where cn_clip's load_from_name looks for an architecture's checkpoint inside weights_dir."""
    return weights_dir / checkpoint_file(architecture)


def input_resolution(architecture: str) -> int:
    """The side of the square image an architecture's visual tower takes."""
    return INPUT_RESOLUTIONS[architecture]


def require_checkpoint(weights_dir: Path, architecture: str) -> Path:
    """The checkpoint's path; ModelUnavailable naming the expected file when it is missing."""
    path = checkpoint_path(weights_dir, architecture)
    if not path.is_file():
        raise ModelUnavailable(
            f"Chinese-CLIP weights for {architecture} not found: expected {path.name} in {weights_dir}"
        )
    return path


def load_torch_model(weights_dir: Path, architecture: str, threads: int) -> Any:
    """Load a cn_clip checkpoint through cn_clip's own loader (CPU, fp32, eval mode).

    Encoders of the same checkpoint share one torch model while any of them holds it.
    """
    # torch and cn_clip cost ~5 s and ~1 GB RSS to import (measured); only torch serving and export need them.
    import torch
    from cn_clip.clip import load_from_name

    path = require_checkpoint(weights_dir, architecture)
    with _load_locks(path):
        model = _shared_models.get(path)
        if model is not None:
            return model
        if threads > 0:
            torch.set_num_threads(threads)
        # cn_clip prints its model config on stdout; keep the service's output to structured logs.
        with contextlib.redirect_stdout(io.StringIO()):
            model, _ = load_from_name(architecture, device="cpu", download_root=str(weights_dir))
        model = model.eval()
        _shared_models[path] = model
        return model
