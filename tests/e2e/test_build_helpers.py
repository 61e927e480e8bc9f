"""Build helpers on small real git trees: fingerprints, asset stand-ins, version pins, status parsing."""

import json
import subprocess
from pathlib import Path

import pytest

from e2e import build, geodata
from e2e.run import clip_model_for
from ml_service.models.clip.names import DEFAULT_CN_CLIP_MODEL as CN_CLIP_MODEL
from ml_service.models.clip.names import UPSTREAM_ALIAS_MODEL


def git(tree: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=tree, check=True, capture_output=True)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "immich"
    (root / "server" / "src").mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"packageManager": "pnpm@11.13.1+sha512.abc"}))
    (root / ".nvmrc").write_text("24.15.0\n")
    (root / ".gitignore").write_text("node_modules/\n")
    (root / "server" / "src" / "constants.ts").write_text(
        "export const CLIP_MODEL_INFO = { 'ViT-B-16__openai': 512 };\n"
    )
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "-c", "user.email=e2e@test", "-c", "user.name=e2e", "commit", "-qm", "release")
    return root


def test_fingerprint_follows_source_changes_but_not_ignored_files(tree: Path) -> None:
    first = build.tree_fingerprint(tree)
    (tree / "node_modules").mkdir()
    (tree / "node_modules" / "big.js").write_text("ignored")
    assert build.tree_fingerprint(tree) == first
    (tree / "server" / "src" / "constants.ts").write_text("changed")
    second = build.tree_fingerprint(tree)
    assert second != first
    (tree / "server" / "src" / "new.ts").write_text("untracked file")
    third = build.tree_fingerprint(tree)
    assert third != second
    (tree / "server" / "src" / "new.ts").write_text("untracked file, edited")
    assert build.tree_fingerprint(tree) != third


def test_absent_font_gets_a_stand_in_only_when_missing(tree: Path) -> None:
    fonts = tree / "web" / "src" / "lib" / "assets" / "fonts"
    (fonts / "GoogleSansCode").mkdir(parents=True)
    (fonts / "GoogleSansCode" / "GoogleSansCode.ttf").write_bytes(b"font bytes")
    assert build.fill_absent_assets(tree) == ["web/src/lib/assets/fonts/GoogleSans/GoogleSans.ttf"]
    assert (fonts / "GoogleSans" / "GoogleSans.ttf").read_bytes() == b"font bytes"
    assert build.fill_absent_assets(tree) == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"patched": True, "upToDate": True, "patches": [{"name": "a", "state": "applied"}]}, True),
        # Patched with an older version of the series: the cached tree must be rebuilt.
        ({"patched": True, "upToDate": False, "patches": [{"name": "a", "state": "applied"}]}, False),
        (
            {
                "patched": True,
                "upToDate": True,
                "patches": [{"name": "a", "state": "applied"}, {"name": "b", "state": "conflicts"}],
            },
            False,
        ),
        ({"patched": False, "patches": [{"name": "a", "state": "applied"}]}, False),
        ([], False),
    ],
)
def test_patch_status_parsing(status: object, expected: bool) -> None:
    assert build._fully_applied(json.dumps(status)) is expected
    assert build._fully_applied("not json") is False


def test_build_data_layout(tree: Path, tmp_path: Path) -> None:
    (tree / "web" / "build").mkdir(parents=True)
    (tree / "web" / "build" / "index.html").write_text("<html>")
    data = build.build_data_dir(tree, tmp_path / "build-data")
    assert (data / "www" / "index.html").read_text() == "<html>"
    build.build_data_dir(tree, tmp_path / "build-data")  # idempotent
    cities = (data / "geodata" / "cities500.txt").read_text(encoding="utf-8").splitlines()
    assert len(cities) == len(geodata.CITIES)
    assert all(len(line.split("\t")) == 19 for line in cities)
    countries = json.loads((data / "geodata" / "ne_10m_admin_0_countries.geojson").read_text())
    assert countries["features"][0]["properties"]["ADM0_A3"] == "CHN"
    assert not (data / "corePlugin").exists()  # a tree without plugins/ (v2.2-v2.4, v3)


def test_build_data_has_the_core_plugin_of_a_v2_7_tree(tree: Path, tmp_path: Path) -> None:
    (tree / "plugins").mkdir()
    (tree / "plugins" / "manifest.json").write_text(
        '{"name": "immich-core", "wasm": {"path": "dist/plugin.wasm"}}'
    )
    data = build.build_data_dir(tree, tmp_path / "build-data")
    assert json.loads((data / "corePlugin" / "manifest.json").read_text())["name"] == "immich-core"
    # no plugin build in the tree: an empty WebAssembly module stands in for it
    assert (data / "corePlugin" / "dist" / "plugin.wasm").read_bytes() == b"\x00asm\x01\x00\x00\x00"
    (tree / "plugins" / "dist").mkdir()
    (tree / "plugins" / "dist" / "plugin.wasm").write_bytes(b"built")
    build.build_data_dir(tree, tmp_path / "build-data")  # again, now with the plugin's build
    assert (data / "corePlugin" / "dist").is_symlink()
    assert (data / "corePlugin" / "dist" / "plugin.wasm").read_bytes() == b"built"


def test_clip_model_choice_follows_the_tree(tree: Path) -> None:
    model, env = clip_model_for(tree)
    assert model == UPSTREAM_ALIAS_MODEL
    assert env == {"IMMICH_AIO_ML_CLIP_ALIASES": f"{UPSTREAM_ALIAS_MODEL}={CN_CLIP_MODEL}"}
    constants = tree / "server" / "src" / "constants.ts"
    constants.write_text(constants.read_text() + f"export const X = {{ '{CN_CLIP_MODEL}': 512 }};\n")
    assert clip_model_for(tree) == (CN_CLIP_MODEL, {})


def test_inference_means_from_prometheus_text() -> None:
    from e2e.observe import inference_means

    text = "\n".join(
        [
            "# HELP immich_aio_ml_inference_seconds Model inference latency",
            'immich_aio_ml_inference_seconds_bucket{le="0.1",model="PP-OCRv4",task="ocr"} 0.0',
            'immich_aio_ml_inference_seconds_count{model="PP-OCRv4",task="ocr"} 4.0',
            'immich_aio_ml_inference_seconds_sum{model="PP-OCRv4",task="ocr"} 3.0',
            'immich_aio_ml_inference_seconds_count{model="ViT-B-16__cn-clip",task="clip-visual"} 0.0',
            'immich_aio_ml_inference_seconds_sum{model="ViT-B-16__cn-clip",task="clip-visual"} 0.0',
        ]
    )
    assert inference_means(text) == {"ocr/PP-OCRv4": {"count": 4.0, "mean_s": 0.75}}


def test_text_conversion_counts_from_prometheus_text() -> None:
    from e2e.observe import text_conversion_counts

    text = "\n".join(
        [
            "# TYPE immich_aio_ml_text_conversions_total counter",
            'immich_aio_ml_text_conversions_total{conversion="off",source="request"} 2.0',
            'immich_aio_ml_text_conversions_created{conversion="off",source="request"} 1.7e+09',
            'immich_aio_ml_text_conversions_total{conversion="t2s",source="setting"} 5.0',
        ]
    )
    assert text_conversion_counts(text) == {("off", "request"): 2.0, ("t2s", "setting"): 5.0}


def test_known_checkpoint_name_matches_cn_clip() -> None:
    from cn_clip.clip.utils import _MODELS

    from e2e.clip_weights import KNOWN_FILES

    for architecture, file_name in KNOWN_FILES.items():
        assert _MODELS[architecture][1] == file_name


def test_a_server_only_build_installs_and_builds_the_server_and_its_workspace_packages() -> None:
    steps = build.build_commands("pnpm", ["--store-dir", "/s"], web=False)
    assert list(steps) == ["install", "server"]
    assert steps["install"] == [
        "pnpm",
        "install",
        "--frozen-lockfile",
        "--filter",
        "immich...",
        "--store-dir",
        "/s",
    ]
    assert steps["server"] == ["pnpm", "--filter", "immich...", "build"]
    full = build.build_commands("pnpm", [], web=True)
    assert list(full) == ["install", "server", "web"]
    assert full["install"] == ["pnpm", "install", "--frozen-lockfile"]


def test_a_server_only_build_is_reused_only_when_the_web_app_is_not_wanted(tree: Path) -> None:
    (tree / "server" / "dist").mkdir()
    (tree / "server" / "dist" / "main.js").write_text("")
    server_only = {"fingerprint": "f", "web": False}
    assert build.is_built(tree, server_only, "f", web=False)
    assert not build.is_built(tree, server_only, "f", web=True)
    assert not build.is_built(tree, server_only, "other", web=False)
    (tree / "web" / "build").mkdir(parents=True)
    (tree / "web" / "build" / "index.html").write_text("")
    assert build.is_built(tree, {"fingerprint": "f", "web": True}, "f", web=True)
    # stamps written before server-only builds existed always stood for a full build
    assert build.is_built(tree, {"fingerprint": "f"}, "f", web=True)
    assert not build.is_built(tree, {}, "f", web=False)


def test_an_npm_tree_is_built_package_by_package_as_its_dockerfile_does() -> None:
    npm = ["node", "npm-cli.js"]
    full = build.npm_build_commands(npm, ["--cache", "/c"], web=True)
    assert list(full) == ["install_server", "server", "install_sdk", "sdk", "install_web", "web"]
    assert full["install_server"] == build.BuildStep([*npm, "ci", "--cache", "/c"], "server")
    assert full["install_web"].folder == "web"
    # the web app links the SDK by file:, so the SDK is built before the web app installs
    assert list(full).index("sdk") < list(full).index("install_web")
    server_only = build.npm_build_commands(npm, [], web=False)
    assert server_only == {
        "install_server": build.BuildStep([*npm, "ci"], "server"),
        "server": build.BuildStep([*npm, "run", "build"], "server"),
    }
