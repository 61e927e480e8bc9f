"""RapidOCR (PP-OCR ONNX) text detection + recognition returning Immich's OCR shape in reading order."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image
from rapidocr_onnxruntime import RapidOCR
from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess

from ml_service.models.base import InferenceModel

DEFAULT_MAX_RESOLUTION = 736
DEFAULT_DETECTION_MIN_SCORE = 0.5
DEFAULT_RECOGNITION_MIN_SCORE = 0.8
_MIN_SIDE = 8
_MIN_BOX_SIDE = 3


@dataclass(frozen=True)
class OcrOptions:
    """Per-request thresholds, as Immich sends them in the detection/recognition options."""

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


def reading_order(boxes: NDArray[np.float32]) -> list[int]:
    """Indices of boxes ordered top-to-bottom by line, then left-to-right within each line.

    Two boxes share a line when their vertical centres are closer than half the smaller box height,
    which keeps a line together even when its boxes start a few pixels apart vertically.
    """
    if len(boxes) == 0:
        return []
    top = boxes[:, :, 1].min(axis=1)
    bottom = boxes[:, :, 1].max(axis=1)
    left = boxes[:, :, 0].min(axis=1)
    centre = (top + bottom) / 2
    height = np.maximum(bottom - top, 1.0)
    lines: list[list[int]] = []
    line_centre: list[float] = []
    line_height: list[float] = []
    for index in np.argsort(centre, kind="stable").tolist():
        if lines and abs(centre[index] - line_centre[-1]) < 0.5 * min(height[index], line_height[-1]):
            members = lines[-1]
            members.append(index)
            line_centre[-1] = float(np.mean(centre[members]))
            line_height[-1] = float(np.mean(height[members]))
        else:
            lines.append([index])
            line_centre.append(float(centre[index]))
            line_height.append(float(height[index]))
    return [i for line in lines for i in sorted(line, key=lambda i: float(left[i]))]


class OcrModel(InferenceModel):
    """PP-OCR detection, direction classification and recognition on ONNX Runtime via rapidocr."""

    task = "ocr"

    def __init__(
        self,
        model_name: str = "rapidocr",
        *,
        threads: int = 0,
        use_cuda: bool = False,
        det_model: Path | None = None,
        rec_model: Path | None = None,
        rec_keys: Path | None = None,
        cls_model: Path | None = None,
    ) -> None:
        super().__init__(model_name)
        self._threads = threads
        self._use_cuda = use_cuda
        self._paths = {
            "det_model_path": det_model,
            "rec_model_path": rec_model,
            "rec_keys_path": rec_keys,
            "cls_model_path": cls_model,
        }
        self._engine: Any = None

    def _load(self) -> None:
        kwargs: dict[str, Any] = {k: str(v) for k, v in self._paths.items() if v is not None}
        if self._threads > 0:
            kwargs["intra_op_num_threads"] = self._threads
            kwargs["inter_op_num_threads"] = 1
        if self._use_cuda:
            kwargs.update(det_use_cuda=True, cls_use_cuda=True, rec_use_cuda=True)
        self._engine = RapidOCR(**kwargs)

    def _unload(self) -> None:
        self._engine = None

    def predict(self, image: Image.Image, options: OcrOptions) -> OcrResult:
        """Detect and recognise text in an RGB image; thresholds come from the request options."""
        engine = self._engine
        if engine is None:
            raise RuntimeError("OCR model used before load()")
        width, height = image.size
        empty = OcrResult([], [], [], [])
        if min(width, height) < _MIN_SIDE:
            return empty
        bgr = np.ascontiguousarray(np.asarray(image, dtype=np.uint8)[:, :, ::-1])
        boxes, box_scores = self._detect(engine, bgr, options)
        if len(boxes) == 0:
            return empty
        order = reading_order(boxes)
        boxes = boxes[order]
        box_scores = [box_scores[i] for i in order]
        crops = engine.get_crop_img_list(bgr, list(boxes))
        crops, _, _ = engine.text_cls(crops)
        recognised, _ = engine.text_rec(crops)
        result = OcrResult([], [], [], [])
        scale = np.array([width, height], dtype=np.float32)
        for box, box_score, rec in zip(boxes, box_scores, recognised, strict=True):
            text, text_score = str(rec[0]), float(rec[1])
            if not text.strip() or text_score < options.recognition_min_score:
                continue
            normalised = np.clip(box / scale, 0.0, 1.0)
            result.text.append(text)
            result.box.extend(float(v) for v in normalised.reshape(-1))
            result.box_score.append(float(box_score))
            result.text_score.append(text_score)
        return result

    def _detect(
        self, engine: Any, bgr: NDArray[np.uint8], options: OcrOptions
    ) -> tuple[NDArray[np.float32], list[float]]:
        height, width = bgr.shape[:2]
        # Like Immich: scale the shorter side down to maxResolution (never up), to multiples of 32.
        ratio = min(1.0, options.max_resolution / min(height, width))
        resized_h = max(32, round(height * ratio / 32) * 32)
        resized_w = max(32, round(width * ratio / 32) * 32)
        resized = cv2.resize(bgr, (resized_w, resized_h))
        tensor = (resized.astype(np.float32) / 255.0 - 0.5) / 0.5
        tensor = tensor.transpose(2, 0, 1)[np.newaxis]
        prediction = engine.text_det.infer(tensor)[0]
        # A fresh post-processor per call: rapidocr's own keeps the threshold as shared mutable state.
        post = DBPostProcess(
            thresh=0.3,
            box_thresh=options.detection_min_score,
            max_candidates=1000,
            unclip_ratio=1.6,
            score_mode="fast",
            use_dilation=True,
        )
        raw_boxes, raw_scores = post(prediction, (height, width))
        kept_boxes: list[NDArray[np.float32]] = []
        kept_scores: list[float] = []
        for box, score in zip(raw_boxes, raw_scores, strict=True):
            ordered = engine.text_det.order_points_clockwise(np.asarray(box, dtype=np.float32))
            clipped = engine.text_det.clip_det_res(ordered, height, width)
            box_w = int(np.linalg.norm(clipped[0] - clipped[1]))
            box_h = int(np.linalg.norm(clipped[0] - clipped[3]))
            if box_w <= _MIN_BOX_SIDE or box_h <= _MIN_BOX_SIDE:
                continue
            kept_boxes.append(clipped.astype(np.float32))
            kept_scores.append(float(score))
        if not kept_boxes:
            return np.zeros((0, 4, 2), dtype=np.float32), []
        return np.stack(kept_boxes), kept_scores
