"""PP-OCR text reading for Immich's OCR task: the model, its options and result, and the model catalog."""

from ml_service.models.ocr.catalog import (
    DEFAULT_OCR_MODEL,
    PP_OCRV4_MOBILE,
    PP_OCRV5_MOBILE,
    PP_OCRV5_SERVER,
    PP_OCRV6_MEDIUM,
    PP_OCRV6_SMALL,
    PP_OCRV6_TIERS,
    PP_OCRV6_TINY,
    OcrModelFiles,
    canonical_name,
    custom_model,
    nearest_pp_ocrv6,
    shipped_models,
)
from ml_service.models.ocr.model import (
    DEFAULT_DETECTION_MIN_SCORE,
    DEFAULT_MAX_RESOLUTION,
    DEFAULT_RECOGNITION_MIN_SCORE,
    OcrModel,
    OcrOptions,
    OcrResult,
)
from ml_service.models.ocr.reading import reading_order

__all__ = [
    "DEFAULT_DETECTION_MIN_SCORE",
    "DEFAULT_MAX_RESOLUTION",
    "DEFAULT_OCR_MODEL",
    "DEFAULT_RECOGNITION_MIN_SCORE",
    "PP_OCRV4_MOBILE",
    "PP_OCRV5_MOBILE",
    "PP_OCRV5_SERVER",
    "PP_OCRV6_MEDIUM",
    "PP_OCRV6_SMALL",
    "PP_OCRV6_TIERS",
    "PP_OCRV6_TINY",
    "OcrModel",
    "OcrModelFiles",
    "OcrOptions",
    "OcrResult",
    "canonical_name",
    "custom_model",
    "nearest_pp_ocrv6",
    "reading_order",
    "shipped_models",
]
