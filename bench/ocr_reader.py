"""The OCR the benchmarks read their images with: ml_service's own model, as the service serves it."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from ml_service.models.ocr import DEFAULT_OCR_MODEL, OcrModel, OcrOptions, shipped_models

#: One recognised line: its box (4 corners, normalised to 0..1), its text and its recognition score.
Box = tuple[list[float], str, float]


def reader(model_name: str = DEFAULT_OCR_MODEL) -> Callable[[Image.Image], list[Box]]:
    """A function reading an image's lines with the named PP-OCR model and Immich's default thresholds."""
    model = OcrModel(shipped_models()[model_name])
    model.load()

    def read(image: Image.Image) -> list[Box]:
        result = model.predict(image.convert("RGB"), OcrOptions(model_name=model_name))
        return [
            (result.box[8 * i : 8 * i + 8], text, score)
            for i, (text, score) in enumerate(zip(result.text, result.text_score, strict=True))
        ]

    return read
