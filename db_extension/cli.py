"""Command-line verbs for the database side (`immich-aio db ...`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from db_extension.backfill import ProgressCallback
from db_extension.backfill import backfill as run_backfill
from db_extension.backfill import reconcile as run_reconcile
from db_extension.errors import DbExtensionError
from db_extension.installer import SYNC_MODES, Status, SyncMode
from db_extension.installer import install as run_install
from db_extension.installer import status as read_status
from db_extension.installer import uninstall as run_uninstall
from db_extension.search import search as run_search
from ml_service.models.clip.names import UPSTREAM_ALIAS_MODEL

app = typer.Typer(help="Install, inspect and query the Chinese OCR/hybrid search SQL.", no_args_is_help=True)

DSN_OPTION = typer.Option(..., "--dsn", envvar="IMMICH_AIO_DSN", help="PostgreSQL connection string.")


def _fail(error: Exception) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False)
    return typer.Exit(code=1)


def _print_status(status: Status) -> None:
    table = Table(show_header=False, box=None)
    for key, value in status.to_json().items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    Console().print(table)


@contextmanager
def _asset_progress() -> Iterator[ProgressCallback]:
    """A progress bar over assets; yields the callback that moves it."""
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
    ) as progress:
        task = progress.add_task("assets", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield report


@app.command()
def install(
    dsn: str = DSN_OPTION,
    backfill: bool = typer.Option(
        True, help="Build documents for existing OCR rows in the same transaction."
    ),
    sync_mode: str | None = typer.Option(
        None,
        "--sync-mode",
        help="always: the triggers keep documents current for every writer (an unpatched Immich); "
        "patched-server: only for the patched server, which reconciles at start. Default: keep the "
        "database's mode (always for a new install).",
    ),
) -> None:
    """Install (or upgrade) the SQL objects; safe to run again."""
    if sync_mode is not None and sync_mode not in SYNC_MODES:
        raise _fail(DbExtensionError(f"--sync-mode must be one of {', '.join(SYNC_MODES)}"))
    mode = cast(SyncMode, sync_mode) if sync_mode else None
    try:
        status = run_install(dsn, backfill=backfill, sync_mode=mode)
    except DbExtensionError as error:
        raise _fail(error) from error
    if status.reconcile_queued and backfill:
        # documents of an earlier format were queued by the install: rebuild them now, in batches
        with _asset_progress() as report:
            try:
                run_reconcile(dsn, on_progress=report)
            except DbExtensionError as error:
                raise _fail(error) from error
        status = read_status(dsn)
    typer.echo(f"installed immich_aio version {status.version} using the {status.segmenter} segmenter")
    _print_status(status)


@app.command()
def status(dsn: str = DSN_OPTION, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show whether the SQL is installed and which segmenter it uses."""
    try:
        current = read_status(dsn)
    except DbExtensionError as error:
        raise _fail(error) from error
    if as_json:
        typer.echo(json.dumps(current.to_json()))
    else:
        _print_status(current)
    if not current.installed:
        raise typer.Exit(code=3)


@app.command()
def uninstall(dsn: str = DSN_OPTION) -> None:
    """Remove immich-aio's schema and triggers; Immich's own data is untouched."""
    try:
        run_uninstall(dsn)
    except DbExtensionError as error:
        raise _fail(error) from error
    typer.echo("removed schema immich_aio and its triggers")


@app.command()
def backfill(
    dsn: str = DSN_OPTION,
    batch_size: int = typer.Option(1000, min=1, max=100_000, help="Assets per committed batch."),
    restart: bool = typer.Option(
        False, help="Ignore a previous interrupted run and start from the beginning."
    ),
) -> None:
    """Build OCR documents for existing rows (resumable, batched)."""
    with _asset_progress() as report:
        try:
            result = run_backfill(dsn, batch_size=batch_size, restart=restart, on_progress=report)
        except DbExtensionError as error:
            raise _fail(error) from error
    resumed = f" (resumed after {result.resumed_from})" if result.resumed_from else ""
    typer.echo(
        f"backfilled {result.assets} assets, {result.documents_written} documents written, "
        f"{result.removed_orphans} stale removed in {result.seconds:.1f} s{resumed}"
    )


@app.command()
def reconcile(
    dsn: str = DSN_OPTION,
    batch_size: int = typer.Option(1000, min=1, max=100_000, help="Assets per committed batch."),
) -> None:
    """Rebuild the documents of assets that changed while the triggers were off (resumable, batched)."""
    with _asset_progress() as report:
        try:
            result = run_reconcile(dsn, batch_size=batch_size, on_progress=report)
        except DbExtensionError as error:
            raise _fail(error) from error
    typer.echo(
        f"reconciled: {result.queued} assets queued, {result.rebuilt} documents written, "
        f"{result.recopied} owner/visibility copies fixed in {result.seconds:.1f} s"
    )


@app.command()
def search(
    query: str = typer.Argument(..., help="Search text; prefix with ocr: to search OCR text only."),
    dsn: str = DSN_OPTION,
    user: str = typer.Option(..., "--user", help="The searching user's id."),
    limit: int = typer.Option(20, min=1, max=1000),
    offset: int = typer.Option(0, min=0),
    ml_url: str | None = typer.Option(None, "--ml-url", help="ML service for the text embedding (hybrid)."),
    model: str = typer.Option(UPSTREAM_ALIAS_MODEL, help="CLIP model name sent to the ML service."),
    mode: str = typer.Option("rrf", help="Fusion: rrf or weighted."),
    k: int = typer.Option(60, min=1, help="RRF constant k."),
    partners: bool = typer.Option(True, help="Include partners who share into the user's timeline."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list of {assetId, score, ...}."),
) -> None:
    """Search: `ocr:TEXT` ranks OCR text only; anything else fuses CLIP and OCR ranking."""
    if mode not in ("rrf", "weighted"):
        raise _fail(DbExtensionError("--mode must be rrf or weighted"))
    try:
        hits = run_search(
            dsn,
            query=query,
            user_id=user,
            limit=limit,
            offset=offset,
            ml_url=ml_url,
            model=model,
            mode="weighted" if mode == "weighted" else "rrf",
            k=k,
            with_partners=partners,
        )
    except DbExtensionError as error:
        raise _fail(error) from error
    if as_json:
        typer.echo(json.dumps([hit.to_json() for hit in hits], ensure_ascii=False))
        return
    table = Table("#", "assetId", "score", "clip rank", "ocr rank")
    for position, hit in enumerate(hits, start=offset + 1):
        table.add_row(
            str(position),
            hit.assetId,
            f"{hit.score:.5f}",
            "" if hit.clipRank is None else str(hit.clipRank),
            "" if hit.ocrRank is None else str(hit.ocrRank),
        )
    Console().print(table)
