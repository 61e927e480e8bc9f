"""What `immich-aio serve` prints before serving: its address, servable models, upstream, settings read."""

import os
from typing import Any

from ml_service import __version__
from ml_service.catalogue import ModelCatalogue
from ml_service.config import Settings, variables_set

# Values of these variables are secrets: the block names them, never shows them.
_SECRET_MARKERS = ("KEY", "TOKEN", "PASSWORD")


def _shown(variable: str, value: str) -> str:
    secret = any(marker in variable for marker in _SECRET_MARKERS)
    return f"{variable}=***" if secret else f"{variable}={value}"


def _listen_url(settings: Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def _ocr_line(settings: Settings, catalogue: ModelCatalogue) -> str:
    served = [f"{m['model']} ({m['source']})" for m in catalogue.ocr_status()]
    line = f"  OCR models: {', '.join(served) or 'none'}; default {settings.ocr_default_model}"
    mapped = {**settings.ocr_aliases, **settings.ocr_substitutes()}
    if mapped:
        line += "; answered by another: " + ", ".join(f"{name} -> {to}" for name, to in mapped.items())
    return line


def _clip_state(settings: Settings, status: dict[str, Any]) -> str:
    if status["prebuilt"]:
        return "graphs present"
    if status["present"]:
        return "checkpoint present"
    return "downloaded on first use" if settings.clip_download else "missing (downloads off)"


def _clip_line(settings: Settings, catalogue: ModelCatalogue) -> str:
    by_state: dict[str, list[str]] = {}
    for status in catalogue.clip_status():
        by_state.setdefault(_clip_state(settings, status), []).append(status["model"])
    models = "; ".join(f"{state}: {', '.join(names)}" for state, names in by_state.items())
    line = f"  CLIP models ({settings.clip_backend}, {settings.clip_weights_dir}) {models}"
    if settings.clip_aliases:
        line += "; aliases: " + ", ".join(f"{name} -> {to}" for name, to in settings.clip_aliases.items())
    return line


def startup_block(settings: Settings, catalogue: ModelCatalogue, flags: tuple[str, ...] = ()) -> str:
    """What this service will do, in a few lines: printed once, before the per-request log lines."""
    upstream = settings.upstream_url or "none (faces and other CLIP models are refused with a 422)"
    read = [_shown(name, os.environ[name]) for name in variables_set()]
    lines = [
        f"immich-aio ML {__version__} listening on {_listen_url(settings)}",
        _ocr_line(settings, catalogue),
        _clip_line(settings, catalogue),
        f"  upstream ML (faces, other CLIP models): {upstream}",
        "  settings: environment "
        + (", ".join(read) if read else "(no IMMICH_AIO_ML_* / Immich variable set: defaults)")
        + (f"; flags: {' '.join(flags)}" if flags else ""),
    ]
    if settings.preload:
        lines.append(f"  loading at start: {', '.join(settings.preload)}")
    return "\n".join(lines)
