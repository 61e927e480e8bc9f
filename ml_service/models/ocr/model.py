"""The OCR model Immich asks for: detection, optional direction classification and recognition in one."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ml_service.models.base import InferenceModel
from ml_service.models.ocr.angle import AngleClassifier
from ml_service.models.ocr.catalog import OcrModelFiles
from ml_service.models.ocr.crops import crop_line
from ml_service.models.ocr.detection import TextDetector
from ml_service.models.ocr.reading import reading_order
from ml_service.models.ocr.recognition import DEFAULT_BATCH, TextRecognizer
from ml_service.models.ocr.session import SessionSettings

DEFAULT_MAX_RESOLUTION = 736
DEFAULT_DETECTION_MIN_SCORE = 0.5
DEFAULT_RECOGNITION_MIN_SCORE = 0.8
_MIN_SIDE = 8


@dataclass(frozen=True)
class OcrOptions:
    """Per-request model and thresholds, as Immich sends them in the detection/recognition entries.

    model_name is the served name the request resolved to; None means the configured default.
    """

    model_name: str | None = None
    detection_min_score: float = DEFAULT_DETECTION_MIN_SCORE
    recognition_min_score: float = DEFAULT_RECOGNITION_MIN_SCORE
    max_resolution: int = DEFAULT_MAX_RESOLUTION


@dataclass
class OcrResult:
    """Recognised lines in reading order; boxes are 4 clockwise corners normalised to 0..1."""

    text: list[str]
    box: list[float]
    box_score: list[float]
    text_score: list[float]

    def as_immich(self) -> dict[str, Any]:
        return {"text": self.text, "box": self.box, "boxScore": self.box_score, "textScore": self.text_score}


@dataclass
class _Parts:
    detector: TextDetector
    recognizer: TextRecognizer
    classifier: AngleClassifier | None


class OcrModel(InferenceModel):
    """One PP-OCR generation (PP-OCRv5, PP-OCRv4, …) served from its files on ONNX Runtime."""

    task = "ocr"

    def __init__(
        self,
        files: OcrModelFiles,
        *,
        threads: int = 0,
        alone_threads: int | None = None,
        use_cuda: bool = False,
        spinning: bool = False,
        rec_batch: int = DEFAULT_BATCH,
        angle_classification: bool = False,
    ) -> None:
        super().__init__(files.name)
        self.files = files
        self._session = SessionSettings(threads, use_cuda, spinning)
        # A request read while no other is under way gets sessions of its own with more threads: the
        # cores the concurrent case divides among requests would otherwise idle.
        self._alone_session = None
        if alone_threads is not None and alone_threads > threads > 0:
            self._alone_session = SessionSettings(alone_threads, use_cuda, spinning)
        self._rec_batch = rec_batch
        self._angle = angle_classification and files.classification is not None
        self._parts: _Parts | None = None
        self._alone_parts: _Parts | None = None
        self._reading = 0
        self._reading_lock = threading.Lock()

    def describe(self) -> dict[str, str]:
        """What serves this name: the files, their wheel, and whether upside-down lines are turned."""
        return {**self.files.describe(), "angle_classification": "on" if self._angle else "off"}

    def _build(self, session: SessionSettings) -> _Parts:
        files = self.files
        classifier = None
        if self._angle and files.classification is not None:
            classifier = AngleClassifier(files.classification, session)
        return _Parts(
            TextDetector(files.detection, session),
            TextRecognizer(files.recognition, files.dictionary, session, self._rec_batch),
            classifier,
        )

    def _load(self) -> None:
        self._parts = self._build(self._session)
        if self._alone_session is not None:
            self._alone_parts = self._build(self._alone_session)

    def _unload(self) -> None:
        self._parts = self._alone_parts = None

    @contextmanager
    def _sessions(self) -> Iterator[_Parts]:
        """The sessions for one request: the many-threaded ones when no other request is being read."""
        with self._reading_lock:
            self._reading += 1
            alone = self._reading == 1
        try:
            parts = (self._alone_parts if alone else None) or self._parts
            if parts is None:
                raise RuntimeError("OCR model used before load()")
            yield parts
        finally:
            with self._reading_lock:
                self._reading -= 1

    def predict(self, image: Image.Image, options: OcrOptions) -> OcrResult:
        """Detect and recognise text in an RGB image; thresholds come from the request options."""
        with self._sessions() as parts:
            return self._read(parts, image, options)

    def _read(self, parts: _Parts, image: Image.Image, options: OcrOptions) -> OcrResult:
        width, height = image.size
        result = OcrResult([], [], [], [])
        if min(width, height) < _MIN_SIDE:
            return result
        bgr = np.ascontiguousarray(np.asarray(image, dtype=np.uint8)[:, :, ::-1])
        boxes, box_scores = parts.detector(image, options.detection_min_score, options.max_resolution)
        if len(boxes) == 0:
            return result
        order = reading_order(boxes)
        crops = [crop_line(bgr, boxes[i]) for i in order]
        if parts.classifier is not None:
            crops = parts.classifier(crops)
        scale = np.array([width, height], dtype=np.float32)
        for index, (text, text_score) in zip(order, parts.recognizer(crops), strict=True):
            if not text.strip() or text_score < options.recognition_min_score:
                continue
            normalised = np.clip(boxes[index] / scale, 0.0, 1.0)
            result.text.append(text)
            result.box.extend(float(v) for v in normalised.reshape(-1))
            result.box_score.append(box_scores[index])
            result.text_score.append(text_score)
        return result
