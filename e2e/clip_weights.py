"""Random-weight Chinese-CLIP checkpoints in cn_clip's own file format (real weights cannot be fetched here).

The model has the real architecture, tokenizer and preprocessing, so ml_service runs its real loading,
ONNX export and inference path; only the numbers are meaningless, which the checks account for (semantic
CLIP ranking is never asserted, only OCR and hybrid ranking that OCR drives).
"""

from pathlib import Path
from typing import Any

ARCHITECTURE = "ViT-B-16"
# cn_clip's file name for the default architecture, so an existing checkpoint is found without importing
# torch (seconds of CPU); other architectures ask cn_clip.
KNOWN_FILES = {"ViT-B-16": "clip_cn_vit-b-16.pt"}


def checkpoint_file(weights_dir: Path, architecture: str = ARCHITECTURE) -> Path:
    """Where cn_clip's load_from_name(architecture, download_root=weights_dir) looks for the checkpoint."""
    if architecture in KNOWN_FILES:
        return weights_dir / KNOWN_FILES[architecture]
    # cn_clip imports torch (seconds); only architectures this module does not know ask it.
    from cn_clip.clip.utils import _MODELS

    return weights_dir / str(_MODELS[architecture][1])


def ensure_random_checkpoint(weights_dir: Path, architecture: str = ARCHITECTURE, seed: int = 1234) -> Path:
    """Write a seeded random checkpoint ({"state_dict": ...}, fp16 like the released ones) unless present."""
    path = checkpoint_file(weights_dir, architecture)
    if path.is_file():
        return path
    # torch and cn_clip take seconds to import; only needed when the checkpoint is not there yet.
    import torch
    from cn_clip.clip.utils import _MODEL_INFO, create_model

    torch.manual_seed(seed)
    model: Any = create_model(_MODEL_INFO[architecture]["struct"])
    weights_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save(
        {"state_dict": model.state_dict(), "epoch": 0, "note": "immich-aio e2e random weights"}, partial
    )
    partial.replace(path)
    return path
