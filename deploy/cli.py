"""The deploy commands of `immich-aio`: build (images), compose (the stack), upstream, ci-template."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, NoReturn, cast

import typer
from rich.console import Console

import gateway.releases as releases
from deploy import builders, compose, upstream
from deploy.context import missing_sources
from deploy.images import (
    DEFAULT_PREFIX,
    IMAGES,
    ImageName,
    ImagePlan,
    PlanError,
    ml_context_steps,
    ml_plan,
    postgres_plan,
    server_plan,
)
from ml_service.models.clip.names import DEFAULT_CN_CLIP_MODEL
from patcher import engine, gitops, manifest
from patcher.errors import PatcherError
from patcher.manifest import repository_root
from patcher.node import cache_root
from patcher.versions import normalize, parse

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)
console = Console()
errors = Console(stderr=True, soft_wrap=True)

VersionOption = Annotated[str, typer.Option("--immich-version", help="Immich release, e.g. v3.1.0.")]
PrefixOption = Annotated[
    str, typer.Option("--tag", help="Image name prefix (registry/namespace), e.g. ghcr.io/you.")
]
SourceOption = Annotated[
    str, typer.Option("--source", help="Upstream Immich git repository: a local path/mirror or a URL.")
]
SeriesOption = Annotated[
    str | None,
    typer.Option("--series", help="Use this series, e.g. on a release the manifest does not map yet."),
]
TreeOption = Annotated[
    Path | None,
    typer.Option("--tree", help="The patched checkout (default ./immich-<version>, patched if absent)."),
]


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


def source_root() -> Path:
    """The immich-aio source folder: the ML and database images are built from it."""
    return repository_root()


def ml_context() -> Path:
    """Where the ML image's build context is assembled (the wheel and the exported graphs)."""
    return cache_root() / "images" / "ml-context"


def release(version: str, series_name: str | None) -> tuple[str, manifest.Series]:
    """The release and its series: the manifest's, or the one --series names (trying a newer release)."""
    patches = manifest.load()
    if series_name is None:
        return patches.resolve(version)
    return normalize(version), patches.by_name(series_name)


def patched_tree(
    version: str, series_name: str | None, tree: Path | None, source: str
) -> tuple[str, manifest.Series, Path]:
    """The release, its series and its patched checkout (cloned and patched here when absent)."""
    patches = manifest.load()
    tag, series = release(version, series_name)
    path = tree or Path(f"immich-{tag}")
    if not path.exists():
        gitops.clone_release(source, tag, path)
    engine.apply_series(path, series, tag, patches.root, source=source)
    return tag, series, path


@contextmanager
def readable_tree(path: Path, tag: str, source: str) -> Iterator[Path]:
    """A checkout of `tag` to read the release's files from: `path` itself, or a temporary clone."""
    if path.exists():
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="immich-aio-plan-") as scratch:
        yield gitops.clone_release(source, tag, Path(scratch) / "immich")


def ml_image(prefix: str, variant: str) -> ImagePlan:
    return ml_plan(source_root(), prefix, ml_context(), "cuda" if variant == "cuda" else "cpu")


def plans(
    images: list[ImageName], tag: str, series: manifest.Series, tree: Path, prefix: str, variant: str
) -> list[ImagePlan]:
    root = source_root()
    commit = gitops.run(tree, "rev-parse", "HEAD").stdout.strip()
    chosen: list[ImagePlan] = []
    for image in images:
        if image == "server":
            chosen.append(server_plan(tree, tag, series, manifest.load().root, prefix, commit))
        elif image == "ml":
            chosen.append(ml_image(prefix, variant))
        else:
            chosen.append(postgres_plan(root, tree, prefix))
    return chosen


def relocated(plan: ImagePlan, read_from: Path, tree: Path) -> ImagePlan:
    """The plan as it applies to `tree` when it was made from a scratch clone at `read_from`."""

    def move(path: Path) -> Path:
        return tree / path.relative_to(read_from) if path.is_relative_to(read_from) else path

    return replace(plan, dockerfile=move(plan.dockerfile), context=move(plan.context))


def parse_images(raw: str) -> list[ImageName]:
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in IMAGES]
    if unknown or not names:
        fail(f"--images takes a comma list of {', '.join(IMAGES)}, not {raw!r}", 2)
    return [cast(ImageName, name) for name in names]


@app.command("build")
def build_command(
    immich_version: VersionOption,
    prefix: PrefixOption = DEFAULT_PREFIX,
    push: Annotated[bool, typer.Option("--push", help="Push the images after building them.")] = False,
    builder: Annotated[
        str | None, typer.Option("--builder", help="docker, podman or buildah (default: the first found).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the exact commands; change nothing.")
    ] = False,
    platform: Annotated[str | None, typer.Option("--platform", help="e.g. linux/amd64,linux/arm64.")] = None,
    images: Annotated[
        str, typer.Option("--images", help="Which images: server,ml,postgres.")
    ] = "server,ml,postgres",
    variant: Annotated[str, typer.Option("--variant", help="ML image: cpu or cuda.")] = "cpu",
    ml_models: Annotated[
        str,
        typer.Option(
            "--ml-models", help="ML image: the Chinese-CLIP models whose graphs it carries (comma list)."
        ),
    ] = DEFAULT_CN_CLIP_MODEL,
    ml_graphs: Annotated[
        str,
        typer.Option(
            "--ml-graphs",
            help="ML image: served (the graph each encoder serves, int8 where faithful) or all (fp32 too).",
        ),
    ] = "served",
    tree: TreeOption = None,
    series_name: SeriesOption = None,
    source: SourceOption = gitops.UPSTREAM_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Build the patched Immich server image, the ML service image and the zhparser PostgreSQL image."""
    chosen = parse_images(images)
    if builder is not None and builder not in builders.BUILDERS:
        fail(f"--builder must be one of {', '.join(builders.BUILDERS)}", 2)
    if variant not in ("cpu", "cuda"):
        fail("--variant must be cpu or cuda", 2)
    if ml_graphs not in ("served", "all"):
        fail("--ml-graphs must be served or all", 2)
    wanted = next((b for b in builders.BUILDERS if b == builder), None)
    steps: list[list[str]] = []
    try:
        if dry_run:
            found = shutil.which(wanted or "") if wanted else None
            name, executable = (wanted, found or wanted) if wanted else _any_builder()
        else:
            name, executable = builders.find_builder(wanted)
        if chosen == ["ml"]:  # the ML image is the same for every release: no Immich checkout needed
            planned = [ml_image(prefix, variant)]
        elif dry_run:
            tag, series = release(immich_version, series_name)
            path = tree or Path(f"immich-{tag}")
            if not path.exists():
                steps.append(
                    ["immich-aio", "patch", "--immich-version", tag, "--source", source, "--dest", str(path)]
                )
            with readable_tree(path, tag, source) as read_from:
                planned = [
                    relocated(p, read_from, path)
                    for p in plans(chosen, tag, series, read_from, prefix, variant)
                ]
        else:
            tag, series, path = patched_tree(immich_version, series_name, tree, source)
            planned = plans(chosen, tag, series, path, prefix, variant)
    except (PatcherError, PlanError, builders.BuilderError) as error:
        fail(str(error), getattr(error, "exit_code", 1))
    models = [model.strip() for model in ml_models.split(",") if model.strip()]
    preparing: list[list[str]] = []
    if "ml" in chosen:
        if not models:
            fail("--ml-models names no model", 2)
        context = ml_context()
        preparing = [
            ["rm", "-rf", str(context)],
            *ml_context_steps(source_root(), context, models, cast(Literal["served", "all"], ml_graphs)),
        ]
    if not dry_run:
        run_all(preparing)
    if not steps:  # with a checkout at hand, every plan's context must hold what its Dockerfile copies
        for plan in planned:
            if dry_run and plan.image == "ml":
                continue  # its context is assembled by the steps above
            check_context(plan)
    builds = [builders.build_command(name, executable, plan, platform) for plan in planned]
    commands = steps + preparing + builds
    if push:
        commands += [builders.push_command(executable, plan.tag) for plan in planned]
    if as_json:
        sys.stdout.write(
            json.dumps({"plans": [p.to_json() for p in planned], "commands": commands}, indent=2) + "\n"
        )
    if dry_run:
        if not as_json:
            for command in commands:
                console.print(shlex.join(command), markup=False, highlight=False, soft_wrap=True)
        return
    run_all(commands[len(preparing) :])
    for plan in planned:
        errors.print(f"built {plan.tag}", markup=False)


def run_all(commands: list[list[str]]) -> None:
    for command in commands:
        errors.print(f"$ {shlex.join(command)}", markup=False, highlight=False)
        if subprocess.run(command, check=False).returncode != 0:
            fail(f"the build failed: {shlex.join(command)}")


def check_context(plan: ImagePlan) -> None:
    missing = missing_sources(plan.dockerfile, plan.context)
    if missing:
        names = ", ".join(f"{m.path} (line {m.line})" for m in missing)
        fail(
            f"the {plan.image} image's context {plan.context} lacks what "
            f"{plan.dockerfile.name} copies: {names}"
        )


def _any_builder() -> tuple[builders.Builder, str]:
    """For a dry run: the builder a real run would pick, else docker (the commands read the same)."""
    try:
        return builders.find_builder(None)
    except builders.BuilderError:
        return "docker", "docker"


def gateway_compose(
    version: str, tree: Path | None, source: str, prefix: str, directory: Path
) -> compose.ComposeResult:
    """The release's own stack with its official images, the ML service and the gateway (no image build)."""
    tag = normalize(version)
    if parse(tag).release < releases.OLDEST_SERVED:
        fail(f"the gateway serves Immich v2.2.0 and newer (OCR arrived in v2.2.0), not {tag}", 2)
    with readable_tree(tree or Path(f"immich-{tag}"), tag, source) as path:
        return compose.write_stack(path, tag, {"ml": ml_image(prefix, "cpu")}, directory, gateway=True)


@app.command("compose")
def compose_command(
    immich_version: VersionOption,
    directory: Annotated[Path, typer.Option("--dir", help="Where to write docker-compose.yml and .env.")],
    prefix: PrefixOption = DEFAULT_PREFIX,
    tree: TreeOption = None,
    series_name: SeriesOption = None,
    source: SourceOption = gitops.UPSTREAM_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
    gateway: Annotated[
        bool,
        typer.Option(
            "--gateway", help="The official images behind `immich-aio gateway` (any release from v2.2.0)."
        ),
    ] = False,
) -> None:
    """Write the compose stack of a release: patched server, ML service, zhparser database, Immich's .env."""
    try:
        if gateway:
            result = gateway_compose(immich_version, tree, source, prefix, directory)
        else:
            tag, series, path = patched_tree(immich_version, series_name, tree, source)
            images: dict[str, ImagePlan] = {
                p.image: p for p in plans(list(IMAGES), tag, series, path, prefix, "cpu")
            }
            result = compose.write_stack(path, tag, images, directory)
    except (PatcherError, PlanError, compose.ComposeError) as error:
        fail(str(error), getattr(error, "exit_code", 1))
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    console.print(f"wrote {result.compose} ({', '.join(result.services)}) and {result.env}", markup=False)
    if result.kept_env:
        console.print(f"kept your .env values of {', '.join(result.kept_env)}", markup=False)
    if result.backup:
        console.print(f"your earlier compose file is kept as {result.backup}", markup=False)


@app.command("upstream")
def upstream_command(
    source: SourceOption = gitops.UPSTREAM_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List upstream releases newer than the newest one a series serves."""
    try:
        patches = manifest.load()
        newest, newer = upstream.newer_releases(patches, source)
    except PatcherError as error:
        fail(str(error), error.exit_code)
    serving = patches.series_for(newest) if newest else None
    series = serving.name if serving else None
    if as_json:
        sys.stdout.write(json.dumps({"newestServed": newest, "series": series, "newer": newer}) + "\n")
        return
    if not newer:
        console.print(f"nothing newer than {newest} (series {series})", markup=False)
        return
    console.print(f"newer than {newest} (series {series}): {', '.join(newer)}", markup=False)


@app.command("ci-template")
def ci_template_command() -> None:
    """Print a GitHub Actions workflow that follows upstream releases (save as .github/workflows/…)."""
    text = resources.files("deploy").joinpath("immich-aio.workflow.yml").read_text(encoding="utf-8")
    sys.stdout.write(text)
