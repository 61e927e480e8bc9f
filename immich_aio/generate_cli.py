"""`immich-aio generate`: remake the store's generated edits, with ml_service's model names for the table."""

from typing import Annotated

import typer
from rich.console import Console

from ml_service.models.clip.names import CLIP_MODELS
from patcher import generate, gitops, manifest
from patcher.errors import PatcherError

console = Console(stderr=True)


def generate_command(
    series_names: Annotated[
        list[str] | None,
        typer.Option(
            "--series", help="Remake this series' OpenAPI spec + SDK edit (repeatable; needs Node)."
        ),
    ] = None,
    source: Annotated[
        str, typer.Option("--source", help="Upstream Immich git repository.")
    ] = gitops.UPSTREAM_URL,
) -> None:
    """Remake patches/generated/: the CLIP model table, and with --series the OpenAPI spec + SDK."""
    try:
        shipped = manifest.load()
        written = [generate.generate_clip_models(shipped, source, CLIP_MODELS, console.print)]
        for name in series_names or []:
            written.append(generate.generate_openapi(shipped, source, shipped.by_name(name), console.print))
    except PatcherError as error:
        console.print(f"error: {error}", markup=False)
        raise typer.Exit(error.exit_code) from None
    for path in written:
        print(path.relative_to(shipped.root))
