"""Service settings: one table of typed fields, each with its default, environment variables and checks."""

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ml_service.models.clip.names import CLIP_MODELS, DEFAULT_CN_CLIP_MODEL
from ml_service.models.clip.script import TextConversion
from ml_service.models.ocr.catalog import (
    DEFAULT_OCR_MODEL,
    PP_OCRV5_SERVER,
    PP_OCRV6_TIERS,
    OcrModelFiles,
    canonical_name,
    custom_model,
    nearest_pp_ocrv6,
    shipped_models,
)
from ml_service.models.ocr.recognition import DEFAULT_BATCH


class SettingsError(ValueError):
    """A setting (an environment variable, or the flag standing for it) holds an unusable value."""


def _not_chinese_clip(name: str) -> str:
    return f"{name!r} is not a Chinese-CLIP model; use one of {', '.join(CLIP_MODELS)}"


def _check_alias_target(target: str) -> None:
    if target not in CLIP_MODELS:
        raise SettingsError(f"alias target {_not_chinese_clip(target)}")


def parse_pairs(raw: str | None, value: str = "target") -> dict[str, str]:
    """Parse ``name=value,name2=value2`` into a mapping (a value may itself hold ``=``)."""
    pairs: dict[str, str] = {}
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        name, sep, target = item.partition("=")
        name, target = name.strip(), target.strip()
        if not sep or not name or not target:
            raise SettingsError(f"entry {item!r} is not of the form name={value}")
        pairs[name] = target
    return pairs


def parse_aliases(raw: str | None) -> dict[str, str]:
    """Parse ``name=target,name2=target2`` into a mapping; targets must be Chinese-CLIP names."""
    aliases = parse_pairs(raw)
    for target in aliases.values():
        _check_alias_target(target)
    return aliases


def default_weights_dir() -> Path:
    """``$MACHINE_LEARNING_CACHE_FOLDER/cn-clip`` (Immich ML's), else ``~/.cache/immich-aio/cn-clip``."""
    cache = os.environ.get("MACHINE_LEARNING_CACHE_FOLDER", "").strip()
    base = Path(cache).expanduser() if cache else Path.home() / ".cache" / "immich-aio"
    return base / "cn-clip"


def _aliases(value: object) -> object:
    if isinstance(value, str):
        return parse_aliases(value)
    if isinstance(value, dict):
        for target in value.values():
            _check_alias_target(str(target))
    return value


def _per_model(check: Callable[[str], str], value: str) -> Callable[[object], object]:
    """A validator of ``model=value,…`` settings: keys are Chinese-CLIP names, values pass ``check``."""

    def validate(raw: object) -> object:
        pairs = parse_pairs(raw, value) if isinstance(raw, str) else raw
        if not isinstance(pairs, dict):
            return pairs
        return {_chinese_clip(str(name)): check(str(item)) for name, item in pairs.items()}

    return validate


def _http_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise SettingsError(f"{url!r} is not an http:// or https:// URL")
    return url.rstrip("/")


def _sha256(digest: str) -> str:
    if re.fullmatch(r"[0-9a-fA-F]{64}", digest) is None:
        raise SettingsError(f"{digest!r} is not a sha256 (64 hexadecimal digits)")
    return digest.lower()


def _optional_url(url: str | None) -> str | None:
    return _http_url(url) if url else None


def _chinese_clip(name: str) -> str:
    if name not in CLIP_MODELS:
        raise SettingsError(_not_chinese_clip(name))
    return name


def _ocr_aliases(value: object) -> object:
    return parse_pairs(value) if isinstance(value, str) else value


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _choice(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _expand(path: Path | None) -> Path | None:
    return path.expanduser() if path is not None else None


def _without_trailing_slash(url: str | None) -> str | None:
    return url.rstrip("/") if url else None


# Environment values are plain strings: lists are comma-separated, not JSON.
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list)]
OptionalPath = Annotated[Path | None, AfterValidator(_expand)]
LogLevel = Literal["debug", "info", "warning", "error", "critical", "verbose", "log"]


class Settings(BaseSettings):
    """Everything the service can be configured with; docs/ml_service.md lists the variables.

    Build it with ``Settings.from_env(**overrides)``: the environment, with keyword arguments (field
    names, e.g. from command-line flags) taking precedence, and a SettingsError for a bad value.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        # Overrides (flags, tests) use the field names; the environment uses the variable names.
        populate_by_name=True,
        case_sensitive=True,
        env_ignore_empty=True,
        str_strip_whitespace=True,
        extra="forbid",
        protected_namespaces=(),
    )

    host: str = Field("0.0.0.0", validation_alias=AliasChoices("IMMICH_AIO_ML_HOST", "IMMICH_HOST"))
    port: int = Field(
        3003, ge=1, le=65535, validation_alias=AliasChoices("IMMICH_AIO_ML_PORT", "IMMICH_PORT")
    )
    clip_weights_dir: Annotated[Path, AfterValidator(_expand)] = Field(
        default_factory=default_weights_dir, validation_alias="IMMICH_AIO_ML_CLIP_WEIGHTS_DIR"
    )
    clip_backend: Annotated[Literal["onnx-int8", "onnx", "torch"], BeforeValidator(_choice)] = Field(
        "onnx-int8", validation_alias="IMMICH_AIO_ML_CLIP_BACKEND"
    )
    clip_aliases: Annotated[dict[str, str], NoDecode, BeforeValidator(_aliases)] = Field(
        default_factory=dict, validation_alias="IMMICH_AIO_ML_CLIP_ALIASES"
    )
    clip_download: bool = Field(True, validation_alias="IMMICH_AIO_ML_CLIP_DOWNLOAD")
    clip_mirror_url: Annotated[str | None, AfterValidator(_optional_url)] = Field(
        None, validation_alias=AliasChoices("IMMICH_AIO_ML_CLIP_MIRROR_URL", "HF_ENDPOINT")
    )
    clip_model_urls: Annotated[dict[str, str], NoDecode, BeforeValidator(_per_model(_http_url, "url"))] = (
        Field(default_factory=dict, validation_alias="IMMICH_AIO_ML_CLIP_MODEL_URLS")
    )
    clip_sha256: Annotated[dict[str, str], NoDecode, BeforeValidator(_per_model(_sha256, "sha256"))] = Field(
        default_factory=dict, validation_alias="IMMICH_AIO_ML_CLIP_SHA256"
    )
    clip_download_timeout_s: float = Field(
        30.0, ge=0.1, validation_alias="IMMICH_AIO_ML_CLIP_DOWNLOAD_TIMEOUT"
    )
    clip_text_conversion: Annotated[TextConversion, BeforeValidator(_choice)] = Field(
        "t2s", validation_alias="IMMICH_AIO_ML_CLIP_TEXT_CONVERSION"
    )
    clip_default_model: Annotated[str, AfterValidator(_chinese_clip)] = Field(
        DEFAULT_CN_CLIP_MODEL, validation_alias="IMMICH_AIO_ML_CLIP_DEFAULT_MODEL"
    )
    ocr_det_model: OptionalPath = Field(None, validation_alias="IMMICH_AIO_ML_OCR_DET_MODEL")
    ocr_rec_model: OptionalPath = Field(None, validation_alias="IMMICH_AIO_ML_OCR_REC_MODEL")
    ocr_rec_keys: OptionalPath = Field(None, validation_alias="IMMICH_AIO_ML_OCR_REC_KEYS")
    ocr_cls_model: OptionalPath = Field(None, validation_alias="IMMICH_AIO_ML_OCR_CLS_MODEL")
    ocr_custom_model: str = Field(
        PP_OCRV5_SERVER, min_length=1, validation_alias="IMMICH_AIO_ML_OCR_CUSTOM_MODEL"
    )
    ocr_default_model: str = Field(DEFAULT_OCR_MODEL, validation_alias="IMMICH_AIO_ML_OCR_DEFAULT_MODEL")
    ocr_aliases: Annotated[dict[str, str], NoDecode, BeforeValidator(_ocr_aliases)] = Field(
        default_factory=dict, validation_alias="IMMICH_AIO_ML_OCR_ALIASES"
    )
    ocr_pp_ocrv6_nearest: bool = Field(True, validation_alias="IMMICH_AIO_ML_OCR_PP_OCRV6_NEAREST")
    ocr_rec_batch: int = Field(DEFAULT_BATCH, ge=1, le=64, validation_alias="IMMICH_AIO_ML_OCR_REC_BATCH")
    ocr_angle_classification: bool = Field(False, validation_alias="IMMICH_AIO_ML_OCR_ANGLE_CLASSIFICATION")
    upstream_url: Annotated[str | None, AfterValidator(_without_trailing_slash)] = Field(
        None, validation_alias=AliasChoices("IMMICH_AIO_ML_UPSTREAM_URL", "MACHINE_LEARNING_UPSTREAM_URL")
    )
    upstream_timeout_s: float = Field(120.0, ge=0.1, validation_alias="IMMICH_AIO_ML_UPSTREAM_TIMEOUT")
    upstream_connect_timeout_s: float = Field(
        5.0, ge=0.1, validation_alias="IMMICH_AIO_ML_UPSTREAM_CONNECT_TIMEOUT"
    )
    api_key: str | None = Field(None, validation_alias="IMMICH_AIO_ML_API_KEY")
    api_key_scope: Annotated[Literal["all", "mtphotos"], BeforeValidator(_choice)] = Field(
        "all", validation_alias="IMMICH_AIO_ML_API_KEY_SCOPE"
    )
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1, validation_alias="IMMICH_AIO_ML_MAX_UPLOAD_BYTES")
    max_pixels: int = Field(100_000_000, ge=1, validation_alias="IMMICH_AIO_ML_MAX_PIXELS")
    max_concurrent: int = Field(
        2,
        ge=1,
        validation_alias=AliasChoices("IMMICH_AIO_ML_MAX_CONCURRENT", "MACHINE_LEARNING_REQUEST_THREADS"),
    )
    queue_size: int = Field(64, ge=0, validation_alias="IMMICH_AIO_ML_QUEUE_SIZE")
    queue_timeout_s: float = Field(30.0, ge=0.0, validation_alias="IMMICH_AIO_ML_QUEUE_TIMEOUT")
    model_ttl_s: float = Field(300.0, ge=0.0, validation_alias="MACHINE_LEARNING_MODEL_TTL")
    model_ttl_poll_s: float = Field(10.0, ge=0.1, validation_alias="MACHINE_LEARNING_MODEL_TTL_POLL_S")
    preload: CommaList = Field((), validation_alias="IMMICH_AIO_ML_PRELOAD")
    intra_op_threads: int = Field(0, ge=0, validation_alias="MACHINE_LEARNING_MODEL_INTRA_OP_THREADS")
    inter_op_threads: int = Field(1, ge=1, validation_alias="MACHINE_LEARNING_MODEL_INTER_OP_THREADS")
    log_level: Annotated[LogLevel, BeforeValidator(_choice)] = Field(
        "info", validation_alias=AliasChoices("IMMICH_AIO_ML_LOG_LEVEL", "IMMICH_LOG_LEVEL")
    )
    log_format: Annotated[Literal["json", "text"], BeforeValidator(_choice)] = Field(
        "json", validation_alias="IMMICH_AIO_ML_LOG_FORMAT"
    )
    onnx_providers: CommaList = Field(
        ("CPUExecutionProvider",), validation_alias="IMMICH_AIO_ML_ONNX_PROVIDERS"
    )

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, values: Any) -> Any:
        # Compose files often pass `VAR=` or `VAR= ` to mean "no value": treat it like an unset variable.
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if not (isinstance(v, str) and not v.strip())}
        return values

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        """Read every setting from the environment; keyword arguments (field names) win over variables."""
        try:
            return cls(**overrides)
        except ValidationError as error:
            raise SettingsError("; ".join(_describe(detail) for detail in error.errors())) from None

    @property
    def use_cuda(self) -> bool:
        return "CUDAExecutionProvider" in self.onnx_providers

    @property
    def threads(self) -> int:
        """Intra-op threads for ONNX Runtime / torch; 0 means one per CPU core."""
        return self.intra_op_threads or (os.cpu_count() or 1)

    def resolve_clip_name(self, model_name: str) -> str | None:
        """Map a requested CLIP model name (native or alias) to a served Chinese-CLIP name, else None."""
        if model_name in CLIP_MODELS:
            return model_name
        return self.clip_aliases.get(model_name)

    def ocr_models(self) -> dict[str, OcrModelFiles]:
        """Every OCR model served here: those the installed wheels ship, and one from files set by hand."""
        models = dict(shipped_models())
        custom = custom_model(
            self.ocr_custom_model,
            self.ocr_det_model,
            self.ocr_rec_model,
            self.ocr_rec_keys,
            self.ocr_cls_model,
        )
        if custom is not None:
            models[custom.name] = custom
        return models

    def resolve_ocr_name(self, model_name: str) -> str | None:
        """Map a requested OCR model name to a served one, else None: the name itself (in Immich's
        spellings), then an alias, then for a PP-OCRv6 name the nearest PP-OCRv6 tier served here."""
        served = self.ocr_models()
        for name in (model_name, canonical_name(model_name)):
            if name in served:
                return name
            target = self.ocr_aliases.get(name)
            if target is not None and target in served:
                return target
        return nearest_pp_ocrv6(model_name, served) if self.ocr_pp_ocrv6_nearest else None

    def ocr_substitutes(self) -> dict[str, str]:
        """PP-OCRv6 tiers Immich may ask for that no file here serves, and the served tier that answers."""
        served = self.ocr_models()
        substitutes = {}
        for tier in PP_OCRV6_TIERS:
            if tier not in served and tier not in self.ocr_aliases:
                target = self.resolve_ocr_name(tier)
                if target is not None:
                    substitutes[tier] = target
        return substitutes


def variables_set() -> list[str]:
    """The environment variables of the settings table that are set (to something) in this process."""
    return [
        variable
        for field in Settings.model_fields.values()
        for variable in _variables(field)
        if os.environ.get(variable, "").strip()
    ]


def unknown_ocr_model(name: str, settings: Settings) -> str:
    """The 422 message for an OCR model name nothing here serves: what is served, and how to map a name."""
    served = sorted(settings.ocr_models())
    example = served[0] if served else DEFAULT_OCR_MODEL
    return (
        f"OCR model {name!r} is not served here; served: {', '.join(served) or 'none'} "
        f"(Immich's CH__ prefix is accepted); to serve it with one of them set "
        f"IMMICH_AIO_ML_OCR_ALIASES={name}={example}"
    )


def _variables(field: FieldInfo) -> tuple[str, ...]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(choice for choice in alias.choices if isinstance(choice, str))
    return (alias,) if isinstance(alias, str) else ()


# Errors are located by field name (overrides) or by a field's first variable name (the environment).
_FIELDS_BY_KEY = {
    key: name for name, field in Settings.model_fields.items() for key in (name, *_variables(field))
}


def _reason(error: ErrorDetails) -> str:
    context = error.get("ctx", {})
    match error["type"]:
        case "int_parsing" | "int_from_float" | "int_type":
            return "must be an integer"
        case "float_parsing" | "float_type":
            return "must be a number"
        case "bool_parsing" | "bool_type":
            return "must be true or false"
        case "greater_than_equal":
            return f"must be >= {context['ge']}"
        case "less_than_equal":
            return f"must be <= {context['le']}"
        case "literal_error":
            return f"must be one of {context['expected']}"
        case "value_error":
            return str(context["error"])
        case "extra_forbidden":
            return "is not a setting"
        case _:
            return error["msg"]


def _describe(error: ErrorDetails) -> str:
    """``VARIABLE='value': what is wrong``, naming the variable that is set when a setting has several."""
    key = str(error["loc"][0]) if error["loc"] else ""
    field = _FIELDS_BY_KEY.get(key)
    variables = _variables(Settings.model_fields[field]) if field else ()
    named = next((v for v in variables if os.environ.get(v, "").strip()), variables[0] if variables else key)
    return f"{named}={error['input']!r}: {_reason(error)}"
