"""The OpenAPI description of what FastAPI cannot infer: /predict's multipart form, answers per task, errors.

The routes read their bodies themselves (to forward them byte for byte and to answer 400 rather than
FastAPI's 422 for malformed forms), so their request bodies, answers and status codes are described
here and attached to each route with ``openapi_extra``; ``install`` adds the schemas they refer to.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ml_service.api_schemas import NOT_BLANK, Schema, component_schemas, ref
from ml_service.config import Settings


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


_ERROR_MEANINGS = {
    400: "Malformed request: a body that is not the form or JSON described, `entries` missing or not JSON, "
    "image bytes that do not decode, a file sent as a text field or text that is not UTF-8.",
    401: "API key missing or wrong (headers `api-key`, `x-api-key` or `Authorization: Bearer`).",
    413: "Body above IMMICH_AIO_ML_MAX_UPLOAD_BYTES, or an image above IMMICH_AIO_ML_MAX_PIXELS.",
    422: "Well-formed but unusable: unknown task or model type, a missing `modelName`, options out of range, "
    "the text or image a task needs missing, or a model that is not served here without an upstream.",
    502: "The upstream Immich ML server is unreachable or failed (only with IMMICH_AIO_ML_UPSTREAM_URL).",
    503: "Busy (inference queue full or queue timeout), or the Chinese-CLIP checkpoint is missing and could "
    "not be downloaded: the message names the URL tried and the file to place. See Retry-After.",
    504: "The upstream Immich ML server did not answer in time (only with IMMICH_AIO_ML_UPSTREAM_URL).",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds after which trying again may succeed.",
        "schema": {"type": "string"},
    }
}


def _errors(settings: Settings, *statuses: int, protected: bool = True) -> dict[str, Any]:
    if protected and settings.api_key:
        statuses = (*statuses, 401)
    answers: dict[str, Any] = {}
    for status in sorted(statuses):
        answer: Schema = {"description": _ERROR_MEANINGS[status], "content": _json(ref("Error"))}
        if status == 503:
            answer["headers"] = _RETRY_AFTER
        answers[str(status)] = answer
    return answers


def _operation(settings: Settings, protected: bool, **parts: Any) -> Schema:
    """An operation's extra description; with a key configured it names the security it needs."""
    if protected and settings.api_key:
        parts["security"] = [{"api-key": []}, {"x-api-key": []}, {"bearer": []}]
    return parts


def _immich_protected(settings: Settings) -> bool:
    return settings.api_key_scope == "all"


def predict_operation(settings: Settings) -> Schema:
    """POST /predict: Immich's multipart form and the answers per task."""
    form = {
        "type": "object",
        "required": ["entries"],
        "properties": {
            "entries": ref("PredictEntries"),
            "image": {
                "type": "string",
                "format": "binary",
                "description": "The picture (JPEG, PNG, WebP, …): needed for `clip.visual`, `ocr` and faces.",
            },
            "text": {"type": "string", "description": "The query: needed, not blank, for `clip.textual`."},
        },
    }
    errors = (400, 413, 422, 502, 503, 504)
    return _operation(
        settings,
        _immich_protected(settings),
        summary="Run CLIP, OCR (here) and facial recognition (upstream) on an image or a text",
        requestBody={
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": form,
                    "encoding": {"entries": {"contentType": "application/json"}},
                }
            },
        },
        responses={
            "200": {
                "description": "The results of every task asked for.",
                "content": _json(ref("PredictResponse")),
            },
            **_errors(settings, *errors, protected=_immich_protected(settings)),
        },
    )


def _upload(settings: Settings, summary: str, answer: str, description: str) -> Schema:
    form = {
        "type": "object",
        "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary", "description": "The picture."}},
    }
    return _operation(
        settings,
        True,
        summary=summary,
        requestBody={"required": True, "content": {"multipart/form-data": {"schema": form}}},
        responses={
            "200": {"description": description, "content": _json(ref(answer))},
            **_errors(settings, 400, 413, 422, 503),
        },
    )


def mtphotos_ocr_operation(settings: Settings) -> Schema:
    return _upload(settings, "MT Photos: OCR", "MtPhotosOcr", "Lines with scores and pixel boxes.")


def mtphotos_image_operation(settings: Settings) -> Schema:
    return _upload(settings, "MT Photos: image embedding", "MtPhotosVector", "The embedding, as strings.")


def mtphotos_text_operation(settings: Settings) -> Schema:
    body = {
        "type": "object",
        "required": ["text"],
        "properties": {"text": {"type": "string", "pattern": NOT_BLANK}},
    }
    return _operation(
        settings,
        True,
        summary="MT Photos: text embedding",
        requestBody={"required": True, "content": _json(body)},
        responses={
            "200": {"description": "The embedding, as strings.", "content": _json(ref("MtPhotosVector"))},
            **_errors(settings, 400, 413, 422, 503),
        },
    )


def mtphotos_check_operation(settings: Settings) -> Schema:
    answer = {
        "type": "object",
        "required": ["result"],
        "properties": {"result": {"const": "pass"}, "title": {"type": "string"}, "help": {"type": "string"}},
    }
    return _operation(
        settings,
        True,
        summary="MT Photos: is the service there and the key right",
        responses={"200": {"description": "Always `pass`.", "content": _json(answer)}, **_errors(settings)},
    )


def plain_operation(settings: Settings, summary: str, description: str, protected: bool = True) -> Schema:
    """A GET answered with text: /ping (never protected) and /metrics."""
    return _operation(
        settings,
        protected,
        summary=summary,
        responses={
            "200": {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}},
            **_errors(settings, protected=protected),
        },
    )


def info_operation(settings: Settings) -> Schema:
    answer = {
        "type": "object",
        "required": ["message", "version", "models_loaded", "clip_models", "clip_model_status", "ocr_models"],
        "properties": {
            "message": {"const": "Immich ML"},
            "version": {"type": "string"},
            "models_loaded": {"type": "array", "items": {"type": "object"}},
            "clip_models": {"type": "object", "additionalProperties": {"type": "integer"}},
            "clip_model_status": {"type": "array", "items": ref("ModelStatus")},
            "clip_aliases": {"type": "object", "additionalProperties": {"type": "string"}},
            "clip_backend": {"type": "string"},
            "ocr_models": {"type": "array", "items": {"type": "object"}},
            "ocr_aliases": {"type": "object", "additionalProperties": {"type": "string"}},
            "ocr_substitutes": {"type": "object", "additionalProperties": {"type": "string"}},
            "upstream": {"type": ["string", "null"]},
        },
    }
    return _operation(
        settings,
        _immich_protected(settings),
        summary="Service, models and their state",
        responses={
            "200": {"description": "What is served and in which state.", "content": _json(answer)},
            **_errors(settings, protected=_immich_protected(settings)),
        },
    )


def install(app: FastAPI, settings: Settings) -> None:
    """Make app.openapi() return FastAPI's document plus the shared schemas and, with a key, its schemes.

    Built at each call (a few ms): with downloads off, the model names offered follow the files present.
    """

    def document() -> dict[str, Any]:
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = spec.setdefault("components", {})
        components.setdefault("schemas", {}).update(component_schemas(settings))
        if settings.api_key:
            components["securitySchemes"] = {
                "api-key": {"type": "apiKey", "in": "header", "name": "api-key"},
                "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            }
        return spec

    app.openapi = document  # type: ignore[method-assign]
