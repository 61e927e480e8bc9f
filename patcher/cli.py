"""The patcher's commands of `immich-aio`: patch, status, revert, check, verify, list, port."""

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from patcher import check as check_module
from patcher import engine, gitops, manifest, port, store_edit, verify, verify_plan
from patcher.errors import PatcherError
from patcher.state import read_state
from patcher.versions import normalize

app = typer.Typer(
    help="Patch Immich checkouts and check every release.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

console = Console()
errors = Console(stderr=True, soft_wrap=True)

SourceOption = Annotated[
    str,
    typer.Option("--source", help="Upstream Immich git repository: a local path/mirror or a URL."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
SeriesOption = Annotated[
    str | None,
    typer.Option(
        "--series",
        help="Use this series even where the manifest does not map the release to it (trying a new release).",
    ),
]


def fail(error: PatcherError) -> NoReturn:
    errors.print(f"[bold red]error:[/] {error}", markup=True, highlight=False)
    raise typer.Exit(error.exit_code)


def emit_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def say_recovered(tree: Path, recovered: str | None) -> None:
    """Tell that an earlier patch or revert of this tree had been killed, and what was done about it."""
    if recovered:
        console.print(f"{tree}: {recovered}.", highlight=False)


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


@app.command("patch")
def patch_command(
    immich_version: Annotated[
        str | None, typer.Option("--immich-version", help="Release to patch, e.g. v3.1.0.")
    ] = None,
    source: SourceOption = gitops.UPSTREAM_URL,
    dest: Annotated[Path | None, typer.Option(help="Where to clone (default ./immich-<version>).")] = None,
    in_place: Annotated[
        Path | None, typer.Option("--in-place", help="Patch this existing checkout instead of cloning.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Patch even if the checkout has uncommitted changes.")] = False,
    series_name: SeriesOption = None,
    as_json: JsonOption = False,
) -> None:
    """Clone an Immich release (or use --in-place DIR) and apply the matching patch series."""
    try:
        patches = manifest.load()
        if in_place is not None:
            tag = immich_version or _tag_of(in_place)
            tag, series = _resolve(patches, tag, series_name)
            tree = in_place
        else:
            if immich_version is None:
                raise PatcherError("give --immich-version (or --in-place DIR)")
            tag, series = _resolve(patches, immich_version, series_name)
            tree = dest or Path(f"immich-{tag}")
            with progress_bar() as bar:
                task = bar.add_task(f"cloning {tag}", total=1.0)

                def report(stage: str, fraction: float | None) -> None:
                    bar.update(task, description=f"cloning {tag}: {stage}", completed=fraction or 0)

                gitops.clone_release(source, tag, tree, report)
        with progress_bar() as bar:
            bar.add_task(f"applying series {series.name}", total=None)
            outcome = engine.apply_series(tree, series, tag, patches.root, force=force, source=source)
    except PatcherError as error:
        fail(error)
    if as_json:
        emit_json(outcome.to_json())
        return
    say_recovered(outcome.tree, outcome.recovered)
    if outcome.already_applied:
        console.print(f"{outcome.tree}: series {outcome.series} is already applied; nothing to do.")
    else:
        console.print(
            f"{outcome.tree}: applied series {outcome.series} to Immich {tag} "
            f"({len(outcome.patches)} patches, {len(outcome.placed)} files placed; {outcome.method})."
        )
        for p in outcome.patches:
            console.print(f"  {p.name}: {p.method}")


def _resolve(
    patches: manifest.Manifest, version: str, series_name: str | None
) -> tuple[str, manifest.Series]:
    """The release and its series; with --series, that series whatever the manifest maps the release to."""
    if series_name is None:
        tag, series = patches.resolve(version)
        if version.strip().lstrip("v") != tag.lstrip("v"):
            errors.print(f"{version} is Immich {tag} (series {series.name})", highlight=False)
        return tag, series
    series = patches.by_name(series_name)
    tag = normalize(version)
    if not series.serves(tag):
        errors.print(f"note: series {series.name} does not serve {tag}; trying it anyway")
    return tag, series


def _tag_of(tree: Path) -> str:
    """The release tag a checkout sits on (its HEAD's tag), for --in-place without --immich-version."""
    top = gitops.open_checkout(tree)
    result = gitops.run(top, "describe", "--tags", "--exact-match", "HEAD", check=False)
    if result.returncode != 0:
        raise PatcherError(f"cannot tell which Immich release {tree} is; pass --immich-version")
    return result.stdout.strip()


def _series_of(tree: Path) -> manifest.Series | None:
    patches = manifest.load()
    state = read_state(gitops.open_checkout(tree))
    if state:
        return patches.by_name(state.series)
    try:
        return patches.series_for(_tag_of(tree))
    except PatcherError:
        return None


@app.command("status")
def status_command(
    tree: Annotated[Path, typer.Argument(help="An Immich checkout.")], as_json: JsonOption = False
) -> None:
    """Tell which series and patches are applied to a checkout."""
    try:
        result = engine.status(tree, _series_of(tree), manifest.load().root)
    except PatcherError as error:
        fail(error)
    if as_json:
        emit_json(result.to_json())
        return
    say_recovered(result.tree, result.recovered)
    if result.recorded:
        r = result.recorded
        console.print(
            f"{result.tree}: patched with series {r.series} for Immich {r.immich_version} ({r.tool})"
        )
    else:
        console.print(f"{result.tree}: not patched by immich-aio")
    table = Table("patch", "state", "method")
    for p in result.patches:
        table.add_row(p.name, p.state, p.method or "-")
    if result.patches:
        console.print(table)
    if result.up_to_date is False:
        console.print(
            "[yellow]out of date:[/] the series changed since this tree was patched; "
            "run `immich-aio revert` and patch again"
        )
    if result.modified_since:
        console.print(f"[yellow]changed since patching:[/] {', '.join(result.modified_since)}")


@app.command("revert")
def revert_command(
    tree: Annotated[Path, typer.Argument(help="A checkout patched by immich-aio.")],
    as_json: JsonOption = False,
) -> None:
    """Restore the upstream files of a patched checkout byte for byte."""
    try:
        outcome = engine.revert(tree)
    except PatcherError as error:
        fail(error)
    if as_json:
        emit_json(outcome.to_json())
        return
    say_recovered(tree, outcome.recovered)
    if outcome.series is not None:
        back = f"the tree is back to upstream {outcome.immich_version}"
        console.print(f"{tree}: reverted series {outcome.series}; {back}.")


@app.command("check")
def check_command(
    versions: Annotated[str, typer.Option(help="Releases: v3.0.0..v3.1.0, a comma list, or one tag.")],
    source: SourceOption = gitops.UPSTREAM_URL,
    output_format: Annotated[str, typer.Option("--format", help="table, json or markdown.")] = "table",
    series_name: SeriesOption = None,
) -> None:
    """For every release in a range, tell whether its series applies cleanly, by 3-way merge, or not."""
    if output_format not in ("table", "json", "markdown"):
        fail(PatcherError(f"--format must be table, json or markdown, not {output_format!r}"))
    try:
        patches = manifest.load()
        tags = check_module.versions_to_check(source, versions, patches.supported())
        with progress_bar() as bar:
            task = bar.add_task("checking", total=len(tags))

            def advance(row: check_module.CheckRow) -> None:
                bar.update(task, advance=1, description=f"checked {row.version}: {row.result}")

            series = patches.by_name(series_name) if series_name else None
            rows = check_module.check_matrix(patches, source, tags, advance, series)
    except PatcherError as error:
        fail(error)
    if output_format == "json":
        emit_json([row.to_json() for row in rows])
    elif output_format == "markdown":
        console.print(check_module.to_markdown(rows), markup=False, highlight=False)
    else:
        table = Table("version", "series", "result", "details")
        for row in rows:
            first = row.conflicts[0] if row.conflicts else {}
            detail = (
                f"{first.get('patch')}: {first.get('file')} {first.get('hunk')}" if first else row.message
            )
            table.add_row(
                row.version, row.series or "-", row.result, detail.splitlines()[0] if detail else ""
            )
        console.print(table)
        for row in rows:
            if row.result == "conflict":
                console.print(f"\n[bold]{row.version}[/]\n{row.message}", highlight=False)
    if any(row.result in ("conflict", "error") for row in rows):
        raise typer.Exit(1)


class VerifyApp(StrEnum):
    server = "server"
    web = "web"


_VERIFY_APPS: dict[VerifyApp, verify_plan.App] = {VerifyApp.server: "server", VerifyApp.web: "web"}


@app.command("verify")
def verify_command(
    tree: Annotated[Path, typer.Argument(help="A patched Immich checkout.")],
    compare_with: Annotated[
        Path | None,
        typer.Option(
            "--compare-with", help="An unpatched checkout of the same release, to label upstream failures."
        ),
    ] = None,
    only: Annotated[
        VerifyApp | None,
        typer.Option(
            "--only",
            help="Check one app alone (server: install, tsc, unit tests), e.g. when the registry lacks a "
            "package only the other app locks.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run Immich's own checks (type-check, svelte-check, unit tests) in a checkout."""
    try:
        report = verify.run_verify(tree, compare_with, errors, _VERIFY_APPS[only] if only else None)
    except PatcherError as error:
        fail(error)
    if as_json:
        emit_json(report.to_json())
    else:
        console.print(verify.render_summary(report))
    if not report.ok:
        raise typer.Exit(1)


@app.command("list")
def list_command(
    as_json: JsonOption = False,
    output_format: Annotated[
        str, typer.Option("--format", help="table or markdown (docs/served-releases.md).")
    ] = "table",
) -> None:
    """Show the supported Immich releases and the patch series serving each."""
    try:
        patches = manifest.load()
    except PatcherError as error:
        fail(error)
    if output_format == "markdown":
        sys.stdout.write(store_edit.served_markdown(patches))
        return
    rows = [(tag, s.name) for tag in patches.supported() if (s := patches.series_for(tag))]
    if as_json:
        emit_json(
            {
                "series": [
                    {
                        "name": s.name,
                        "releases": list(s.releases),
                        "base": s.base,
                        "description": s.description,
                    }
                    for s in patches.series
                ],
                "supported": [{"version": tag, "series": name} for tag, name in rows],
            }
        )
        return
    table = Table("version", "series")
    for tag, name in rows:
        table.add_row(tag, name)
    console.print(table)
    for s in patches.series:
        span = f"{s.releases[0]}..{s.releases[-1]}" if len(s.releases) > 1 else s.releases[0]
        console.print(f"series {s.name} ({span}, base {s.base}): {s.description}", highlight=False)


@app.command("port")
def port_command(
    to: Annotated[str, typer.Option("--to", help="The new Immich release, e.g. v3.2.0.")],
    from_series: Annotated[
        str | None,
        typer.Option(
            "--from", help="Series to start from (default: the one serving the nearest older release)."
        ),
    ] = None,
    source: SourceOption = gitops.UPSTREAM_URL,
    dest: Annotated[
        Path | None, typer.Option(help="Where the release is cloned (default ./immich-port-<tag>).")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--continue", help="Go on after resolving the edit the last run stopped at (`git add` it)."
        ),
    ] = False,
) -> None:
    """Carry the nearest series to a new release, one edit at a time, and record what the release needs."""
    try:
        patches = manifest.load()
        tag = normalize(to)
        tree = dest or Path(f"immich-port-{tag}")
        if resume:
            state = port.PortState.load(tree)
        else:
            serving = patches.series_for(tag)
            if serving is not None:
                raise PatcherError(f"{tag} is already served by series {serving.name}")
            series = patches.by_name(from_series) if from_series else port.nearest_series(patches, tag)
            console.print(f"porting series {series.name} (base {series.base}) to {tag} in {tree}")
            state = port.start(patches, source, tag, tree, series)
        problem = port.advance(patches, tree, state)
        if problem is not None:
            console.print(problem, markup=False, highlight=False)
            console.print(
                f"\n{state.pending} needs a person: resolve the conflicts in {tree}, `git add` the files, "
                f"then run `immich-aio port --to {tag} --dest {tree} --continue`.",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(1)
        result = port.record(patches, tree, state)
        shipped = manifest.load(patches.root)
        written = [*result.written, store_edit.write_served_doc(shipped)]
        how = "joins series" if result.joined else "is served by the new series"
        console.print(f"{tag} {how} {result.series}; written:", highlight=False)
        for path in written:
            console.print(f"  {path.relative_to(patches.root)}", highlight=False)
        console.print(f"checking {tag} ...")
        row = check_module.check_matrix(shipped, source, [tag])[0]
    except PatcherError as error:
        fail(error)
    console.print(f"check {tag}: {row.result} {row.message}".rstrip(), highlight=False)
    if row.result not in ("clean", "3way"):
        raise typer.Exit(1)
