"""The CLIP model names ml_service serves, their embedding dimensions and checkpoints (importable constants).

This is the one list of them: the gateway, the deploy tooling and the patch series' model tables read it.
"""

from typing import Final

#: Suffix marking a Chinese-CLIP model name: ``<cn_clip architecture>__cn-clip``.
CN_CLIP_SUFFIX: Final = "__cn-clip"

#: Chinese-CLIP (OFA-Sys) model name, as Immich sends it in ``modelName`` -> embedding dimension.
CN_CLIP_MODELS: Final[dict[str, int]] = {
    "RN50__cn-clip": 1024,
    "ViT-B-16__cn-clip": 512,
    "ViT-L-14__cn-clip": 768,
    "ViT-L-14-336__cn-clip": 768,
    "ViT-H-14__cn-clip": 1024,
}

#: QA-CLIP ViT-B/16 (TencentARC): Chinese-CLIP's ViT-B-16 architecture and tokenizer, trained anew.
QA_CLIP_VIT_B_16: Final = "QA-CLIP-ViT-B-16"
#: QA-CLIP model name -> embedding dimension.
QA_CLIP_MODELS: Final[dict[str, int]] = {QA_CLIP_VIT_B_16: 512}

#: Every CLIP model name served (Chinese-CLIP first, then QA-CLIP) -> embedding dimension.
CLIP_MODELS: Final[dict[str, int]] = {**CN_CLIP_MODELS, **QA_CLIP_MODELS}

#: Model name -> the release (a key of ``release.RELEASES``) whose checkpoint serves it.
_RELEASE_OF: Final[dict[str, str]] = {
    **{name: name.removesuffix(CN_CLIP_SUFFIX) for name in CN_CLIP_MODELS},
    QA_CLIP_VIT_B_16: QA_CLIP_VIT_B_16,
}

#: The model served when nothing else is configured (MT Photos endpoints, docs examples).
DEFAULT_CN_CLIP_MODEL: Final = "ViT-B-16__cn-clip"

#: An upstream name an unpatched Immich accepts with the same dimension (512), to alias to the default model.
UPSTREAM_ALIAS_MODEL: Final = "ViT-B-16__openai"


def clip_release(model_name: str) -> str | None:
    """The release whose checkpoint serves a model (``ViT-B-16`` for ``ViT-B-16__cn-clip``), else None."""
    return _RELEASE_OF.get(model_name)
