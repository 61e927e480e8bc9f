"""Test-container packages leave an npm install for its duration; the manifests come back unchanged."""

import json
from pathlib import Path

import pytest

from patcher.npm_lock import (
    imports_any,
    only_container_tests,
    package_name,
    settle_native_packages,
    strip_container_tests,
    without_container_tests,
)


@pytest.fixture
def server(tmp_path: Path) -> Path:
    manifest = {
        "name": "immich",
        "dependencies": {"sharp": "^0.34.0"},
        "devDependencies": {
            "@testcontainers/redis": "^10.18.0",
            "testcontainers": "^10.18.0",
            "vitest": "^3",
        },
    }
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": {**manifest},
            "node_modules/@testcontainers/redis": {"version": "10.27.0", "dev": True},
            "node_modules/testcontainers": {"version": "10.27.0", "dev": True},
            "node_modules/vitest": {"version": "3.1.0", "dev": True},
            "node_modules/sharp": {"version": "0.34.1"},
        },
    }
    (tmp_path / "package.json").write_text(json.dumps(manifest, indent=4) + "\n")
    (tmp_path / "package-lock.json").write_text(json.dumps(lock, indent=4) + "\n")
    return tmp_path


def test_names_are_read_from_scoped_and_plain_specs() -> None:
    assert package_name("@testcontainers/redis@10.27.0") == "@testcontainers/redis"
    assert package_name("testcontainers@10.27.0") == "testcontainers"
    assert package_name("@immich/ui") == "@immich/ui"
    # npm names the tarball URL as the version when the registry lacks it
    url = "https://registry.npmjs.org/@testcontainers/redis/-/redis-10.27.0.tgz"
    assert package_name(f"@testcontainers/redis@{url}") == "@testcontainers/redis"


def test_only_test_container_gaps_may_be_left_out() -> None:
    assert only_container_tests(["@testcontainers/redis@10.27.0", "testcontainers@10.27.0"])
    assert not only_container_tests(["@testcontainers/redis@10.27.0", "@immich/ui@0.23.6"])
    assert not only_container_tests([])


def test_the_packages_leave_both_manifests(server: Path) -> None:
    assert strip_container_tests(server) == ["@testcontainers/redis", "testcontainers"]
    manifest = json.loads((server / "package.json").read_text())
    lock = json.loads((server / "package-lock.json").read_text())
    assert manifest["devDependencies"] == {"vitest": "^3"}
    assert lock["packages"][""]["devDependencies"] == {"vitest": "^3"}
    assert set(lock["packages"]) == {"", "node_modules/vitest", "node_modules/sharp"}


def test_the_manifests_come_back_byte_for_byte_even_after_a_failure(server: Path) -> None:
    before = {name: (server / name).read_bytes() for name in ("package.json", "package-lock.json")}
    with pytest.raises(RuntimeError), without_container_tests(server) as dropped:
        assert dropped == ["@testcontainers/redis", "testcontainers"]
        assert "testcontainers" not in (server / "package.json").read_text()
        raise RuntimeError("npm ci failed")
    assert {name: (server / name).read_bytes() for name in before} == before


def test_imports_are_read_from_import_and_require_forms(tmp_path: Path) -> None:
    source = tmp_path / "setup.ts"
    source.write_text(
        "import { X } from '@testcontainers/postgresql/build';\nconst r = require(\"testcontainers\");\n",
        encoding="utf-8",
    )
    assert imports_any(source, ["@testcontainers/postgresql"])
    assert imports_any(source, ["testcontainers"])
    assert not imports_any(source, ["@testcontainers/redis"])
    assert not imports_any(tmp_path / "absent.ts", ["testcontainers"])


def test_packages_whose_install_script_never_ran_are_settled(tmp_path: Path) -> None:
    packages = {
        "node_modules/canvas": {"optional": True, "hasInstallScript": True},
        "node_modules/msgpackr-extract": {"optional": True, "hasInstallScript": True},
        "node_modules/bcrypt": {"hasInstallScript": True},
        "node_modules/esbuild": {"hasInstallScript": True},
        "node_modules/vite/node_modules/esbuild": {"hasInstallScript": True},
        "node_modules/left-pad": {},
    }
    (tmp_path / "package-lock.json").write_text(json.dumps({"packages": packages}), encoding="utf-8")
    for path in packages:
        (tmp_path / path).mkdir(parents=True)
    (tmp_path / "node_modules/bcrypt/binding.gyp").write_text("{}", encoding="utf-8")
    loading = {"msgpackr-extract"}  # its binary ships in a sibling package
    asked: list[str] = []

    def loads(name: str) -> bool:
        asked.append(name)
        return name in loading

    def rebuild(name: str) -> bool:
        loading.add(name)
        return True

    removed, rebuilt = settle_native_packages(tmp_path, loads, rebuild)
    assert removed == ["canvas"]
    assert rebuilt == ["bcrypt"], "esbuild has no binding.gyp: nothing to build"
    assert not (tmp_path / "node_modules/canvas").exists()
    assert (tmp_path / "node_modules/msgpackr-extract").is_dir()
    assert (tmp_path / "node_modules/esbuild").is_dir()
    assert "left-pad" not in asked
