"""Which checks `immich-aio verify` runs in a tree, read from the tree's own package files."""

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from patcher.node import Toolchain

App = Literal["server", "web"]


@dataclass(frozen=True)
class Step:
    name: str
    cwd: str
    command: tuple[str, ...]
    kind: Literal["plain", "tsc", "svelte-check", "vitest"]
    required: bool = True


def _package(tree: Path, folder: str) -> dict[str, object]:
    try:
        data = json.loads((tree / folder / "package.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


def _scripts(tree: Path, folder: str) -> dict[str, str]:
    scripts = _package(tree, folder).get("scripts", {})
    return {str(k): str(v) for k, v in scripts.items()} if isinstance(scripts, dict) else {}


def _workspace_folders(tree: Path) -> list[Path]:
    """The package folders pnpm-workspace.yaml lists (packages/* where the tree has no such file)."""
    patterns = ["packages/*"]
    with contextlib.suppress(OSError, yaml.YAMLError):
        declared = yaml.safe_load((tree / "pnpm-workspace.yaml").read_text(encoding="utf-8"))
        if isinstance(declared, dict) and isinstance(declared.get("packages"), list):
            patterns = [str(p) for p in declared["packages"] if not str(p).startswith("!")]
    folders: list[Path] = []
    for pattern in patterns:
        for folder in sorted(tree.glob(pattern)):
            if (folder / "package.json").is_file() and folder not in folders:
                folders.append(folder)
    return folders


def _local_dependency(tree: Path, folder: str, name: str, spec: str, by_name: dict[str, str]) -> bool:
    """Whether `name: spec` in `folder`'s package.json names a package of the workspace.

    v3 and v2.6+ write `workspace:*`; v2.2-v2.5 write `file:../open-api/typescript-sdk`.
    """
    if name not in by_name:
        return False
    if spec.startswith("workspace:"):
        return True
    if spec.startswith(("file:", "link:")):
        target = (tree / folder / spec.split(":", 1)[1]).resolve()
        return target == (tree / by_name[name]).resolve()
    return False


def workspace_packages_to_build(tree: Path, apps: tuple[str, ...] = ("server", "web")) -> list[str]:
    """Folders of the workspace packages that `apps` depend on, dependencies first."""
    by_name: dict[str, str] = {}
    for folder in _workspace_folders(tree):
        name = json.loads((folder / "package.json").read_text(encoding="utf-8")).get("name")
        relative = str(folder.relative_to(tree))
        if isinstance(name, str) and relative not in ("server", "web"):
            by_name[name] = relative

    def workspace_deps(folder: str) -> list[str]:
        data = _package(tree, folder)
        names = []
        for key in ("dependencies", "devDependencies"):
            deps = data.get(key, {})
            if isinstance(deps, dict):
                names += [
                    n for n, spec in deps.items() if _local_dependency(tree, folder, n, str(spec), by_name)
                ]
        return sorted(names)

    ordered: list[str] = []

    def visit(name: str, trail: tuple[str, ...]) -> None:
        folder = by_name[name]
        if folder in ordered or name in trail:
            return
        for dep in workspace_deps(folder):
            visit(dep, (*trail, name))
        if "build" in _scripts(tree, folder):
            ordered.append(folder)

    for app in apps:
        for dep in workspace_deps(app):
            visit(dep, ())
    return ordered


def _vitest_config(script: str) -> tuple[str, ...]:
    match = re.search(r"--config[= ](\S+)", script)
    return ("--config", match.group(1)) if match else ()


def plan_steps(tree: Path, toolchain: Toolchain, only: App | None = None) -> list[Step]:
    """The checks for `tree`, read from its own package.json files (so they follow upstream's layout).

    `only="server"` (or `"web"`) plans that app's checks alone; with pnpm its install is filtered to that
    app and the workspace packages it depends on, so a package the other app locks but the registry lacks
    does not stop it.
    """
    pm = toolchain.command
    run = (*pm, "exec") if toolchain.package_manager == "pnpm" else (*pm, "exec", "--")
    apps: tuple[App, ...] = (only,) if only else ("server", "web")
    steps: list[Step] = []
    if toolchain.package_manager == "pnpm":
        install = (*pm, "install", "--frozen-lockfile", "--ignore-scripts")
        to_build = workspace_packages_to_build(tree, apps)
        if only:
            # a package named by a `file:` path is outside the app's filter graph, but is built below
            install += (
                "--filter",
                f"./{only}...",
                *(x for folder in to_build for x in ("--filter", f"./{folder}")),
            )
        steps.append(Step("install", ".", install, "plain"))
        for folder in to_build:
            steps.append(Step(f"build {folder}", folder, (*pm, "run", "build"), "plain"))
    else:
        for folder in (*apps, "open-api/typescript-sdk"):
            if (tree / folder / "package-lock.json").is_file():
                steps.append(Step(f"install {folder}", folder, (*pm, "ci", "--ignore-scripts"), "plain"))
        sdk = "open-api/typescript-sdk"
        if (tree / sdk / "package.json").is_file():
            steps.append(Step(f"build {sdk}", sdk, (*pm, "run", "build"), "plain"))
    if "server" in apps:
        steps.append(Step("server tsc", "server", (*run, "tsc", "--noEmit"), "tsc"))
    web_scripts = _scripts(tree, "web")
    if "web" in apps:
        steps.append(Step("web svelte-kit sync", "web", (*run, "svelte-kit", "sync"), "plain"))
        if "check:svelte" in web_scripts:
            svelte_check: tuple[str, ...] = (*pm, "run", "check:svelte")
        else:
            svelte_check = (*run, "svelte-check", "--no-tsconfig", "--fail-on-warnings")
        steps.append(Step("web svelte-check", "web", svelte_check, "svelte-check"))
    if "server" in apps:
        server_config = _vitest_config(_scripts(tree, "server").get("test", ""))
        steps.append(Step("server unit tests", "server", (*run, "vitest", "run", *server_config), "vitest"))
    if "web" in apps:
        web_config = _vitest_config(web_scripts.get("test", ""))
        steps.append(Step("web unit tests", "web", (*run, "vitest", "run", *web_config), "vitest"))
    return steps
