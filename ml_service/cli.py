"""Command-line entry for the ML service (`immich-aio serve`)."""

import typer

from ml_service.logs import setup_logging


def serve(
    host: str | None = typer.Option(None, help="Interface to listen on (env IMMICH_AIO_ML_HOST)."),
    port: int | None = typer.Option(None, help="Port (env IMMICH_AIO_ML_PORT; Immich ML's default is 3003)."),
    upstream: str | None = typer.Option(
        None, help="Upstream Immich ML URL for faces and non-Chinese CLIP (env IMMICH_AIO_ML_UPSTREAM_URL)."
    ),
    weights_dir: str | None = typer.Option(
        None, help="Directory holding cn_clip checkpoints (env IMMICH_AIO_ML_CLIP_WEIGHTS_DIR)."
    ),
    mirror: str | None = typer.Option(
        None, help="Hugging Face mirror for checkpoint downloads (env IMMICH_AIO_ML_CLIP_MIRROR_URL)."
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
    # The root CLI imports this module in the patcher-only install, which lacks uvicorn (the `ml` extra).
    import uvicorn

    # Likewise fastapi (needed by ml_service.app) and pydantic-settings (by ml_service.config).
    from ml_service.app import create_app
    from ml_service.config import Settings, SettingsError

    flags = {
        "host": host,
        "port": port,
        "upstream_url": upstream,
        "clip_weights_dir": weights_dir,
        "clip_mirror_url": mirror,
        "clip_backend": backend,
        "preload": preload,
        "log_level": log_level,
    }
    try:
        settings = Settings.from_env(**{name: value for name, value in flags.items() if value is not None})
    except SettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None
    setup_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
