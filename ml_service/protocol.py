"""Immich ML protocol: validate the `entries` JSON, split local from forwarded tasks, shape responses."""

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml_service.config import Settings, unknown_ocr_model
from ml_service.errors import bad_request, unprocessable
from ml_service.models.clip.script import TEXT_CONVERSIONS, TextConversion
from ml_service.models.ocr import (
    DEFAULT_DETECTION_MIN_SCORE,
    DEFAULT_MAX_RESOLUTION,
    DEFAULT_RECOGNITION_MIN_SCORE,
    OcrOptions,
)

CLIP = "clip"
OCR = "ocr"
FACIAL_RECOGNITION = "facial-recognition"
KNOWN_TASKS = (CLIP, OCR, FACIAL_RECOGNITION)
MAX_RESOLUTION_LIMIT = 16384


@dataclass(frozen=True)
class ClipRequest:
    """A Chinese-CLIP encode served here; model is the served name after alias resolution."""

    kind: str  # "visual" or "textual"
    model: str
    # the request's own script conversion of a textual query; None: the service's setting
    text_conversion: TextConversion | None = None


@dataclass(frozen=True)
class OcrRequest:
    options: OcrOptions


@dataclass
class ParsedEntries:
    """What one /predict call asks for: tasks served here and the entries to forward upstream."""

    clip: ClipRequest | None = None
    ocr: OcrRequest | None = None
    remote: dict[str, Any] = field(default_factory=dict)

    @property
    def has_local(self) -> bool:
        return self.clip is not None or self.ocr is not None

    @property
    def needs_image(self) -> bool:
        return self.ocr is not None or (self.clip is not None and self.clip.kind == "visual")

    @property
    def needs_text(self) -> bool:
        return self.clip is not None and self.clip.kind == "textual"


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise unprocessable(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def _model_name(config: dict[str, Any], where: str) -> str:
    name = config.get("modelName")
    if not isinstance(name, str) or not name.strip():
        raise unprocessable(f"{where}.modelName must be a non-empty string")
    return name


def _options(config: dict[str, Any], where: str) -> dict[str, Any]:
    options = config.get("options", {})
    if options is None:
        return {}
    return _object(options, f"{where}.options")


def _score(options: dict[str, Any], where: str, default: float) -> float:
    value = options.get("minScore", default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise unprocessable(f"{where}.options.minScore must be a number between 0 and 1, got {value!r}")
    return float(value)


def _parse_clip(raw: Any, settings: Settings) -> ClipRequest | None:
    config = _object(raw, CLIP)
    kinds = [kind for kind in ("visual", "textual") if kind in config]
    unknown = sorted(set(config) - {"visual", "textual"})
    if unknown:
        raise unprocessable(f"unknown clip model type(s) {unknown}; expected 'visual' or 'textual'")
    if len(kinds) != 1:
        raise unprocessable("clip must hold exactly one of 'visual' or 'textual'")
    kind = kinds[0]
    part = _object(config[kind], f"clip.{kind}")
    requested = _model_name(part, f"clip.{kind}")
    options = _options(part, f"clip.{kind}")
    language = options.get("language")
    if language is not None and not isinstance(language, str):
        raise unprocessable("clip.textual.options.language must be a string")
    served = settings.resolve_clip_name(requested)
    return ClipRequest(kind, served, _text_conversion(options)) if served is not None else None


def _text_conversion(options: dict[str, Any]) -> TextConversion | None:
    value = options.get("textConversion")
    if value is None:
        return None
    for conversion in TEXT_CONVERSIONS:
        if value == conversion:
            return conversion
    raise unprocessable(
        f"clip.textual.options.textConversion must be one of {', '.join(TEXT_CONVERSIONS)}, got {value!r}"
    )


def _ocr_model(detection: str, recognition: str, settings: Settings) -> str:
    served = [settings.resolve_ocr_name(name) for name in (detection, recognition)]
    for name, resolved in zip((detection, recognition), served, strict=True):
        if resolved is None:
            raise unprocessable(unknown_ocr_model(name, settings))
    if served[0] != served[1]:
        raise unprocessable(
            f"ocr.detection ({detection!r}) and ocr.recognition ({recognition!r}) name different models; "
            "one model serves both here"
        )
    return str(served[1])


def _parse_ocr(raw: Any, settings: Settings) -> OcrRequest:
    config = _object(raw, OCR)
    unknown = sorted(set(config) - {"detection", "recognition"})
    if unknown:
        raise unprocessable(f"unknown ocr model type(s) {unknown}; expected 'detection' and 'recognition'")
    default = {"modelName": settings.ocr_default_model}
    detection = _object(config.get("detection", default), "ocr.detection")
    recognition = _object(config.get("recognition", default), "ocr.recognition")
    model = _ocr_model(
        _model_name(detection, "ocr.detection"), _model_name(recognition, "ocr.recognition"), settings
    )
    det_options = _options(detection, "ocr.detection")
    rec_options = _options(recognition, "ocr.recognition")
    resolution = det_options.get("maxResolution", DEFAULT_MAX_RESOLUTION)
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, int | float)
        or not (32 <= resolution <= MAX_RESOLUTION_LIMIT)
    ):
        raise unprocessable(
            f"ocr.detection.options.maxResolution must be a number from 32 to {MAX_RESOLUTION_LIMIT}, "
            f"got {resolution!r}"
        )
    return OcrRequest(
        OcrOptions(
            model_name=model,
            detection_min_score=_score(det_options, "ocr.detection", DEFAULT_DETECTION_MIN_SCORE),
            recognition_min_score=_score(rec_options, "ocr.recognition", DEFAULT_RECOGNITION_MIN_SCORE),
            max_resolution=int(resolution),
        )
    )


def parse_entries(raw: str, settings: Settings) -> ParsedEntries:
    """Validate the entries JSON; raise 400 for malformed JSON and 422 for well-formed but invalid tasks."""
    try:
        entries = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise bad_request(f"entries is not valid JSON: {error}") from None
    entries = _object(entries, "entries")
    if not entries:
        raise unprocessable("entries holds no task; expected one or more of " + ", ".join(KNOWN_TASKS))
    unknown = sorted(set(entries) - set(KNOWN_TASKS))
    if unknown:
        raise unprocessable(f"unknown task(s) {unknown}; supported: {', '.join(KNOWN_TASKS)}")
    parsed = ParsedEntries()
    if CLIP in entries:
        parsed.clip = _parse_clip(entries[CLIP], settings)
        if parsed.clip is None:
            parsed.remote[CLIP] = entries[CLIP]
    if OCR in entries:
        parsed.ocr = _parse_ocr(entries[OCR], settings)
    if FACIAL_RECOGNITION in entries:
        _object(entries[FACIAL_RECOGNITION], FACIAL_RECOGNITION)
        parsed.remote[FACIAL_RECOGNITION] = entries[FACIAL_RECOGNITION]
    if parsed.remote and settings.upstream_url is None:
        raise unprocessable(_not_served_message(parsed.remote, settings))
    return parsed


def _not_served_message(remote: dict[str, Any], settings: Settings) -> str:
    what = []
    for task, config in remote.items():
        if task == CLIP:
            names = [part.get("modelName") for part in config.values() if isinstance(part, dict)]
            aliases = ", ".join(f"{k}={v}" for k, v in settings.clip_aliases.items()) or "none"
            what.append(
                f"CLIP model {names[0]!r} is neither a Chinese-CLIP model nor an alias (aliases: {aliases})"
            )
        else:
            what.append(f"task {task!r} is not served locally")
    return "; ".join(what) + "; and no upstream ML URL is configured (set IMMICH_AIO_ML_UPSTREAM_URL)"


def embedding_json(vector: NDArray[np.float32]) -> str:
    """An embedding as Immich stores it: a JSON array in a string (also valid pgvector input)."""
    return json.dumps([float(v) for v in vector.astype(np.float32).tolist()], separators=(",", ":"))
