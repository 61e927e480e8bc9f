"""Text-direction classification: turns line crops that were read upside down (180°) the right way up."""

import math
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from ml_service.models.ocr.session import SessionSettings, ocr_session

_HEIGHT, _WIDTH = 48, 192
_BATCH = 6
_UPSIDE_DOWN = 1
_THRESHOLD = 0.9


def _normalised(crop: NDArray[np.uint8]) -> NDArray[np.float32]:
    height, width = crop.shape[:2]
    resized_w = min(_WIDTH, math.ceil(_HEIGHT * width / height))
    resized = cv2.resize(crop, (resized_w, _HEIGHT)).astype(np.float32) / 127.5 - 1.0
    padded = np.zeros((3, _HEIGHT, _WIDTH), dtype=np.float32)
    padded[:, :, :resized_w] = resized.transpose(2, 0, 1)
    return padded


class AngleClassifier:
    """PP-OCR's 0°/180° line classifier on ONNX Runtime."""

    def __init__(self, path: Path, session: SessionSettings) -> None:
        self._session = ocr_session(path, session)
        self._input = self._session.get_inputs()[0].name

    def __call__(self, crops: list[NDArray[np.uint8]]) -> list[NDArray[np.uint8]]:
        turned = list(crops)
        for start in range(0, len(crops), _BATCH):
            tensor = np.stack([_normalised(crop) for crop in crops[start : start + _BATCH]])
            probabilities = self._session.run(None, {self._input: tensor})[0]
            for offset, row in enumerate(probabilities):
                if int(np.argmax(row)) == _UPSIDE_DOWN and float(row[_UPSIDE_DOWN]) > _THRESHOLD:
                    turned[start + offset] = np.ascontiguousarray(np.rot90(crops[start + offset], 2))
        return turned
