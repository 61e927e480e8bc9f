"""Prepare and build an Immich tree: patch a fresh checkout, install with its lockfile, build server + web.

The build mirrors Immich's server/Dockerfile: `pnpm install --frozen-lockfile` (only the builds the tree's
pnpm-workspace.yaml allows, e.g. sharp and bcrypt, run their install scripts), then
`pnpm --filter @immich/sdk --filter @immich/plugin-sdk --filter immich build` for the server and
`pnpm --filter @immich/sdk --filter immich-web build` for the web app. Releases before v1.139 lock each
package with npm: as their Dockerfile, `npm ci` and `npm run build` in server/, then in
open-api/typescript-sdk/ and web/. The image serves `web/build` from `$IMMICH_BUILD_DATA/www`;
`build_data_dir` lays out that directory for a run.
A build is done once per tree content: a fingerprint of the tree is stored after a successful build and
an unchanged tree is not built again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from e2e import geodata
from patcher.errors import PatcherError
from patcher.node import Toolchain, prepare
from patcher.npm_lock import reinstall_without_container_tests
from patcher.verify import missing_packages

STAMP = "node_modules/.immich-aio-e2e-build.json"
# the smallest valid WebAssembly module: magic number and version 1, no sections
EMPTY_WASM_MODULE = b"\x00asm\x01\x00\x00\x00"
BUILD_ENV = {"COREPACK_ENABLE_DOWNLOAD_PROMPT": "0", "SHARP_IGNORE_GLOBAL_LIBVIPS": "true"}


class BuildError(RuntimeError):
    """Preparing or building the Immich tree failed; the message names the step and its log."""


@dataclass
class BuildResult:
    """What `build_tree` did: per step seconds, or that the cached build was reused."""

    tree: Path
    fingerprint: str
    reused: bool
    steps: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def find_toolchain(tree: Path) -> Toolchain:
    """Node and pnpm or npm as the tree asks for them (the patcher's toolchain discovery, cached installs)."""
    try:
        return prepare(tree)
    except PatcherError as error:
        raise BuildError(str(error)) from error


def tree_fingerprint(tree: Path) -> str:
    """A hash of the tree's source state: HEAD, uncommitted changes and untracked (non-ignored) files."""
    digest = hashlib.sha256()

    def git(*args: str) -> bytes:
        return subprocess.run(["git", *args], cwd=tree, check=True, capture_output=True).stdout

    digest.update(git("rev-parse", "HEAD"))
    digest.update(git("diff", "HEAD", "--binary"))
    for name in sorted(git("ls-files", "--others", "--exclude-standard", "-z").split(b"\0")):
        if name:
            digest.update(name)
            path = tree / name.decode()
            if path.is_file():
                digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def fill_absent_assets(tree: Path) -> list[str]:
    """Put stand-ins for binary assets some mirrors lack, so the web build can run; returns what was added.

    The Immich mirror here drops a few large binaries (e.g. the GoogleSans font the web CSS imports). A
    real upstream clone has them and nothing is changed.
    """
    added: list[str] = []
    fonts = tree / "web" / "src" / "lib" / "assets" / "fonts"
    sans, code = fonts / "GoogleSans" / "GoogleSans.ttf", fonts / "GoogleSansCode" / "GoogleSansCode.ttf"
    if not sans.exists() and code.exists():
        sans.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(code, sans)
        added.append(str(sans.relative_to(tree)))
    return added


@dataclass(frozen=True)
class BuildStep:
    """One command of the build, run in `folder` of the tree."""

    argv: list[str]
    folder: str = "."


def _run_step(name: str, step: BuildStep, tree: Path, env: dict[str, str], log_dir: Path) -> float:
    log_path = log_dir / f"build-{name}.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        # nice: the web build saturates both cores; let interactive work and other jobs go first.
        result = subprocess.run(
            ["nice", "-n", "10", *step.argv],
            cwd=tree / step.folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-25:])
        raise BuildError(f"build step {name} failed (exit {result.returncode}); log {log_path}:\n{tail}")
    return time.monotonic() - started


def is_built(tree: Path, stamp: dict[str, object], fingerprint: str, web: bool) -> bool:
    """Whether the build recorded in `stamp` is this tree's and has what is wanted (the web app too?)."""
    if stamp.get("fingerprint") != fingerprint or not (tree / "server" / "dist" / "main.js").exists():
        return False
    if not web:
        return True
    # a stamp from before server-only builds has no "web" entry: those builds always made the web app
    return stamp.get("web", True) is True and (tree / "web" / "build" / "index.html").exists()


def build_commands(pnpm: str, store: list[str], web: bool) -> dict[str, list[str]]:
    """The build's steps. Without the web app, install and build only the server and what it depends on.

    The server-only install leaves out packages only the web app locks (a registry mirror may lack one:
    Immich v2.2.0-v2.2.3's `@immich/ui@0.40.2`); Immich's server starts without the web build (it logs
    that it skips SSR and serves the API).
    """
    if not web:
        return {
            "install": [pnpm, "install", "--frozen-lockfile", "--filter", "immich...", *store],
            "server": [pnpm, "--filter", "immich...", "build"],
        }
    return {
        "install": [pnpm, "install", "--frozen-lockfile", *store],
        "server": [
            pnpm,
            "--filter",
            "@immich/sdk",
            "--filter",
            "@immich/plugin-sdk",
            "--filter",
            "immich",
            "build",
        ],
        "web": [pnpm, "--filter", "@immich/sdk", "--filter", "immich-web", "build"],
    }


# folder -> the step name of its build, in build order
NPM_PACKAGES = {"server": "server", "open-api/typescript-sdk": "sdk", "web": "web"}


def npm_build_commands(npm: list[str], cache: list[str], web: bool) -> dict[str, BuildStep]:
    """The build of a tree whose packages each lock with npm (v1.138 and before), as its Dockerfile runs it.

    Install scripts run (sharp and bcrypt build or fetch their binaries in them); the web app links the
    SDK as `file:../open-api/typescript-sdk`, so the SDK is built before the web app is installed.
    """
    steps: dict[str, BuildStep] = {}
    for folder, name in NPM_PACKAGES.items():
        if not web and name != "server":
            continue
        steps[f"install_{name}"] = BuildStep([*npm, "ci", *cache], folder)
        steps[name] = BuildStep([*npm, "run", "build"], folder)
    return steps


def toolchain_build_commands(toolchain: Toolchain, cache: Path, web: bool) -> dict[str, BuildStep]:
    """The build steps for the tree's own package manager, with its store or cache under `cache`."""
    if toolchain.package_manager == "npm":
        return npm_build_commands(list(toolchain.command), ["--cache", str(cache / "npm-cache")], web)
    store = ["--store-dir", str(cache / "pnpm-store")]
    return {name: BuildStep(argv) for name, argv in build_commands(toolchain.command[0], store, web).items()}


def build_tree(tree: Path, cache: Path, log_dir: Path, force: bool = False, web: bool = True) -> BuildResult:
    """Install dependencies and build server (+ web unless `web=False`), unless this tree was built before."""
    log_dir.mkdir(parents=True, exist_ok=True)
    fill_absent_assets(tree)
    fingerprint = tree_fingerprint(tree)
    stamp = tree / STAMP
    previous = json.loads(stamp.read_text(encoding="utf-8")) if stamp.exists() else {}
    if not force and is_built(tree, previous, fingerprint, web):
        return BuildResult(tree, fingerprint, reused=True)
    toolchain = find_toolchain(tree)
    env = {**toolchain.env(), **BUILD_ENV}
    result = BuildResult(tree, fingerprint, reused=False)
    for name, step in toolchain_build_commands(toolchain, cache, web).items():
        try:
            result.steps[name] = _run_step(name, step, tree, env, log_dir)
        except BuildError:
            if toolchain.package_manager != "npm":
                raise
            log = (log_dir / f"build-{name}.log").read_text(encoding="utf-8", errors="replace")
            retried = reinstall_without_container_tests(
                tree / step.folder,
                missing_packages(log),
                functools.partial(_run_step, name, step, tree, env, log_dir),
            )
            if retried is None:
                raise
            result.steps[name], _, note = retried
            result.notes.append(f"{step.folder}: {note}")
    record = {"fingerprint": fingerprint, "steps": result.steps, "web": web, "notes": result.notes}
    # npm trees (v1.138 and before) have no node_modules at their root
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return result


def build_data_dir(tree: Path, dest: Path) -> Path:
    """Lay out IMMICH_BUILD_DATA as Immich's image does: www (the web build) and geodata (a tiny stand-in)."""
    dest.mkdir(parents=True, exist_ok=True)
    www = dest / "www"
    if www.is_symlink() or www.exists():
        www.unlink()
    www.symlink_to(tree / "web" / "build", target_is_directory=True)
    geodata.write_stand_in(dest / "geodata")
    core_plugin(tree, dest)
    return dest


def core_plugin(tree: Path, dest: Path) -> None:
    """Immich v2.5-v2.7 load their core plugin at start from `$IMMICH_BUILD_DATA/corePlugin`.

    The image copies `plugins/manifest.json` and the plugin's build there (WebAssembly made by extism-js,
    a tool the tree does not install). The tree's manifest is linked; the build too when the tree has one,
    otherwise the WebAssembly file the manifest names is an empty module: the server loads it without an
    error, and only a workflow calling the plugin would fail (the e2e runs none).
    """
    manifest = tree / "plugins" / "manifest.json"
    if not manifest.is_file():
        return
    folder = dest / "corePlugin"
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    elif folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    (folder / "manifest.json").symlink_to(manifest)
    built = tree / "plugins" / "dist"
    if built.is_dir():
        (folder / "dist").symlink_to(built, target_is_directory=True)
        return
    declared = (
        json.loads(manifest.read_text(encoding="utf-8")).get("wasm", {}).get("path", "dist/plugin.wasm")
    )
    wasm = folder / str(declared)
    wasm.parent.mkdir(parents=True, exist_ok=True)
    wasm.write_bytes(EMPTY_WASM_MODULE)


def immich_aio_command() -> list[str]:
    """How to call this project's own CLI from a subprocess (the installed script, else the module)."""
    script = shutil.which("immich-aio")
    if script:
        return [script]
    return [sys.executable, "-m", "immich_aio"]


def patched_checkout(version: str, source: str, dest: Path, log_dir: Path) -> Path:
    """A checkout of `version` with the immich-aio series applied, made by `immich-aio patch`.

    An existing DEST that `immich-aio status` reports fully applied is reused (its build cache too).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    cli = immich_aio_command()
    if dest.exists():
        status = subprocess.run(
            [*cli, "status", str(dest), "--json"], capture_output=True, text=True, check=False
        )
        if status.returncode == 0 and _fully_applied(status.stdout):
            return dest
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    argv = [*cli, "patch", "--immich-version", version, "--source", source, "--dest", str(dest), "--json"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    (log_dir / "patch.log").write_text(
        f"$ {' '.join(argv)}\n{result.stdout}\n{result.stderr}", encoding="utf-8"
    )
    if result.returncode != 0:
        raise BuildError(
            f"immich-aio patch failed (exit {result.returncode}):\n{result.stderr.strip()[-3000:]}"
        )
    return dest


def _fully_applied(status_json: str) -> bool:
    """True when `immich-aio status --json` says the current series is recorded and fully applied."""
    try:
        data = json.loads(status_json)
    except json.JSONDecodeError:
        return False
    if not isinstance(data, dict) or data.get("patched") is not True or data.get("upToDate") is not True:
        return False
    patches = data.get("patches")
    return isinstance(patches, list) and all(
        isinstance(p, dict) and p.get("state") == "applied" for p in patches
    )


def prepare_tree(
    version: str, source: str, cache: Path, *, patched: bool, fresh: bool, log_dir: Path
) -> Path:
    """The checkout of `version` in the cache (`trees/<version>-patched` or `-unpatched`), made or reused."""
    dest = cache / "trees" / f"{version}-{'patched' if patched else 'unpatched'}"
    if fresh and dest.exists():
        shutil.rmtree(dest)
    if patched:
        return patched_checkout(version, source, dest, log_dir)
    return upstream_checkout(version, source, dest)


def short_head(tree: Path) -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True)
    return result.stdout.strip()


def upstream_checkout(version: str, source: str, dest: Path) -> Path:
    """A plain shallow clone of `version` (unpatched), reused when it already sits on that tag."""
    if dest.exists():
        described = subprocess.run(
            ["git", "describe", "--tags", "--exact-match", "HEAD"], cwd=dest, capture_output=True, text=True
        )
        if described.returncode == 0 and described.stdout.strip() == version:
            return dest
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "--branch", version, source, str(dest)],
        check=True,
        capture_output=True,
    )
    return dest
