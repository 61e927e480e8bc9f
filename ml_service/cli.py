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
    from ml_service.startup import startup_block

    # each flag: the setting it stands for, and the value given (None: not given)
    flags = {
        "--host": ("host", host),
        "--port": ("port", port),
        "--upstream": ("upstream_url", upstream),
        "--weights-dir": ("clip_weights_dir", weights_dir),
        "--mirror": ("clip_mirror_url", mirror),
        "--backend": ("clip_backend", backend),
        "--preload": ("preload", preload),
        "--log-level": ("log_level", log_level),
    }
    given = {flag: setting for flag, setting in flags.items() if setting[1] is not None}
    try:
        settings = Settings.from_env(**dict(given.values()))
    except SettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None
    setup_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    typer.echo(startup_block(settings, app.state.service.catalogue, tuple(given)), err=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
