"""Where each served CLIP checkpoint is published, the cn_clip structure it loads into, and its download URL.

The Chinese-CLIP rows are cn_clip's own table (``cn_clip.clip.utils._MODELS``, ``_MODEL_INFO`` and
``_HUGGINGFACE_ORG``), restated so that file names and URLs are known without importing cn_clip, which
imports torch (~5 s, ~1 GB RSS); a test fails when cn_clip's table says otherwise. QA-CLIP's row is its
model card's: TencentARC/QA-CLIP on Hugging Face, ViT-B-16 with RoBERTa-wwm-ext-base-chinese at 224 px.
"""

from dataclasses import dataclass
from typing import Final

#: The host checkpoints are downloaded from; a mirror (``IMMICH_AIO_ML_CLIP_MIRROR_URL``) takes its place.
RELEASE_HOST: Final = "https://huggingface.co"
#: The branch the files are read from, as cn_clip's ``hf_hub_download`` call reads them.
RELEASE_REVISION: Final = "main"


@dataclass(frozen=True)
class Release:
    """One published checkpoint: its Hugging Face repository and file, and the cn_clip model it fills."""

    organisation: str
    repository: str
    file: str
    #: cn_clip's names of the vision and text towers (``<vision>@<text>`` is cn_clip's model struct).
    vision_model: str
    text_model: str
    #: The side of the square image the visual tower takes.
    resolution: int


_OFA = "OFA-Sys"
_ROBERTA_BASE = "RoBERTa-wwm-ext-base-chinese"

#: Release key (``names.clip_release``) -> where its checkpoint is published and what it loads into.
RELEASES: Final[dict[str, Release]] = {
    "ViT-B-16": Release(
        _OFA, "chinese-clip-vit-base-patch16", "clip_cn_vit-b-16.pt", "ViT-B-16", _ROBERTA_BASE, 224
    ),
    "ViT-L-14": Release(
        _OFA, "chinese-clip-vit-large-patch14", "clip_cn_vit-l-14.pt", "ViT-L-14", _ROBERTA_BASE, 224
    ),
    "ViT-L-14-336": Release(
        _OFA,
        "chinese-clip-vit-large-patch14-336px",
        "clip_cn_vit-l-14-336.pt",
        "ViT-L-14-336",
        _ROBERTA_BASE,
        336,
    ),
    "ViT-H-14": Release(
        _OFA,
        "chinese-clip-vit-huge-patch14",
        "clip_cn_vit-h-14.pt",
        "ViT-H-14",
        "RoBERTa-wwm-ext-large-chinese",
        224,
    ),
    "RN50": Release(_OFA, "chinese-clip-rn50", "clip_cn_rn50.pt", "RN50", "RBT3-chinese", 224),
    "QA-CLIP-ViT-B-16": Release("TencentARC", "QA-CLIP", "QA-CLIP-base.pt", "ViT-B-16", _ROBERTA_BASE, 224),
}


def checkpoint_file(release: str) -> str:
    """The checkpoint's file name in the weights directory (cn_clip's own name for its releases)."""
    return RELEASES[release].file


def release_url(release: str, host: str = RELEASE_HOST) -> str:
    """The checkpoint's download URL on a Hugging Face style host (the release host or a mirror of it)."""
    published = RELEASES[release]
    return (
        f"{host.rstrip('/')}/{published.organisation}/{published.repository}/resolve/{RELEASE_REVISION}/"
        f"{published.file}"
    )
