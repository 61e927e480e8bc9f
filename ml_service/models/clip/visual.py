"""The Chinese-CLIP image encoder and its preprocessing (cn_clip's image_transform, in numpy)."""

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ml_service.models.clip.base import ClipEncoder
from ml_service.models.clip.checkpoint import input_resolution
from ml_service.models.clip.export import ExportedGraphs
from ml_service.models.clip.quantize import VISUAL_INT8

# cn_clip's preprocessing constants (cn_clip.clip.utils.image_transform).
_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


def preprocess_image(image: Image.Image, resolution: int) -> NDArray[np.float32]:
    """cn_clip's image_transform in numpy: bicubic resize to a square, RGB, scale to 0..1, normalise."""
    resized = image.resize((resolution, resolution), Image.Resampling.BICUBIC).convert("RGB")
    pixels = np.asarray(resized, dtype=np.float32) / 255.0
    normalised = (pixels - _MEAN) / _STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)


def probe_pictures() -> list[Image.Image]:
    """Synthetic pictures unlike each other: a colour gradient, flat blocks, noise, noisy blocks."""
    rng = np.random.default_rng(20261122)
    ramp = np.linspace(0, 255, 640, dtype=np.float32)
    gradient = np.stack(
        [np.tile(ramp, (480, 1)), np.tile(ramp[:480, None], (1, 640)), 255 - np.tile(ramp, (480, 1))], 2
    )
    blocks = np.kron(rng.integers(0, 255, (6, 8, 3)), np.ones((80, 80, 1)))
    return [
        Image.fromarray(gradient.astype(np.uint8)),
        Image.fromarray(blocks.astype(np.uint8)),
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)),
        Image.fromarray(np.clip(blocks + rng.normal(0, 25, blocks.shape), 0, 255).astype(np.uint8)),
    ]


class ClipVisualModel(ClipEncoder):
    """Chinese-CLIP image encoder."""

    task = "clip-visual"
    int8_recipe = VISUAL_INT8

    def predict(self, image: Image.Image) -> NDArray[np.float32]:
        return self._run(preprocess_image(image, input_resolution(self.release)))

    def _graph(self, graphs: ExportedGraphs) -> Path:
        return graphs.visual

    def _probe_inputs(self) -> list[NDArray[Any]]:
        resolution = input_resolution(self.release)
        return [preprocess_image(picture, resolution) for picture in probe_pictures()]

    def _encode_torch(self, model: Any, batch: Any) -> Any:
        return model.encode_image(batch)
