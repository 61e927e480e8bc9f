"""The CLI contract: patch, status, revert, check, list against a synthetic upstream."""

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from immich_aio.cli import app

from .conftest import Upstream, tree_fingerprint

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_help_lists_every_verb() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    for verb in ("patch", "status", "revert", "check", "verify", "list", "serve", "db", "e2e"):
        assert verb in out


def test_patch_clones_and_applies_then_is_idempotent(
    aio_root: Path, upstream: Upstream, tmp_path: Path
) -> None:
    dest = tmp_path / "immich"
    code, out, err = invoke(
        "patch", "--immich-version", "v3.1.0", "--source", str(upstream.url), "--dest", str(dest), "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["series"] == "t3" and data["result"] == "clean" and not data["alreadyApplied"]
    assert [p["name"] for p in data["patches"]] == ["0001-search.patch", "0002-menu.patch"]
    code, out, _ = invoke("patch", "--in-place", str(dest))
    assert code == 0 and "already applied" in out

    code, out, _ = invoke("status", str(dest), "--json")
    status = json.loads(out)
    assert status["patched"] and status["immichVersion"] == "v3.1.0"
    assert {p["state"] for p in status["patches"]} == {"applied"}


def test_unknown_version_exits_2_lists_supported_and_creates_nothing(
    aio_root: Path, upstream: Upstream, tmp_path: Path
) -> None:
    dest = tmp_path / "immich"
    code, _, err = invoke(
        "patch", "--immich-version", "v2.7.5", "--source", str(upstream.url), "--dest", str(dest)
    )
    assert code == 2
    assert "not supported" in err and "v3.0.0" in err and "v3.1.0" in err
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_missing_tag_in_source_leaves_no_directory(
    aio_root: Path, upstream: Upstream, tmp_path: Path
) -> None:
    dest = tmp_path / "immich"
    code, _, err = invoke(
        "patch", "--immich-version", "v3.0.3", "--source", str(upstream.url), "--dest", str(dest)
    )
    assert code == 1 and "could not clone v3.0.3" in err
    assert list(tmp_path.iterdir()) == []


def test_in_place_conflict_reports_and_keeps_tree(aio_root: Path, upstream: Upstream, tmp_path: Path) -> None:
    from patcher import gitops

    tree = gitops.clone_release(str(upstream.url), "v3.0.1", tmp_path / "immich")
    before = tree_fingerprint(tree)
    code, _, err = invoke("patch", "--in-place", str(tree), "--source", str(upstream.url))
    assert code == 1
    assert "0001-search.patch" in err and "server/src/search.ts" in err and "@@ -13,7 +13,7 @@" in err
    assert tree_fingerprint(tree) == before


def test_revert_via_cli(aio_root: Path, upstream: Upstream, tmp_path: Path) -> None:
    from patcher import gitops

    tree = gitops.clone_release(str(upstream.url), "v3.0.0", tmp_path / "immich")
    before = tree_fingerprint(tree)
    assert invoke("patch", "--in-place", str(tree), "--source", str(upstream.url))[0] == 0
    code, out, _ = invoke("revert", str(tree))
    assert code == 0 and "reverted series t3" in out
    assert tree_fingerprint(tree) == before
    code, _, err = invoke("revert", str(tree))
    assert code == 1 and "nothing to revert" in err


def test_check_matrix_json_and_markdown(aio_root: Path, upstream: Upstream) -> None:
    code, out, _ = invoke(
        "check", "--source", str(upstream.url), "--versions", "v2.9.0..v3.1.0", "--format", "json"
    )
    rows = {row["version"]: row for row in json.loads(out)}
    assert code == 1  # one release conflicts
    assert rows["v2.9.0"]["result"] == "unsupported" and rows["v2.9.0"]["series"] is None
    assert rows["v3.0.0"]["result"] == "3way"
    assert rows["v3.1.0"]["result"] == "clean" and rows["v3.1.0"]["conflicts"] == []
    conflict = rows["v3.0.1"]
    assert conflict["result"] == "conflict" and conflict["series"] == "t3"
    assert conflict["conflicts"][0]["file"] == "server/src/search.ts"
    assert conflict["conflicts"][0]["patch"] == "0001-search.patch"

    code, out, _ = invoke(
        "check", "--source", str(upstream.url), "--versions", "v3.0.0,v3.1.0", "--format", "markdown"
    )
    assert code == 0
    assert "| v3.0.0 | t3 | 3way |" in out and "| v3.1.0 | t3 | clean |" in out


def test_check_rejects_unknown_format(aio_root: Path, upstream: Upstream) -> None:
    code, _, err = invoke("check", "--source", str(upstream.url), "--versions", "v3.1.0", "--format", "xml")
    assert code == 1 and "--format" in err


def test_list_shows_supported_versions(aio_root: Path) -> None:
    code, out, _ = invoke("list", "--json")
    assert code == 0
    data = json.loads(out)
    assert [row["version"] for row in data["supported"]] == ["v3.0.0", "v3.0.1", "v3.0.2", "v3.0.3", "v3.1.0"]
    assert data["series"][0]["name"] == "t3"


def test_status_of_a_plain_directory_is_a_clear_error(aio_root: Path, tmp_path: Path) -> None:
    code, _, err = invoke("status", str(tmp_path))
    assert code == 2 and "not an Immich git checkout" in err


def test_without_git_the_product_starts_and_git_commands_say_what_is_missing(tmp_path: Path) -> None:
    # as in the ML image: no git on PATH
    env = {**os.environ, "PATH": str(tmp_path)}
    env.pop("GIT_PYTHON_REFRESH", None)
    started = subprocess.run(
        [sys.executable, "-m", "immich_aio", "models", "--help"], capture_output=True, text=True, env=env
    )
    assert started.returncode == 0, started.stderr
    status = subprocess.run(
        [sys.executable, "-m", "immich_aio", "status", str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert status.returncode != 0 and "git is not installed" in status.stderr
    assert "Traceback" not in status.stderr


def test_a_release_spelling_is_resolved_and_said(aio_root: Path, upstream: Upstream, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["patch", "--immich-version", "latest", "--source", str(upstream.url), "--dest", str(tmp_path / "i")],
    )
    assert result.exit_code == 0, result.stdout
    assert "latest is Immich v3.1.0 (series t3)" in result.stderr
    result = runner.invoke(app, ["patch", "--immich-version", "v4", "--source", str(upstream.url)])
    assert result.exit_code == 2 and "'v4' is not supported" in result.stderr
