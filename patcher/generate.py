"""Remakes the store's generated edits: the Chinese-CLIP model table and each series' OpenAPI spec + SDK.

Generated edits are kept in `patches/generated/` so that `patch` needs no Node build; this module is the
command that makes them, from a release's own tree: the model table from ml_service's names (the one home of
them), the spec by building the patched server and running its `sync:open-api`, the SDK by the `oazapfts`
version the release pins with the flags of the release's own `open-api/bin/generate-open-api.sh`. A run whose
diff is unchanged keeps the file byte for byte (Last-Update included), so a second run is a no-op.
"""

import datetime
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from patcher import engine, gitops, hunk_fit, node, placement
from patcher.errors import PatcherError
from patcher.manifest import Manifest, Series
from patcher.store import GENERATED, PatchFile, split_patch
from patcher.verify import settle_native
from patcher.verify_plan import workspace_packages_to_build

CLIP_EDIT = "0005-chinese-clip-models.patch"
OPENAPI_EDIT = "0006-openapi-typescript-sdk.patch"
CONSTANTS = "server/src/constants.ts"
SPEC = "open-api/immich-openapi-specs.json"
CLIP_HEADER = (
    "Description: register the Chinese-CLIP model names served by immich-aio's ML service\n"
    " <arch>__cn-clip and QA-CLIP-ViT-B-16 with their embedding sizes in CLIP_MODEL_INFO, so an admin can\n"
    " pick one and Immich resizes the smart_search vector column itself.\n"
    "Author: immich-aio\n"
    "Forwarded: not-needed\n"
)
CLIP_COMMENT = (
    "  // Chinese-CLIP (OFA-Sys) and QA-CLIP (TencentARC), "
    "served by immich-aio's ML service under these names\n"
)

Say = Callable[[str], None]


def _write_kept(path: Path, header_fields: str, diff: str) -> Path:
    """Write header + diff, keeping Last-Update (and the file) when the diff did not change."""
    today = datetime.datetime.now(tz=datetime.UTC).date().isoformat()
    if path.is_file():
        old = split_patch(path.read_text(encoding="utf-8"))
        if "".join(s.text for s in old.sections) == diff:
            return path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{header_fields}Last-Update: {today}\n---\n{diff}", encoding="utf-8")
    return path


def clip_table(text: str, models: Mapping[str, int]) -> str:
    """constants.ts with the models added at the end of CLIP_MODEL_INFO."""
    start = text.find("export const CLIP_MODEL_INFO")
    end = text.find("\n};\n", start)
    if start < 0 or end < 0:
        raise PatcherError(f"{CONSTANTS} has no CLIP_MODEL_INFO table to add the Chinese-CLIP models to")
    rows = "".join(f"  '{name}': {{ dimSize: {size} }},\n" for name, size in models.items())
    return text[: end + 1] + CLIP_COMMENT + rows + text[end + 1 :]


def generate_clip_models(manifest: Manifest, source: str, models: Mapping[str, int], say: Say) -> Path:
    """generated/0005: the model table edit, made on the newest series' base (every release takes it)."""
    series = max(manifest.series, key=lambda s: s.releases[-1])
    with tempfile.TemporaryDirectory(prefix="immich-aio-generate-") as work:
        tree = gitops.clone_release(source, series.base, Path(work) / "tree")
        constants = tree / CONSTANTS
        constants.write_text(clip_table(constants.read_text(encoding="utf-8"), models), encoding="utf-8")
        diff = gitops.run(tree, "diff", "--", CONSTANTS).stdout
    path = manifest.root / "patches" / GENERATED / CLIP_EDIT
    say(f"{CLIP_EDIT}: {len(models)} models on {series.base}")
    return _write_kept(path, CLIP_HEADER, diff)


def _run(command: list[str], cwd: Path, toolchain: node.Toolchain, log: Path) -> None:
    with log.open("a", encoding="utf-8") as sink:
        sink.write(f"$ (cd {cwd.name} && {shlex.join(command)})\n")
        sink.flush()
        done = subprocess.run(command, cwd=cwd, env=toolchain.env(), stdout=sink, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise PatcherError(f"`{shlex.join(command)}` failed in {cwd.name}; see {log}")


def oazapfts_flags(tree: Path) -> list[str]:
    """The flags the release's own generator passes to oazapfts (its mise task, or generate-open-api.sh)."""
    for script in (tree / "mise.toml", tree / "open-api" / "bin" / "generate-open-api.sh"):
        lines = script.read_text(encoding="utf-8").splitlines() if script.is_file() else []
        for line in lines:
            if re.search(r"\boazapfts\s+--", line):
                words = shlex.split(line.strip().strip('",'))
                after = words[[w.rsplit("/", 1)[-1] for w in words].index("oazapfts") + 1 :]
                return [word for word in after if word.startswith("--")]
    raise PatcherError(
        "the release runs no oazapfts (neither mise.toml nor open-api/bin/generate-open-api.sh)"
    )


def oazapfts_version(tree: Path, series: Series) -> str:
    """The oazapfts the release pins (mise.toml), else the one the manifest records for the series: the
    version that regenerates the release's own committed SDK from its committed spec byte for byte."""
    mise = tree / "mise.toml"
    if mise.is_file():
        match = re.search(r'"npm:oazapfts"\s*=\s*"([^"]+)"', mise.read_text(encoding="utf-8"))
        if match:
            return match.group(1)
    if series.oazapfts:
        return series.oazapfts
    raise PatcherError(
        f"series {series.name}: the release pins no oazapfts; record `oazapfts` in the manifest"
    )


def sdk_folder(tree: Path) -> str:
    return (
        "packages/sdk"
        if (tree / "packages" / "sdk" / "package.json").is_file()
        else "open-api/typescript-sdk"
    )


def patch_without_generated(
    manifest: Manifest, series: Series, tree: Path, tag: str | None = None, source: str | None = None
) -> None:
    """Place the series' files and apply its hand-written edits, as `patch` does, to the base (or `tag`)."""
    tag = tag or series.base
    context = placement.template_context(tag, series)
    placement.place(tree, series.placements(manifest.root, tag), manifest.root, context)
    if tag != series.base and source:
        gitops.fetch_tag(tree, source, series.base)  # the 3-way merges' common ancestor
    for patch in series.patches(tag):
        if GENERATED not in patch.path.parts:
            engine.apply_one(tree, patch, series.base)


def _takes(tree: Path) -> Callable[[str], bool]:
    """Whether the release checked out at `tree` takes a patch text exactly."""
    return lambda text: engine.applies_exactly(tree, PatchFile(OPENAPI_EDIT, text, ()))


def fit_to_line(manifest: Manifest, source: str, series: Series, diff: str, say: Say) -> str:
    """The base's diff, its hunks' outer context trimmed where another release of the line differs."""
    for tag in series.releases:
        if tag == series.base:
            continue
        with tempfile.TemporaryDirectory(prefix="immich-aio-fit-") as work:
            tree = gitops.clone_release(source, tag, Path(work) / "tree")
            patch_without_generated(manifest, series, tree, tag, source)
            fitted = hunk_fit.fit(diff, _takes(tree), tag)
        if fitted != diff:
            say(f"{series.name}: context trimmed where {tag} differs")
        diff = fitted
    return diff


def generate_openapi(manifest: Manifest, source: str, series: Series, say: Say) -> Path:
    """generated/<series>/0006: the spec and SDK the patched base's own generators make."""
    with tempfile.TemporaryDirectory(prefix="immich-aio-generate-") as work:
        tree = gitops.clone_release(source, series.base, Path(work) / "tree")
        patch_without_generated(manifest, series, tree)
        toolchain = node.prepare(tree)
        log = Path(work) / "generate.log"
        pm = list(toolchain.command)
        sdk = sdk_folder(tree)
        version = oazapfts_version(tree, series)
        flags = oazapfts_flags(tree)
        tool = f"{toolchain.package_manager} {toolchain.package_manager_version}"
        say(f"{series.name}: {tool}, oazapfts {version}")
        try:
            packages = workspace_packages_to_build(tree, ("server",))
            if toolchain.package_manager == "pnpm":
                filters = [x for folder in ("server...", *packages) for x in ("--filter", f"./{folder}")]
                _run(
                    [*pm, "install", "--frozen-lockfile", "--ignore-scripts", *filters], tree, toolchain, log
                )
                dlx = [*pm, "dlx", f"oazapfts@{version}"]
            else:
                _run([*pm, "ci", "--ignore-scripts"], tree / "server", toolchain, log)
                settle_native(toolchain, tree / "server", log)  # bcrypt, which the spec's app loads
                dlx = [*pm, "exec", "--yes", f"--package=oazapfts@{version}", "--", "oazapfts"]
            say(f"{series.name}: building the server and writing the spec")
            for folder in packages:
                _run([*pm, "run", "build"], tree / folder, toolchain, log)
            _run([*pm, "run", "build"], tree / "server", toolchain, log)
            _run([str(toolchain.node), "dist/bin/sync-open-api.js"], tree / "server", toolchain, log)
            say(f"{series.name}: writing the SDK")
            spec = f"../../{SPEC}" if sdk == "packages/sdk" else "../immich-openapi-specs.json"
            _run([*dlx, *flags, spec, "src/fetch-client.ts"], tree / sdk, toolchain, log)
        except PatcherError:
            say((log.read_text(encoding="utf-8", errors="replace"))[-3000:])
            raise
        diff = gitops.run(tree, "diff", "--", SPEC, f"{sdk}/src/fetch-client.ts").stdout
    diff = fit_to_line(manifest, source, series, diff, say)
    path = manifest.root / "patches" / GENERATED / series.name / OPENAPI_EDIT
    if not path.is_file():
        raise PatcherError(f"{path} does not exist: a new series copies its header from its neighbour first")
    header = split_patch(path.read_text(encoding="utf-8")).header
    kept = [line for line in header.splitlines(keepends=True) if not line.startswith(("Last-Update", "---"))]
    return _write_kept(path, "".join(kept), diff)
