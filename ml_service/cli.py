"""Command-line entry for the ML service (`immich-aio serve`)."""

import os

import typer


def _default_port() -> int:
    raw = os.environ.get("IMMICH_AIO_ML_PORT") or os.environ.get("IMMICH_PORT") or "3003"
    return int(raw) if raw.isdigit() else 3003


def serve(
    host: str = typer.Option(
        os.environ.get("IMMICH_AIO_ML_HOST") or os.environ.get("IMMICH_HOST") or "0.0.0.0",
        help="Interface to listen on (env IMMICH_AIO_ML_HOST).",
    ),
    port: int = typer.Option(
        _default_port(), help="Port (env IMMICH_AIO_ML_PORT; Immich ML's default is 3003)."
    ),
    upstream: str | None = typer.Option(
        None, help="Upstream Immich ML URL for faces and non-Chinese CLIP (env IMMICH_AIO_ML_UPSTREAM_URL)."
    ),
    weights_dir: str | None = typer.Option(
        None, help="Directory holding cn_clip checkpoints (env IMMICH_AIO_ML_CLIP_WEIGHTS_DIR)."
    ),
    backend: str | None = typer.Option(
        None, help="CLIP backend: onnx, onnx-int8 or torch (env IMMICH_AIO_ML_CLIP_BACKEND)."
    ),
    preload: str | None = typer.Option(
        None,
        help="Models to load at start, e.g. 'ocr,ViT-B-16__cn-clip' (env IMMICH_AIO_ML_PRELOAD).",
    ),
    log_level: str | None = typer.Option(
        None, help="debug, info, warning, error (env IMMICH_AIO_ML_LOG_LEVEL)."
    ),
) -> None:
    """Start the machine-learning service (Immich ML protocol + MT Photos API)."""
    import uvicorn

    from ml_service.app import create_app
    from ml_service.config import Settings, SettingsError
    from ml_service.logs import setup_logging

    flag_env = {
        "IMMICH_AIO_ML_UPSTREAM_URL": upstream,
        "IMMICH_AIO_ML_CLIP_WEIGHTS_DIR": weights_dir,
        "IMMICH_AIO_ML_CLIP_BACKEND": backend,
        "IMMICH_AIO_ML_PRELOAD": preload,
        "IMMICH_AIO_ML_LOG_LEVEL": log_level,
    }
    for name, value in flag_env.items():
        if value is not None:
            os.environ[name] = value
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None
    setup_logging(settings.log_level, settings.log_format)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
