"""Synthetic upstream repositories and patch series for the engine tests (no Immich code involved)."""

import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from patcher import manifest

GIT_ENV = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@localhost",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@localhost",
}


def git(cwd: Path, *args: str) -> str:
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def search_service(header: str, limit_line: str) -> str:
    """A stand-in upstream source file: 40 lines with a few recognisable spots the patch edits."""
    lines = [header]
    lines += [f"// filler line {i}" for i in range(1, 12)]
    lines += [
        "export function searchSmart(query: string) {",
        "  const embedding = encode(query);",
        limit_line,
        "  return db.search(embedding, limit);",
        "}",
    ]
    lines += [f"// more filler {i}" for i in range(1, 20)]
    lines += ["export const MODELS = ['ViT-B-32__openai'];"]
    return "\n".join(lines) + "\n"


BASE_SEARCH = search_service("// search service v3.1", "  const limit = 100;")
# v3.0.0: the header differs (outside any hunk), and one context line of hunk 1 differs:
# exact apply fails, a 3-way merge against the base blob succeeds.
DRIFTED_SEARCH = search_service("// search service v3.0", "  const limit = 100;").replace(
    "  const embedding = encode(query);", "  const embedding = await encode(query);"
)
# v3.0.1: the very line the patch changes was rewritten upstream: a real conflict.
CONFLICTING_SEARCH = search_service("// search service v3.1", "  const limit = 100;").replace(
    "  return db.search(embedding, limit);", "  return db.vectorSearch(embedding, { limit });"
)
MENU = "<Menu>\n  <Item name='download' />\n  <Item name='refresh-faces' />\n</Menu>\n"


@dataclass
class Upstream:
    """A bare repository tagged like Immich, plus the series root built against it."""

    url: Path
    root: Path


def _commit_tag(work: Path, tag: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (work / "run.sh").write_text("#!/bin/sh\necho run\n")
    (work / "run.sh").chmod(0o755)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", f"chore: version {tag}")
    git(work, "tag", tag)


def _make_series(root: Path, work: Path) -> None:
    """Write a series of two patches made with `git diff` against the v3.1.0 tree, and one placed template."""
    git(work, "checkout", "-q", "v3.1.0")
    search = work / "server/src/search.ts"
    search.write_text(
        search.read_text()
        .replace(
            "  return db.search(embedding, limit);", "  return hybrid(db.search(embedding, limit), query);"
        )
        .replace("['ViT-B-32__openai']", "['ViT-B-32__openai', 'ViT-B-16__cn-clip']")
    )
    first = git(work, "diff", "--full-index")
    git(work, "checkout", "-q", "--", ".")
    menu = work / "web/src/menu.svelte"
    menu.write_text(
        menu.read_text().replace(
            "  <Item name='refresh-faces' />\n", "  <Item name='refresh-faces' />\n  <RefreshOcr />\n"
        )
    )
    second = git(work, "diff", "--full-index")
    git(work, "checkout", "-q", "--", ".")

    store = root / "patches"
    (store / "pool").mkdir(parents=True)
    header = "Description: {}\n Why: test.\nAuthor: tests\n---\n"
    (store / "pool" / "0001-search.patch").write_text(header.format("hybrid search") + first)
    (store / "pool" / "0002-menu.patch").write_text(header.format("menu item") + second)
    (store / "series").write_text("# order matters\n0001-search.patch\n0002-menu.patch\n")
    snippets = root / "ui_snippets"
    snippets.mkdir()
    (snippets / "refresh-ocr.svelte.j2").write_text(
        "<!-- {{ immich_version }} {{ series }} -->\n<button>OCR</button>\n"
    )
    (root / "sql.txt").write_text("select 'it''s';\n")
    (store / "place.toml").write_text(
        '[[place]]\nsource = "ui_snippets/refresh-ocr.svelte.j2"\n'
        'dest = "web/src/lib/new/refresh-ocr.svelte"\nrender = true\n\n'
        '[[place]]\nsource = "sql.txt"\ndest = "server/src/aio.sql"\n'
    )
    (store / "manifest.toml").write_text(
        '[[series]]\nname = "t3"\nbase = "v3.1.0"\n'
        'releases = ["v3.0.0", "v3.0.1", "v3.0.2", "v3.0.3", "v3.1.0"]\ndescription = "test series"\n'
    )


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    base = tmp_path_factory.mktemp("upstream")
    work = base / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    common = {"web/src/menu.svelte": MENU, "README.md": "upstream\n"}
    _commit_tag(work, "v2.9.0", {**common, "server/src/search.ts": BASE_SEARCH})
    _commit_tag(work, "v3.0.0", {**common, "server/src/search.ts": DRIFTED_SEARCH})
    _commit_tag(work, "v3.0.1", {**common, "server/src/search.ts": CONFLICTING_SEARCH})
    _commit_tag(work, "v3.1.0", {**common, "server/src/search.ts": BASE_SEARCH})
    bare = base / "immich.git"
    git(base, "clone", "-q", "--bare", str(work), str(bare))
    root = base / "root"
    root.mkdir()
    _make_series(root, work)
    return Upstream(bare, root)


@pytest.fixture()
def series_manifest(upstream: Upstream) -> manifest.Manifest:
    return manifest.load(upstream.root)


@pytest.fixture()
def aio_root(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("IMMICH_AIO_ROOT", str(upstream.root))
    yield upstream.root


def tree_fingerprint(tree: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mode of every file under the tree, including the index but not other git internals."""
    result = {}
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree).as_posix()
        if path.is_file() and (not rel.startswith(".git/") or rel == ".git/index"):
            result[rel] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode)
        elif path.is_dir() and not rel.startswith(".git"):
            result[rel + "/"] = ("dir", 0)
    return result
