"""What an npm install as locked cannot do here: test-container packages the registry lacks, unbuilt bindings.

Immich's server locks `testcontainers` and `@testcontainers/*` as dev dependencies that only its medium
tests (`server/test/medium`, docker containers) import; neither the build nor the unit tests use them. A
registry mirror that lacks the locked version (v1.134.0 locks 10.27.0) would otherwise stop the whole
install. The package.json and package-lock.json are changed only for the install and put back after it.

An install with `--ignore-scripts` (no network beyond the registry, so no prebuilt binaries) leaves the
packages with an install script without their native part: `settle_native_packages` builds the required
ones from source (bcrypt 5, v1.133 - v1.135) and removes the optional ones, as npm removes an optional
package whose install fails (v1.134's web tests run in jsdom, which loads `canvas` whenever it is
installed and fails on a binding that was never built).
"""

import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

CONTAINER_TEST_PACKAGES = frozenset({"testcontainers", "@testcontainers/postgresql", "@testcontainers/redis"})
MANIFESTS = ("package.json", "package-lock.json")
T = TypeVar("T")


def package_name(spec: str) -> str:
    """`@scope/name@1.2.3`, `name@1.2.3` or npm's `name@<tarball URL>` -> the package name."""
    at = spec.find("@", 1)
    return spec[:at] if at > 0 else spec


def only_container_tests(missing: list[str]) -> bool:
    """Whether every missing `name@version` is a test-container package (so leaving them out is safe)."""
    return bool(missing) and all(package_name(spec) in CONTAINER_TEST_PACKAGES for spec in missing)


def _drop(manifest: dict[str, Any], names: frozenset[str]) -> list[str]:
    dropped: list[str] = []
    for key in ("devDependencies", "dependencies"):
        section = manifest.get(key)
        if isinstance(section, dict):
            for name in sorted(names & set(section)):
                del section[name]
                dropped.append(name)
    return dropped


def strip_container_tests(folder: Path) -> list[str]:
    """Remove the test-container packages from `folder`'s package.json and lockfile; returns their names."""
    manifest_path, lock_path = folder / MANIFESTS[0], folder / MANIFESTS[1]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    dropped = _drop(manifest, CONTAINER_TEST_PACKAGES)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    lock = json.loads(lock_path.read_text(encoding="utf-8"))
    packages = lock.get("packages", {})
    if isinstance(packages.get(""), dict):
        _drop(packages[""], CONTAINER_TEST_PACKAGES)
    for name in CONTAINER_TEST_PACKAGES:
        packages.pop(f"node_modules/{name}", None)
    lock_path.write_text(json.dumps(lock, indent=2) + "\n", encoding="utf-8")
    return dropped


@contextmanager
def without_container_tests(folder: Path) -> Iterator[list[str]]:
    """`folder` without the test-container packages inside the block; its manifests restored byte for byte."""
    with tempfile.TemporaryDirectory(prefix="immich-aio-npm-") as backup:
        for name in MANIFESTS:
            shutil.copy2(folder / name, Path(backup) / name)
        try:
            yield strip_container_tests(folder)
        finally:
            for name in MANIFESTS:
                shutil.copy2(Path(backup) / name, folder / name)


def reinstall_without_container_tests(
    folder: Path, missing: list[str], install: Callable[[], T]
) -> tuple[T, list[str], str] | None:
    """When the registry lacks only test-container packages: `install()` again without them.

    Returns its result, the packages left out and a note saying so; None when other packages are missing.
    """
    if not only_container_tests(missing):
        return None
    with without_container_tests(folder) as dropped:
        result = install()
    note = (
        f"installed without {', '.join(dropped)}: the registry lacks {', '.join(missing)}, "
        "which only Immich's medium tests use"
    )
    return result, dropped, note


def imports_any(source: Path, names: Iterable[str]) -> bool:
    """Whether the TypeScript file `source` imports one of the packages `names` (or a subpath of one)."""
    try:
        text = source.read_text(encoding="utf-8")
    except OSError:
        return False
    imported = re.findall(r"""(?:from|import|require\()\s*['"]([^'"]+)['"]""", text)
    return any(spec == name or spec.startswith(f"{name}/") for spec in imported for name in names)


def settle_native_packages(
    folder: Path, loads: Callable[[str], bool], rebuild: Callable[[str], bool]
) -> tuple[list[str], list[str]]:
    """After `npm ci --ignore-scripts`: (removed, rebuilt) packages whose install script was never run.

    A package with an install script that `require()` cannot load is, when optional, removed, as npm
    removes an optional package whose install fails; when required and a native addon (`binding.gyp`), built
    from source with `rebuild`. A package that loads (its binary shipped in a sibling package) is left alone.
    """
    lock = json.loads((folder / MANIFESTS[1]).read_text(encoding="utf-8"))
    removed: list[str] = []
    rebuilt: list[str] = []
    for path, entry in sorted(lock.get("packages", {}).items()):
        if not (path and isinstance(entry, dict) and entry.get("hasInstallScript")):
            continue
        installed = folder / path
        name = path.rsplit("node_modules/", 1)[-1]
        if "/node_modules/" in path or not installed.is_dir() or loads(name):
            continue
        if entry.get("optional"):
            shutil.rmtree(installed)
            removed.append(name)
        elif (installed / "binding.gyp").is_file() and rebuild(name):
            rebuilt.append(name)
    return removed, rebuilt
