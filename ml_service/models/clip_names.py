"""Chinese-CLIP model names served by ml_service and their embedding dimensions (importable constant)."""

from typing import Final

#: Suffix marking a Chinese-CLIP model name: ``<cn_clip architecture>__cn-clip``.
CN_CLIP_SUFFIX: Final = "__cn-clip"

#: Model name (as Immich sends it in ``modelName``) -> embedding dimension.
CN_CLIP_MODELS: Final[dict[str, int]] = {
    "RN50__cn-clip": 1024,
    "ViT-B-16__cn-clip": 512,
    "ViT-L-14__cn-clip": 768,
    "ViT-L-14-336__cn-clip": 768,
    "ViT-H-14__cn-clip": 1024,
}

#: The model served when nothing else is configured (MT Photos endpoints, docs examples).
DEFAULT_CN_CLIP_MODEL: Final = "ViT-B-16__cn-clip"

#: An upstream name an unpatched Immich accepts with the same dimension (512), to alias to the default model.
UPSTREAM_ALIAS_MODEL: Final = "ViT-B-16__openai"


def cn_clip_architecture(model_name: str) -> str | None:
    """Return the cn_clip architecture (e.g. ``ViT-B-16``) for a served name, or None if not Chinese-CLIP."""
    if model_name not in CN_CLIP_MODELS:
        return None
    return model_name.removesuffix(CN_CLIP_SUFFIX)
