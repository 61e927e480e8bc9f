"""`immich-aio models`: download CLIP checkpoints ahead of time (with a progress bar), list them."""

import asyncio
import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ml_service.logs import setup_logging

app = typer.Typer(
    help="CLIP checkpoints (Chinese-CLIP, QA-CLIP): where they come from; downloading them before first use.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_WEIGHTS_HELP = "Directory holding cn_clip checkpoints (env IMMICH_AIO_ML_CLIP_WEIGHTS_DIR)."
_MIRROR_HELP = (
    "Hugging Face mirror to download from, e.g. https://hf-mirror.com (env IMMICH_AIO_ML_CLIP_MIRROR_URL)."
)


def _settings(weights_dir: str | None, mirror: str | None) -> Any:
    # pydantic-settings comes with the `ml` extra, which a patcher-only install of the root CLI lacks.
    from ml_service.config import Settings, SettingsError

    overrides = {"clip_weights_dir": weights_dir, "clip_mirror_url": mirror}
    try:
        return Settings.from_env(**{name: value for name, value in overrides.items() if value is not None})
    except SettingsError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None


WeightsDirOption = Annotated[str | None, typer.Option(help=_WEIGHTS_HELP)]
MirrorOption = Annotated[str | None, typer.Option(help=_MIRROR_HELP)]


@app.command("pull")
def pull(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="CLIP model names or aliases (default: IMMICH_AIO_ML_CLIP_DEFAULT_MODEL)."),
    ] = None,
    weights_dir: WeightsDirOption = None,
    mirror: MirrorOption = None,
) -> None:
    """Download checkpoints into the weights directory now (resuming a partial file), so the first
    request does not wait. Exit code 1 when a download fails, 2 for an unknown name."""
    # Like _settings: the service's modules need the `ml` extra.
    from ml_service.checkpoints import CheckpointStore
    from ml_service.models.errors import ModelError

    settings = _settings(weights_dir, mirror)
    # The progress bar says what the service's download log would; errors still show.
    setup_logging("error", "text")
    requested = names or [settings.clip_default_model]
    served = [settings.resolve_clip_name(name) for name in requested]
    unknown = [name for name, model in zip(requested, served, strict=True) if model is None]
    if unknown:
        typer.echo(f"error: not CLIP models or aliases served here: {', '.join(unknown)}", err=True)
        raise typer.Exit(code=2)
    store = CheckpointStore(settings)
    console = Console(stderr=True)
    failed = False

    def say(line: str, style: str | None = None) -> None:
        # Whole lines, never wrapped or read as markup: paths, URLs and errors stay copyable.
        console.print(line, style=style, markup=False, highlight=False, soft_wrap=True)

    async def fetch_all(progress: Progress) -> None:
        nonlocal failed
        for model in dict.fromkeys(name for name in served if name is not None):
            source = store.source(model)
            task = progress.add_task(model, total=None)

            def update(done: int, total: int | None, task: Any = task) -> None:
                progress.update(task, completed=done, total=total)

            try:
                path = await store.ensure(model, progress=update)
            except ModelError as error:
                failed = True
                say(f"{model}: {error.message}", style="red")
                continue
            progress.update(task, completed=path.stat().st_size, total=path.stat().st_size)
            say(f"{model}: {path} (from {source.url})")

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        asyncio.run(fetch_all(progress))
    if failed:
        raise typer.Exit(code=1)


@app.command("list")
def list_models(
    weights_dir: WeightsDirOption = None,
    mirror: MirrorOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON array (camelCase keys).")] = False,
) -> None:
    """Each CLIP model: its checkpoint file, whether it is present, and the URL it comes from."""
    # Like _settings: the service's modules need the `ml` extra.
    from ml_service.checkpoints import CheckpointStore
    from ml_service.models.clip.names import CLIP_MODELS

    store = CheckpointStore(_settings(weights_dir, mirror))
    rows = []
    for model, dimension in CLIP_MODELS.items():
        source = store.source(model)
        present = source.path.is_file()
        rows.append(
            {
                "model": model,
                "dimension": dimension,
                "path": str(source.path),
                "present": present,
                "url": source.url,
            }
        )
    if json_output:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        typer.echo(f"{row['model']}  ({row['dimension']})  {'present' if row['present'] else 'missing'}")
        typer.echo(f"    file: {row['path']}")
        typer.echo(f"    from: {row['url']}")


@app.command("export")
def export(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="CLIP model names (default: IMMICH_AIO_ML_CLIP_DEFAULT_MODEL)."),
    ] = None,
    to: Annotated[
        Path, typer.Option("--to", help="Where to write the graphs: a weights directory without checkpoints.")
    ] = Path("ml-models"),
    graphs: Annotated[
        str,
        typer.Option(
            "--graphs",
            help="served: only the graph that serves each encoder (int8 where it passes the fidelity "
            "guard); all: the fp32 graphs too, so IMMICH_AIO_ML_CLIP_BACKEND=onnx can serve them.",
        ),
    ] = "served",
    weights_dir: WeightsDirOption = None,
    mirror: MirrorOption = None,
) -> None:
    """Export the ONNX graphs for a torch-free service: the ML image is built with them, and serves
    them without the checkpoints or torch."""
    # The export needs the `ml` extra (torch, cn_clip, onnx); only image builds and maintainers run it.
    from ml_service.models.clip.export import onnx_paths
    from ml_service.models.clip.names import clip_release
    from ml_service.models.clip.shipped import ShippedGraph, write_manifest
    from ml_service.models.clip.textual import ClipTextualModel
    from ml_service.models.clip.visual import ClipVisualModel

    if graphs not in ("served", "all"):
        typer.echo(f"error: --graphs is served or all, not {graphs!r}", err=True)
        raise typer.Exit(code=2)
    settings = _settings(weights_dir, mirror)
    wanted = names or [settings.clip_default_model]
    requested = [settings.resolve_clip_name(name) or name for name in wanted]
    unknown = [name for name in requested if clip_release(name) is None]
    if unknown:
        typer.echo(f"error: not CLIP models served here: {', '.join(unknown)}", err=True)
        raise typer.Exit(code=2)
    pull(requested, str(settings.clip_weights_dir), mirror)
    target = to / "onnx"
    target.mkdir(parents=True, exist_ok=True)
    for name in requested:
        release = str(clip_release(name))
        served: dict[str, ShippedGraph] = {}
        for encoder in (ClipVisualModel, ClipTextualModel):
            model = encoder(name, release, settings.clip_weights_dir, "onnx-int8", settings.threads)
            model.load()
            if model.served_graph is None:
                typer.echo(f"error: {name} {encoder.task} could not be exported to ONNX", err=True)
                raise typer.Exit(code=1)
            served[encoder.task] = ShippedGraph(model.served_graph, model.active_backend, model.int8_cosine)
            typer.echo(f"{name} {encoder.task}: {model.active_backend} ({model.served_graph.name})")
        visual, _, _ = onnx_paths(settings.clip_weights_dir, release)
        stem = visual.name.removesuffix(".visual.onnx")
        chosen = {graph.path.name for graph in served.values()}
        for path in sorted(visual.parent.glob(f"{stem}.*")):
            if path.name.endswith((".partial", ".lock", ".shipped.json")):
                continue
            destination = target / path.name
            if (graphs == "all" or path.name in chosen) and destination.resolve() != path.resolve():
                shutil.copy2(path, destination)
        write_manifest(to, release, served)
    typer.echo(f"graphs in {target}: serve them with IMMICH_AIO_ML_CLIP_WEIGHTS_DIR={to}")
