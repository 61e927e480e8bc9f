"""The built wheel ships the product and its data, and no test or benchmark helpers."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("immich_aio-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_holds_every_package_and_the_patch_data(wheel_files: set[str]) -> None:
    for expected in (
        "immich_aio/cli.py",
        "patcher/engine.py",
        "ml_service/app.py",
        "db_extension/sql/install.sql",
        "e2e/postgres.py",
        "e2e/browser_steps.cjs",
        "deploy/immich-aio.workflow.yml",
        "patcher/_data/patches/manifest.toml",
        "patcher/_data/patches/series",
        "patcher/_data/patches/pool/0001-ocr-hybrid-search-config.patch",
        "patcher/_data/patches/generated/v3/0006-openapi-typescript-sdk.patch",
        "patcher/_data/db_extension/sql/install.sql",
        # the gateway's web add-on, settings page and reverse-proxy snippets, and the strings it shows
        "gateway/addon/addon.js",
        "gateway/addon/settings.html",
        "gateway/templates/nginx.conf.j2",
        "patcher/_data/ui_snippets/i18n/zh_Hans.json",
    ):
        assert expected in wheel_files, expected
    snippets = ("patcher/_data/server_snippets/utils/", "patcher/_data/ui_snippets/components/immich-aio/")
    for folder in snippets:
        assert any(name.startswith(folder) for name in wheel_files), folder


def test_the_wheel_holds_no_test_or_benchmark_helpers(wheel_files: set[str]) -> None:
    tops = {name.split("/", 1)[0] for name in wheel_files}
    assert not tops & {"tests", "testsupport", "bench"}, sorted(tops)
    helpers = [name for name in wheel_files if Path(name).name in ("synthetic.py", "immich_schema.py")]
    assert helpers == []
