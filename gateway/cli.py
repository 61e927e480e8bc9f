"""Command-line entry for the gateway (`immich-aio gateway`, `immich-aio gateway config nginx`)."""

from __future__ import annotations

import logging
from typing import Any

import typer

from gateway.proxy_config import PROXY_KINDS, ProxyKind, render

app = typer.Typer(
    help="Chinese search for the official Immich images: a gateway in front of an unmodified server.",
    invoke_without_command=True,
)


@app.callback()
def gateway(
    context: typer.Context,
    immich_url: str | None = typer.Option(
        None,
        "--immich-url",
        help="The Immich server, e.g. http://immich-server:2283 (env IMMICH_AIO_GATEWAY_IMMICH_URL).",
    ),
    db_url: str | None = typer.Option(
        None, "--db-url", help="Immich's PostgreSQL DSN (env IMMICH_AIO_GATEWAY_DB_URL)."
    ),
    host: str | None = typer.Option(None, "--host", help="Interface to listen on (default 0.0.0.0)."),
    port: int | None = typer.Option(None, "--port", help="Port to listen on (default 2283, Immich's own)."),
    hybrid: bool | None = typer.Option(
        None, "--hybrid/--no-hybrid", help="Fuse OCR into plain smart search (default on)."
    ),
) -> None:
    """Start the gateway: search answered with immich-aio's ranking, everything else passed to Immich."""
    if context.invoked_subcommand is not None:
        return
    # The root CLI imports this module in the patcher-only install, which lacks uvicorn and starlette.
    import uvicorn
    from pydantic import ValidationError

    # (the same reason) starlette, psycopg_pool and pydantic-settings come with the `gateway` extra
    from gateway.app import create_app
    from gateway.settings import GatewaySettings

    flags: dict[str, Any] = {
        "immich_url": immich_url,
        "db_url": db_url,
        "host": host,
        "port": port,
        "hybrid": hybrid,
    }
    try:
        settings = GatewaySettings(**{name: value for name, value in flags.items() if value is not None})
    except ValidationError as error:
        missing = ", ".join(str(e["loc"][0]).replace("_", "-") for e in error.errors())
        typer.echo(f"error: check --{missing} (or the IMMICH_AIO_GATEWAY_* variables): {error}", err=True)
        raise typer.Exit(code=2) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call would drown the gateway's
    where = f"http://{settings.host}:{settings.port}"
    typer.echo(f"immich-aio gateway: listening on {where}, Immich at {settings.immich_url}")
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level="warning", access_log=False
    )


@app.command("config")
def config(
    kind: str = typer.Argument(..., help=f"One of {', '.join(PROXY_KINDS)}."),
    gateway_address: str = typer.Option("127.0.0.1:2283", "--gateway", help="host:port of the gateway."),
    listen: str = typer.Option("80", "--listen", help="nginx: what the server block listens on."),
    site: str = typer.Option("photos.example.com", "--site", help="Caddy / Traefik: the site's host name."),
) -> None:
    """Print a reverse-proxy snippet that forwards to the gateway (for a proxy already in front of Immich)."""
    if kind not in PROXY_KINDS:
        typer.echo(f"error: unknown proxy {kind!r}; choose one of {', '.join(PROXY_KINDS)}", err=True)
        raise typer.Exit(code=2)
    chosen: ProxyKind = kind  # type: ignore[assignment]
    typer.echo(render(chosen, gateway=gateway_address, listen=listen, site=site), nl=False)
