"""Where cn_clip publishes each Chinese-CLIP checkpoint, and the URL a download takes by default.

This is cn_clip's own table (``cn_clip.clip.utils._MODELS`` and ``_HUGGINGFACE_ORG``), restated so that
file names and URLs are known without importing cn_clip, which imports torch (~5 s, ~1 GB RSS); a test
fails when cn_clip's table says otherwise.
"""

from typing import Final

#: The host cn_clip downloads from; a mirror (``IMMICH_AIO_ML_CLIP_MIRROR_URL``) takes its place.
RELEASE_HOST: Final = "https://huggingface.co"
#: The organisation holding the release repositories (cn_clip's ``_HUGGINGFACE_ORG``).
RELEASE_ORG: Final = "OFA-Sys"
#: The branch the files are read from, as cn_clip's ``hf_hub_download`` call reads them.
RELEASE_REVISION: Final = "main"

#: cn_clip architecture -> (release repository, checkpoint file), as ``cn_clip.clip.utils._MODELS``.
CHECKPOINTS: Final[dict[str, tuple[str, str]]] = {
    "ViT-B-16": ("chinese-clip-vit-base-patch16", "clip_cn_vit-b-16.pt"),
    "ViT-L-14": ("chinese-clip-vit-large-patch14", "clip_cn_vit-l-14.pt"),
    "ViT-L-14-336": ("chinese-clip-vit-large-patch14-336px", "clip_cn_vit-l-14-336.pt"),
    "ViT-H-14": ("chinese-clip-vit-huge-patch14", "clip_cn_vit-h-14.pt"),
    "RN50": ("chinese-clip-rn50", "clip_cn_rn50.pt"),
}


#: cn_clip architecture -> the side of the square image its visual tower takes (``_MODEL_INFO``).
INPUT_RESOLUTIONS: Final[dict[str, int]] = {
    "ViT-B-16": 224,
    "ViT-L-14": 224,
    "ViT-L-14-336": 336,
    "ViT-H-14": 224,
    "RN50": 224,
}


def checkpoint_file(architecture: str) -> str:
    """The file name cn_clip's load_from_name looks for in its download root."""
    return CHECKPOINTS[architecture][1]


def release_url(architecture: str, host: str = RELEASE_HOST) -> str:
    """The checkpoint's download URL on a Hugging Face style host (the release host or a mirror of it)."""
    repository, file = CHECKPOINTS[architecture]
    return f"{host.rstrip('/')}/{RELEASE_ORG}/{repository}/resolve/{RELEASE_REVISION}/{file}"
