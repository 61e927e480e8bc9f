"""The `immich-aio e2e` command: run the end-to-end proof and print its summary."""

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from patcher.gitops import UPSTREAM_URL
from patcher.node import cache_root


def default_cache() -> Path:
    """$IMMICH_AIO_CACHE/e2e (default ~/.cache/immich-aio/e2e), next to the patcher's toolchains."""
    return cache_root() / "e2e"


def e2e(
    immich_version: Annotated[
        str, typer.Option("--immich-version", help="Immich release, e.g. v3.1.0.")
    ] = "v3.1.0",
    source: Annotated[
        str, typer.Option("--source", help="Upstream Immich git repository: a local path/mirror or a URL.")
    ] = UPSTREAM_URL,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the stack running after the checks (Ctrl-C stops it).")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Report directory (default CACHE/reports/<version>-<time>)."),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            envvar="IMMICH_AIO_E2E_CACHE",
            help="Where checkouts, builds, pnpm store and model files are kept between runs.",
        ),
    ] = None,
    unpatched: Annotated[
        bool, typer.Option("--unpatched", help="Run against the plain upstream release (a baseline).")
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url", help="Use this PostgreSQL (pgvector + contrib) instead of a throwaway one."
        ),
    ] = None,
    skip_browser: Annotated[
        bool, typer.Option("--skip-browser", help="Leave out the browser steps.")
    ] = False,
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Re-clone, re-patch and rebuild instead of reusing the cached tree."),
    ] = False,
    gateway: Annotated[
        bool,
        typer.Option(
            "--gateway", help="With --unpatched: clients reach the server through `immich-aio gateway`."
        ),
    ] = False,
    nginx: Annotated[
        bool,
        typer.Option("--nginx", help="With --gateway: Debian's nginx (the printed snippet) in front of it."),
    ] = False,
) -> None:
    """Patch, build and start a real Immich with ml_service and PostgreSQL, then prove it works end to end."""
    # e2e.run needs the [ml] and [db] extras (Pillow, psycopg); a patcher-only install still starts the CLI.
    from e2e.run import RunOptions, run

    if gateway and not unpatched:
        Console(stderr=True).print(
            "error: --gateway stands in front of an unmodified server: add --unpatched"
        )
        raise typer.Exit(2)
    if nginx and not gateway:
        Console(stderr=True).print("error: --nginx puts nginx in front of the gateway: add --gateway")
        raise typer.Exit(2)

    cache_dir = (cache or default_cache()).resolve()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    report_dir = (report or cache_dir / "reports" / f"{immich_version}-{stamp}").resolve()
    options = RunOptions(
        version=immich_version,
        source=source,
        report_dir=report_dir,
        cache=cache_dir,
        unpatched=unpatched,
        keep=keep,
        database_url=database_url,
        skip_browser=skip_browser,
        fresh=fresh,
        front="nginx" if nginx else "gateway" if gateway else "none",
    )
    result = run(options)
    console = Console()
    console.print(result.to_markdown(), markup=False, highlight=False)
    console.print(f"report: {report_dir / 'summary.md'}", markup=False)
    raise typer.Exit(result.exit_code)


def e2e_switch(
    path: Annotated[
        str,
        typer.Option(
            "--path",
            help="Servers opening one library in turn: vX.Y.Z (patched) or vX.Y.Z:stock, comma separated.",
        ),
    ] = "v3.0.3,v3.1.0,v3.1.0:stock,v3.1.0",
    source: Annotated[
        str, typer.Option("--source", help="Upstream Immich git repository: a local path/mirror or a URL.")
    ] = UPSTREAM_URL,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Report directory (default CACHE/reports/switch-<time>)."),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache", envvar="IMMICH_AIO_E2E_CACHE", help="Checkouts, builds and models between runs."
        ),
    ] = None,
) -> None:
    """Upgrade and switch one real library between patched and stock Immich servers, checking each stage."""
    # e2e.switch needs the [ml] extra (Pillow); a patcher-only install still starts the CLI.
    from e2e.switch import PathError, SwitchOptions, parse_path, run_switch

    try:
        stages = parse_path(path)
    except PathError as error:
        Console(stderr=True).print(f"error: {error}", markup=False)
        raise typer.Exit(2) from None
    cache_dir = (cache or default_cache()).resolve()
    report_dir = (report or cache_dir / "reports" / f"switch-{time.strftime('%Y%m%dT%H%M%S')}").resolve()
    result = run_switch(SwitchOptions(stages, source, report_dir, cache_dir))
    console = Console()
    console.print(result.to_markdown(), markup=False, highlight=False)
    console.print(f"report: {report_dir / 'summary.md'}", markup=False)
    raise typer.Exit(result.exit_code)


def main() -> None:
    """Run `e2e` as a stand-alone command (python -m e2e.cli)."""
    typer.run(e2e)


if __name__ == "__main__":
    main()
