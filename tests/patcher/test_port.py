"""`immich-aio port` on a synthetic upstream: a release that drifted gets overrides for what moved, a release
that conflicts stops with the diagnosis and goes on after `--continue`, and each result patches and checks."""

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from immich_aio.cli import app
from patcher import manifest, store_edit

from .conftest import Upstream, git

runner = CliRunner()


@pytest.fixture
def store_copy(upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable copy of the synthetic store whose manifest serves only v3.1.0 (the base)."""
    root = tmp_path / "root"
    shutil.copytree(upstream.root, root)
    path = root / "patches" / "manifest.toml"
    path.write_text(re.sub(r"releases = \[.*\]", 'releases = ["v3.1.0"]', path.read_text()))
    monkeypatch.setenv("IMMICH_AIO_ROOT", str(root))
    return root


def port(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["port", *args])
    return result.exit_code, result.stdout + result.stderr


def test_a_drifted_release_gets_a_series_with_overrides_for_what_moved(
    store_copy: Path, upstream: Upstream, tmp_path: Path
) -> None:
    dest = tmp_path / "port"
    code, out = port("--to", "3.0.0", "--source", str(upstream.url), "--dest", str(dest))
    assert code == 0, out
    assert "v3.0.0 is served by the new series v3.0" in out and "check v3.0.0: clean" in out
    shipped = manifest.load(store_copy)
    assert shipped.by_name("v3.0").releases == ("v3.0.0",) and shipped.by_name("v3.0").base == "v3.0.0"
    override = store_copy / "patches/overrides/0001-search/v3.0.0.patch"
    text = override.read_text()
    assert "Versions: v3.0.0\n" in text and "await encode(query)" in text
    assert not (store_copy / "patches/overrides/0002-menu").exists(), "the menu edit landed unchanged"
    assert "| v3.0 | v3.0.0 | v3.0.0 |" in (store_copy / "docs/served-releases.md").read_text()
    # the recorded store now patches v3.0.0 exactly, to the tree the port built
    result = runner.invoke(
        app,
        [
            "patch",
            "--immich-version",
            "v3.0.0",
            "--source",
            str(upstream.url),
            "--dest",
            str(tmp_path / "again"),
        ],
    )
    assert result.exit_code == 0, result.stdout
    for path in ("server/src/search.ts", "web/src/menu.svelte"):
        assert (tmp_path / "again" / path).read_text() == (dest / path).read_text()


def test_a_release_that_lands_unchanged_joins_its_series(
    store_copy: Path, upstream: Upstream, tmp_path: Path
) -> None:
    code, out = port("--to", "v2.9.0", "--source", str(upstream.url), "--dest", str(tmp_path / "port"))
    assert code == 0, out
    assert "v2.9.0 joins series t3" in out and "check v2.9.0: clean" in out
    assert manifest.load(store_copy).by_name("t3").releases == ("v2.9.0", "v3.1.0")
    assert manifest.load(store_copy).by_name("t3").base == "v3.1.0"
    assert not (store_copy / "patches/overrides").exists()
    assert "'ViT-B-16__cn-clip'" in (tmp_path / "port/server/src/search.ts").read_text()


def test_a_conflict_stops_with_the_diagnosis_and_continues_once_resolved(
    store_copy: Path, upstream: Upstream, tmp_path: Path
) -> None:
    dest = tmp_path / "port"
    code, out = port("--to", "v3.0.1", "--source", str(upstream.url), "--dest", str(dest))
    assert code == 1
    assert "0001-search.patch needs a person" in out and "server/src/search.ts" in out
    assert "--continue" in out
    code, out = port("--to", "v3.0.1", "--dest", str(dest), "--continue")
    assert code == 2 and "resolve and `git add` first" in out
    search = dest / "server/src/search.ts"
    line = "  return hybrid(db.vectorSearch(embedding, { limit }), query);\n"
    search.write_text(re.sub(r"<<<<<<< .*?>>>>>>> [^\n]*\n", line, search.read_text(), flags=re.DOTALL))
    git(dest, "add", "-A")
    code, out = port("--to", "v3.0.1", "--source", str(upstream.url), "--dest", str(dest), "--continue")
    assert code == 0, out
    override = (store_copy / "patches/overrides/0001-search/v3.0.1.patch").read_text()
    assert "+  return hybrid(db.vectorSearch(embedding, { limit }), query);" in override


def test_a_served_release_is_not_ported_again(store_copy: Path, upstream: Upstream, tmp_path: Path) -> None:
    code, out = port("--to", "v3.1.0", "--source", str(upstream.url), "--dest", str(tmp_path / "p"))
    assert code == 1 and "already served by series t3" in out


def test_a_widened_range_grows_to_the_new_release() -> None:
    served = ["v3.0.0", "v3.0.1", "v3.0.3", "v3.1.0"]
    assert store_edit._widened("v3.0.0..v3.0.3", "v3.0.4", served) == "v3.0.0..v3.0.4"
    assert store_edit._widened("v2.0.0, v3.0.3", "v3.0.4", served) == "v2.0.0, v3.0.3..v3.0.4"
    assert store_edit._widened("v3.0.0", "v3.2.0", served) == "v3.0.0, v3.2.0"


def test_a_range_around_the_ported_release_is_split_at_it() -> None:
    served = ["v3.0.0", "v3.0.1", "v3.0.3", "v3.1.0"]
    assert store_edit._without("v3.0.0..v3.1.0", "v3.0.2", served) == "v3.0.0..v3.0.1, v3.0.3..v3.1.0"
    assert store_edit._without("v3.0.0..v3.0.3, v2.0.0", "v3.0.2", served) == "v3.0.0..v3.0.1, v3.0.3, v2.0.0"
