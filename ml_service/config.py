"""Service settings read from environment variables (Immich-ML-like names) with typed defaults."""

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ml_service.models.clip_names import CN_CLIP_MODELS, DEFAULT_CN_CLIP_MODEL


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


def _env(names: tuple[str, ...]) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value is not None and value.strip() != "":
            return value.strip()
    return None


def _int(names: tuple[str, ...], default: int, minimum: int = 0) -> int:
    raw = _env(names)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{names[0]} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{names[0]} must be >= {minimum}, got {value}")
    return value


def _float(names: tuple[str, ...], default: float, minimum: float = 0.0) -> float:
    raw = _env(names)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{names[0]} must be a number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{names[0]} must be >= {minimum}, got {value}")
    return value


def _choice(names: tuple[str, ...], default: str, choices: tuple[str, ...]) -> str:
    raw = (_env(names) or default).lower()
    if raw not in choices:
        raise SettingsError(f"{names[0]} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _path(names: tuple[str, ...]) -> Path | None:
    raw = _env(names)
    return Path(raw).expanduser() if raw else None


def parse_aliases(raw: str | None) -> dict[str, str]:
    """Parse ``name=target,name2=target2`` into a mapping; targets must be Chinese-CLIP names."""
    aliases: dict[str, str] = {}
    if not raw:
        return aliases
    for item in raw.split(","):
        if not item.strip():
            continue
        name, sep, target = item.partition("=")
        name, target = name.strip(), target.strip()
        if not sep or not name or not target:
            raise SettingsError(f"IMMICH_AIO_ML_CLIP_ALIASES entry {item!r} is not of the form name=target")
        if target not in CN_CLIP_MODELS:
            known = ", ".join(CN_CLIP_MODELS)
            raise SettingsError(f"alias target {target!r} is not a Chinese-CLIP model; use one of {known}")
        aliases[name] = target
    return aliases


def default_weights_dir() -> Path:
    cache = _path(("MACHINE_LEARNING_CACHE_FOLDER",))
    base = cache if cache is not None else Path.home() / ".cache" / "immich-aio"
    return base / "cn-clip"


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with; see docs/ml_service.md for the variables."""

    clip_weights_dir: Path = field(default_factory=default_weights_dir)
    clip_backend: str = "onnx-int8"
    clip_aliases: dict[str, str] = field(default_factory=dict)
    clip_default_model: str = DEFAULT_CN_CLIP_MODEL
    ocr_det_model: Path | None = None
    ocr_rec_model: Path | None = None
    ocr_rec_keys: Path | None = None
    ocr_cls_model: Path | None = None
    upstream_url: str | None = None
    upstream_timeout_s: float = 120.0
    upstream_connect_timeout_s: float = 5.0
    api_key: str | None = None
    api_key_scope: str = "all"
    max_upload_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 100_000_000
    max_concurrent: int = 2
    queue_size: int = 64
    queue_timeout_s: float = 30.0
    model_ttl_s: float = 300.0
    model_ttl_poll_s: float = 10.0
    preload: tuple[str, ...] = ()
    intra_op_threads: int = 0
    inter_op_threads: int = 1
    log_level: str = "info"
    log_format: str = "json"
    onnx_providers: tuple[str, ...] = ("CPUExecutionProvider",)

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        """Read all settings from the environment; keyword arguments win over variables."""
        preload_raw = _env(("IMMICH_AIO_ML_PRELOAD",)) or ""
        upstream = _env(("IMMICH_AIO_ML_UPSTREAM_URL", "MACHINE_LEARNING_UPSTREAM_URL"))
        default_model = _env(("IMMICH_AIO_ML_CLIP_DEFAULT_MODEL",)) or DEFAULT_CN_CLIP_MODEL
        if default_model not in CN_CLIP_MODELS:
            raise SettingsError(
                f"IMMICH_AIO_ML_CLIP_DEFAULT_MODEL {default_model!r} is not a Chinese-CLIP model"
            )
        settings = cls(
            clip_weights_dir=_path(("IMMICH_AIO_ML_CLIP_WEIGHTS_DIR",)) or default_weights_dir(),
            clip_backend=_choice(
                ("IMMICH_AIO_ML_CLIP_BACKEND",), "onnx-int8", ("onnx", "onnx-int8", "torch")
            ),
            clip_aliases=parse_aliases(_env(("IMMICH_AIO_ML_CLIP_ALIASES",))),
            clip_default_model=default_model,
            ocr_det_model=_path(("IMMICH_AIO_ML_OCR_DET_MODEL",)),
            ocr_rec_model=_path(("IMMICH_AIO_ML_OCR_REC_MODEL",)),
            ocr_rec_keys=_path(("IMMICH_AIO_ML_OCR_REC_KEYS",)),
            ocr_cls_model=_path(("IMMICH_AIO_ML_OCR_CLS_MODEL",)),
            upstream_url=upstream.rstrip("/") if upstream else None,
            upstream_timeout_s=_float(("IMMICH_AIO_ML_UPSTREAM_TIMEOUT",), 120.0, 0.1),
            upstream_connect_timeout_s=_float(("IMMICH_AIO_ML_UPSTREAM_CONNECT_TIMEOUT",), 5.0, 0.1),
            api_key=_env(("IMMICH_AIO_ML_API_KEY",)),
            api_key_scope=_choice(("IMMICH_AIO_ML_API_KEY_SCOPE",), "all", ("all", "mtphotos")),
            max_upload_bytes=_int(("IMMICH_AIO_ML_MAX_UPLOAD_BYTES",), 50 * 1024 * 1024, 1),
            max_pixels=_int(("IMMICH_AIO_ML_MAX_PIXELS",), 100_000_000, 1),
            max_concurrent=_int(("IMMICH_AIO_ML_MAX_CONCURRENT", "MACHINE_LEARNING_REQUEST_THREADS"), 2, 1),
            queue_size=_int(("IMMICH_AIO_ML_QUEUE_SIZE",), 64, 0),
            queue_timeout_s=_float(("IMMICH_AIO_ML_QUEUE_TIMEOUT",), 30.0, 0.0),
            model_ttl_s=_float(("MACHINE_LEARNING_MODEL_TTL",), 300.0, 0.0),
            model_ttl_poll_s=_float(("MACHINE_LEARNING_MODEL_TTL_POLL_S",), 10.0, 0.1),
            preload=tuple(p.strip() for p in preload_raw.split(",") if p.strip()),
            intra_op_threads=_int(("MACHINE_LEARNING_MODEL_INTRA_OP_THREADS",), 0, 0),
            inter_op_threads=_int(("MACHINE_LEARNING_MODEL_INTER_OP_THREADS",), 1, 1),
            log_level=_choice(("IMMICH_AIO_ML_LOG_LEVEL", "IMMICH_LOG_LEVEL"), "info", _LOG_LEVELS),
            log_format=_choice(("IMMICH_AIO_ML_LOG_FORMAT",), "json", ("json", "text")),
            onnx_providers=tuple(
                p.strip()
                for p in (_env(("IMMICH_AIO_ML_ONNX_PROVIDERS",)) or "CPUExecutionProvider").split(",")
            ),
        )
        return replace(settings, **overrides) if overrides else settings

    @property
    def use_cuda(self) -> bool:
        return "CUDAExecutionProvider" in self.onnx_providers

    @property
    def threads(self) -> int:
        """Intra-op threads for ONNX Runtime / torch; 0 means one per CPU core."""
        return self.intra_op_threads or (os.cpu_count() or 1)

    def resolve_clip_name(self, model_name: str) -> str | None:
        """Map a requested CLIP model name (native or alias) to a served Chinese-CLIP name, else None."""
        if model_name in CN_CLIP_MODELS:
            return model_name
        return self.clip_aliases.get(model_name)


_LOG_LEVELS = ("debug", "info", "warning", "error", "critical", "verbose", "log")
