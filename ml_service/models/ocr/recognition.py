"""CTC text recognition of line crops, batched by width so little padding is computed."""

import math
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from rapidocr.ch_ppocr_rec.utils import CTCLabelDecode  # type: ignore[import-untyped]

from ml_service.models.errors import NotServable
from ml_service.models.ocr.session import SessionSettings, ocr_session

LINE_HEIGHT = 48
# The narrowest batch PP-OCR was trained on (320 px at height 48); a narrower batch reads worse.
_MIN_RATIO = 320 / 48
DEFAULT_BATCH = 6


def _normalised(crop: NDArray[np.uint8], width: int) -> NDArray[np.float32]:
    """The crop resized to the line height, scaled to -1..1, channels first, right-padded with zeros."""
    height, crop_width = crop.shape[:2]
    resized_w = min(width, math.ceil(LINE_HEIGHT * crop_width / height))
    resized = cv2.resize(crop, (resized_w, LINE_HEIGHT)).astype(np.float32) / 127.5 - 1.0
    padded = np.zeros((3, LINE_HEIGHT, width), dtype=np.float32)
    padded[:, :, :resized_w] = resized.transpose(2, 0, 1)
    return padded


class TextRecognizer:
    """PP-OCR recognition graph on ONNX Runtime, decoded with rapidocr's CTC decoder and a dictionary file."""

    def __init__(
        self, path: Path, dictionary: Path, session: SessionSettings, batch: int = DEFAULT_BATCH
    ) -> None:
        self._session = ocr_session(path, session)
        self._input = self._session.get_inputs()[0].name
        self._decode = CTCLabelDecode(character_path=dictionary)
        self.batch = max(1, batch)
        classes = self._session.get_outputs()[0].shape[-1]
        characters = len(self._decode.character)
        if isinstance(classes, int) and classes != characters:
            raise NotServable(
                f"{path.name} predicts {classes} classes but {dictionary.name} gives {characters} "
                "(with blank and space): the dictionary does not belong to this model"
            )

    def __call__(self, crops: list[NDArray[np.uint8]]) -> list[tuple[str, float]]:
        ratios = [crop.shape[1] / crop.shape[0] for crop in crops]
        order = np.argsort(ratios, kind="stable").tolist()
        results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        for start in range(0, len(order), self.batch):
            members = order[start : start + self.batch]
            widest = max(_MIN_RATIO, max(ratios[i] for i in members))
            width = int(LINE_HEIGHT * widest)
            tensor = np.stack([_normalised(crops[i], width) for i in members])
            prediction = self._session.run(None, {self._input: tensor})[0]
            lines, _ = self._decode(prediction)
            for index, (text, score) in zip(members, lines, strict=True):
                results[index] = (str(text), float(score))
        return results
