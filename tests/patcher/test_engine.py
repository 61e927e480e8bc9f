"""The patch engine on synthetic upstreams: clean apply, 3-way merge, conflicts, dirty trees, revert."""

import shutil
from pathlib import Path

import pytest

from patcher import engine, gitops, manifest
from patcher.errors import DirtyTree, PatchConflict, PatcherError
from patcher.manifest import Manifest
from patcher.store import PatchFile

from .conftest import Upstream, git, tree_fingerprint


def clone(upstream: Upstream, tag: str, dest: Path) -> Path:
    return gitops.clone_release(str(upstream.url), tag, dest)


def apply(tree: Path, m: Manifest, tag: str, **kwargs: object) -> engine.ApplyOutcome:
    tag, series = m.resolve(tag)
    return engine.apply_series(tree, series, tag, m.root, **kwargs)  # type: ignore[arg-type]


def test_clean_apply_changes_files_places_templates_and_records_state(
    upstream: Upstream, series_manifest: Manifest, tmp_path: Path
) -> None:
    tree = clone(upstream, "v3.1.0", tmp_path / "immich")
    outcome = apply(tree, series_manifest, "v3.1.0")
    assert not outcome.already_applied
    assert [(p.name, p.method) for p in outcome.patches] == [
        ("0001-search.patch", "clean"),
        ("0002-menu.patch", "clean"),
    ]
    search = (tree / "server/src/search.ts").read_text()
    assert "hybrid(db.search(embedding, limit), query)" in search
    assert "'ViT-B-16__cn-clip'" in search
    assert "<RefreshOcr />" in (tree / "web/src/menu.svelte").read_text()
    assert (
        tree / "web/src/lib/new/refresh-ocr.svelte"
    ).read_text() == "<!-- v3.1.0 t3 -->\n<button>OCR</button>\n"
    assert (tree / "server/src/aio.sql").read_text() == "select 'it''s';\n"
    # Nothing is staged: the index is exactly as before, the changes are plain work-tree edits.
    assert git(tree, "diff", "--cached", "--name-only") == ""
    state = engine.read_state(tree)
    assert state is not None and state.series == "t3" and state.immich_version == "v3.1.0"


def test_drifted_context_merges_three_way_using_the_base_release(
    upstream: Upstream, series_manifest: Manifest, tmp_path: Path
) -> None:
    tree = clone(upstream, "v3.0.0", tmp_path / "immich")
    outcome = apply(tree, series_manifest, "v3.0.0", source=str(upstream.url))
    assert outcome.method == "3way"
    assert outcome.patches[0].method == "3way" and outcome.patches[1].method == "clean"
    search = (tree / "server/src/search.ts").read_text()
    # Both the upstream drift and the patch's change survive the merge.
    assert "await encode(query)" in search and "hybrid(db.search(embedding, limit), query)" in search
    assert "<<<<<<<" not in search
    assert git(tree, "diff", "--cached", "--name-only") == ""


def test_drift_without_the_base_blobs_is_a_conflict_not_a_guess(
    upstream: Upstream, series_manifest: Manifest, tmp_path: Path
) -> None:
    tree = clone(upstream, "v3.0.0", tmp_path / "immich")
    git(tree, "remote", "remove", "origin")
    before = tree_fingerprint(tree)
    with pytest.raises(PatchConflict):
        apply(tree, series_manifest, "v3.0.0")
    assert tree_fingerprint(tree) == before


def test_conflict_names_patch_file_hunk_and_upstream_lines_and_leaves_tree_untouched(
    upstream: Upstream, series_manifest: Manifest, tmp_path: Path
) -> None:
    tree = clone(upstream, "v3.0.1", tmp_path / "immich")
    before = tree_fingerprint(tree)
    with pytest.raises(PatchConflict) as caught:
        apply(tree, series_manifest, "v3.0.1", source=str(upstream.url))
    error = caught.value
    assert error.patch == "0001-search.patch"
    [conflict] = error.conflicts
    assert conflict.file == "server/src/search.ts"
    assert conflict.hunk.startswith("@@ -13,7 +13,7 @@")
    assert conflict.found_at == 13
    assert "  return db.search(embedding, limit);" in conflict.expected
    assert "  return db.vectorSearch(embedding, { limit });" in conflict.found
    message = str(error)
    assert "0001-search.patch" in message and "server/src/search.ts" in message and "vectorSearch" in message
    # Byte for byte the same tree (modes and index included), no placed file left behind, no state.
    assert tree_fingerprint(tree) == before
    assert not (tree / "web/src/lib/new").exists()
    assert engine.read_state(tree) is None
    assert gitops.dirty_files(tree) == []


def test_dirty_checkout_is_refused_with_the_dirty_files_listed_unless_forced(
    upstream: Upstream, series_manifest: Manifest, tmp_path: Path
) -> None:
    tree = clone(upstream, "v3.1.0", tmp_path / "immich")
    (tree / "README.md").write_text("local edit\n")
    (tree / "notes.txt").write_text("untracked\n")
    with pytest.raises(DirtyTree) as caught:
        apply(tree, series_manifest, "v3.1.0")
    assert set(caught.value.files) == {"README.md", "notes.txt"}
    assert "README.md" in str(caught.value) and "--force" in str(caught.value)
    assert engine.read_state(tree) is None
    outcome = apply(tree, series_manifest, "v3.1.0", force=True)
    assert not outcome.already_applied
    assert (tree / "README.md").read_text() == "local edit\n"


def test_patching_twice_is_a_no_op_that_says_so(
    upstream: Upstream, series_manifest: Manifest, tmp_path: Path
) -> None:
    tree = clone(upstream, "v3.1.0", tmp_path / "immich")
    apply(tree, series_manifest, "v3.1.0")
    after_first = tree_fingerprint(tree)
    second = apply(tree, series_manifest, "v3.1.0")
    assert second.already_applied
    assert tree_fingerprint(tree) == after_first


def test_a_tree_patched_without_a_record_is_recognised(
    upstream: Upstream, series_manifest: Manifest, tmp_path: Path
) -> None:
    tree = clone(upstream, "v3.1.0", tmp_path / "immich")
    apply(tree, series_manifest, "v3.1.0")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "patched by hand")
    (gitops.git_dir(tree) / "immich-aio" / "state.json").unlink()
    assert apply(tree, series_manifest, "v3.1.0").already_applied


def test_status_reports_each_patch(upstream: Upstream, series_manifest: Manifest, tmp_path: Path) -> None:
    tree = clone(upstream, "v3.1.0", tmp_path / "immich")
    series = series_manifest.by_name("t3")
    before = engine.status(tree, series)
    assert before.recorded is None
    assert [p.state for p in before.patches] == ["not applied", "not applied"]
    apply(tree, series_manifest, "v3.1.0")
    after = engine.status(tree, series)
    assert after.recorded is not None and after.series == "t3"
    assert [(p.state, p.method) for p in after.patches] == [("applied", "clean"), ("applied", "clean")]
    assert after.modified_since == []
    # A later hand edit that undoes part of a patch is reported.
    menu = tree / "web/src/menu.svelte"
    menu.write_text(menu.read_text().replace("  <RefreshOcr />\n", ""))
    assert engine.status(tree, series).modified_since == ["0002-menu.patch"]


def test_revert_restores_the_upstream_tree_byte_for_byte(
    upstream: Upstream, series_manifest: Manifest, tmp_path: Path
) -> None:
    tree = clone(upstream, "v3.0.0", tmp_path / "immich")
    before = tree_fingerprint(tree)
    apply(tree, series_manifest, "v3.0.0", source=str(upstream.url))
    assert tree_fingerprint(tree) != before
    state = engine.revert(tree)
    assert state.series == "t3"
    assert tree_fingerprint(tree) == before
    assert gitops.dirty_files(tree) == []
    with pytest.raises(PatcherError, match="nothing to revert"):
        engine.revert(tree)


def test_revert_after_forced_apply_restores_the_local_edits(
    upstream: Upstream, series_manifest: Manifest, tmp_path: Path
) -> None:
    tree = clone(upstream, "v3.1.0", tmp_path / "immich")
    search = tree / "server/src/search.ts"
    search.write_text(search.read_text().replace("// filler line 1\n", "// my local note\n"))
    before = tree_fingerprint(tree)
    apply(tree, series_manifest, "v3.1.0", force=True)
    engine.revert(tree)
    assert tree_fingerprint(tree) == before


def test_a_tree_that_is_not_a_checkout_gets_a_clear_error(series_manifest: Manifest, tmp_path: Path) -> None:
    with pytest.raises(PatcherError, match="not an Immich git checkout"):
        apply(tmp_path, series_manifest, "v3.1.0")
    with pytest.raises(PatcherError, match="no such directory"):
        apply(tmp_path / "missing", series_manifest, "v3.1.0")


def test_a_changed_series_is_not_taken_for_the_applied_one(
    upstream: Upstream, series_manifest: Manifest, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    shutil.copytree(series_manifest.root, root)
    changed = manifest.load(root)
    tree = clone(upstream, "v3.1.0", tmp_path / "immich")
    apply(tree, changed, "v3.1.0")
    series = changed.by_name("t3")
    assert engine.status(tree, series, root).up_to_date is True
    # A placed source changes (say the SQL a migration inlines): the tree no longer carries the series.
    (root / "sql.txt").write_text("select 2;\n")
    assert engine.status(tree, series, root).up_to_date is False
    with pytest.raises(PatcherError, match="different version of the series"):
        apply(tree, changed, "v3.1.0")
    engine.revert(tree)
    apply(tree, changed, "v3.1.0")
    assert (tree / "server/src/aio.sql").read_text() == "select 2;\n"
    assert engine.status(tree, series, root).up_to_date is True


def test_an_edit_built_on_an_earlier_one_is_judged_after_it(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    git(tree, "init", "-q")
    (tree / "config.ts").write_text("a\nb\nc\n")
    git(tree, "add", "-A")
    git(tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "upstream")
    first = PatchFile("0001.patch", DIFF_HEAD + "@@ -1,2 +1,3 @@\n a\n+hybrid\n b\n", ())
    # 0018 changes a line only 0001 writes: alone, it does not apply to upstream
    second = PatchFile("0018.patch", DIFF_HEAD + "@@ -2,2 +2,3 @@\n hybrid\n+conversion\n b\n", ())
    assert not engine.applies_exactly(tree, second)
    assert engine.stacked(tree, [first, second]) == (set(), {"0001.patch", "0018.patch"})
    for patch in (first, second):
        gitops.run(tree, "apply", "-", stdin=patch.text())
    assert (tree / "config.ts").read_text() == "a\nhybrid\nconversion\nb\nc\n"
    assert engine.stacked(tree, [first, second]) == ({"0001.patch", "0018.patch"}, set())
    # and with the later edit undone by hand, only the earlier one is carried
    (tree / "config.ts").write_text("a\nhybrid\nb\nc\n")
    assert engine.stacked(tree, [first, second]) == ({"0001.patch"}, {"0018.patch"})


DIFF_HEAD = "diff --git a/config.ts b/config.ts\n--- a/config.ts\n+++ b/config.ts\n"
