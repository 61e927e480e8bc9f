"""JSON Schemas of the ML API's bodies: Immich's entries and answers, MT Photos' answers, errors, model state.

They say what the server checks, no more and no less, so that schema-valid requests are accepted
and schema-invalid ones refused (schemathesis holds the service to both).
"""

import sys
from typing import Any

from ml_service.config import Settings
from ml_service.models.clip.checkpoint import checkpoint_path
from ml_service.models.clip.names import CLIP_MODELS, clip_release
from ml_service.models.clip.script import TEXT_CONVERSIONS
from ml_service.protocol import MAX_RESOLUTION_LIMIT

Schema = dict[str, Any]

# Exactly the characters str.strip() removes, so "not blank" means here what it means to the server.
_BLANKS = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
NOT_BLANK = f"[^{_BLANKS}]"


def ref(name: str) -> Schema:
    """A reference to one of component_schemas()."""
    return {"$ref": f"#/components/schemas/{name}"}


def _answerable(settings: Settings) -> list[str]:
    """Chinese-CLIP names (and aliases) a request may use: all, unless downloads are off, when only
    those whose checkpoint is in place (all again when none is, as each would answer 503)."""
    models = list(CLIP_MODELS)
    if not settings.clip_download:
        present = [
            m for m in models if checkpoint_path(settings.clip_weights_dir, str(clip_release(m))).is_file()
        ]
        models = present or models
    return [*models, *(alias for alias, target in settings.clip_aliases.items() if target in models)]


def _clip_model_name(settings: Settings) -> Schema:
    names = _answerable(settings)
    if settings.upstream_url is None:
        return {
            "type": "string",
            "enum": names,
            "description": "A Chinese-CLIP model or an alias of one (no upstream serves other names).",
        }
    return {
        "type": "string",
        "pattern": NOT_BLANK,
        "examples": names,
        "description": "Chinese-CLIP models and aliases are served here; other names go upstream.",
    }


def component_schemas(settings: Settings) -> dict[str, Schema]:
    """The schemas the operations refer to (``#/components/schemas/<name>``)."""
    model_name = {
        "type": "string",
        "pattern": NOT_BLANK,
        "examples": sorted(settings.ocr_models()),
        "description": "A model served here (also with Immich's `CH__` prefix), an alias of one, or a "
        "PP-OCRv6 tier (answered by the nearest tier served); any other name is a 422.",
    }
    score = {"type": "number", "minimum": 0, "maximum": 1}
    options: Schema = {"type": ["object", "null"]}
    clip_model = {
        "type": "object",
        "required": ["modelName"],
        "properties": {
            "modelName": _clip_model_name(settings),
            "options": {
                **options,
                "properties": {
                    "language": {"type": ["string", "null"], "examples": ["zh-CN"]},
                    "textConversion": {
                        "enum": [*TEXT_CONVERSIONS, None],
                        "description": "How a textual query is read in Simplified Chinese before it is "
                        "encoded (off: as typed); absent: the service's IMMICH_AIO_ML_CLIP_TEXT_CONVERSION.",
                    },
                },
            },
        },
    }
    return {
        "ModelStatus": MODEL_STATUS,
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "PredictEntries": {
            "type": "object",
            "description": "What to compute, as Immich sends it: one or more tasks.",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {
                "clip": ref("ClipEntry"),
                "ocr": ref("OcrEntry"),
                **(
                    {"facial-recognition": {"type": "object", "description": "Forwarded to the upstream ML."}}
                    if settings.upstream_url
                    else {}
                ),
            },
            "examples": [
                {"clip": {"textual": {"modelName": "ViT-B-16__cn-clip", "options": {"language": "zh-CN"}}}},
                {"clip": {"visual": {"modelName": "ViT-B-16__cn-clip"}}},
                {"ocr": {"detection": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.5}}}},
            ],
        },
        "ClipEntry": {
            "type": "object",
            "description": "Exactly one encoder: `visual` (needs `image`) or `textual` (needs `text`).",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
            "properties": {"visual": clip_model, "textual": clip_model},
        },
        "OcrEntry": {
            "type": "object",
            "description": "Text detection and recognition (needs `image`); both parts are optional.",
            "additionalProperties": False,
            "properties": {
                "detection": {
                    "type": "object",
                    "required": ["modelName"],
                    "properties": {
                        "modelName": model_name,
                        "options": {
                            **options,
                            "properties": {
                                "minScore": {**score, "default": 0.5, "description": "Box threshold."},
                                "maxResolution": {
                                    "type": "number",
                                    "minimum": 32,
                                    "maximum": MAX_RESOLUTION_LIMIT,
                                    "default": 736,
                                    "description": "Shorter side scaled down to this first.",
                                },
                            },
                        },
                    },
                },
                "recognition": {
                    "type": "object",
                    "required": ["modelName"],
                    "properties": {
                        "modelName": model_name,
                        "options": {
                            **options,
                            "properties": {
                                "minScore": {**score, "default": 0.8, "description": "Text threshold."}
                            },
                        },
                    },
                },
            },
        },
        "PredictResponse": {
            "type": "object",
            "description": "One key per task asked; `imageWidth`/`imageHeight` whenever an image came.",
            "properties": {
                "clip": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "description": "L2-normalised embedding: a JSON array in a string (pgvector input).",
                    "examples": ["[0.0123,-0.0456,0.0789]"],
                },
                "ocr": ref("OcrResult"),
                "facial-recognition": {
                    "type": "array",
                    "items": {"type": "object"},
                    "description": "The upstream server's answer, unchanged.",
                },
                "imageWidth": {"type": "integer", "minimum": 1},
                "imageHeight": {"type": "integer", "minimum": 1},
            },
        },
        "OcrResult": {
            "type": "object",
            "description": "Lines in reading order; `box` holds 8 numbers per line (4 corners clockwise from "
            "top-left, x and y normalised to 0..1).",
            "required": ["text", "box", "boxScore", "textScore"],
            "properties": {
                "text": {"type": "array", "items": {"type": "string"}},
                "box": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}},
                "boxScore": {"type": "array", "items": score},
                "textScore": {"type": "array", "items": score},
            },
        },
        "MtPhotosVector": {
            "type": "object",
            "required": ["result"],
            "properties": {"result": {"type": "array", "items": {"type": "string"}}},
        },
        "MtPhotosOcr": {
            "type": "object",
            "required": ["result"],
            "properties": {
                "result": {
                    "type": "object",
                    "required": ["texts", "scores", "boxes"],
                    "properties": {
                        "texts": {"type": "array", "items": {"type": "string"}},
                        "scores": {"type": "array", "items": {"type": "string"}},
                        "boxes": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["x", "y", "width", "height"],
                                "properties": {k: {"type": "string"} for k in ("x", "y", "width", "height")},
                            },
                        },
                    },
                },
            },
        },
    }


MODEL_STATUS: Schema = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "dimension": {"type": "integer"},
        "file": {"type": "string", "description": "The checkpoint file expected in the weights directory."},
        "present": {"type": "boolean"},
        "url": {"type": "string", "description": "Where a missing checkpoint is downloaded from."},
        "downloading": {
            "type": ["object", "null"],
            "properties": {"bytes_done": {"type": "integer"}, "bytes_total": {"type": ["integer", "null"]}},
        },
        "download_error": {"type": ["string", "null"]},
        "loaded": {
            "type": "object",
            "description": "Loaded encoders (clip-visual, clip-textual) and the backend serving each.",
            "additionalProperties": {"type": "string"},
        },
    },
}
