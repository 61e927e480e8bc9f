"""A patch or revert killed at any moment (SIGKILL, power cut) never leaves a half-patched tree behind."""

import os
from pathlib import Path

import pytest

from patcher import engine, gitops, manifest, state
from patcher.snapshot import Snapshot

from .conftest import Upstream, tree_fingerprint
from .interrupt import exercise


def test_killed_patches_and_reverts_leave_upstream_or_patched(
    aio_root: Path, upstream: Upstream, tmp_path: Path
) -> None:
    tree = gitops.clone_release(str(upstream.url), "v3.0.0", tmp_path / "immich")  # a 3-way merge
    env = dict(os.environ, IMMICH_AIO_ROOT=str(aio_root))
    report = exercise(tree, ["--source", str(upstream.url)], points=20, seed=20261201, env=env)
    print(report)
    assert sum(report.outcomes.values()) == 20


def test_a_journal_left_by_a_killed_apply_is_undone_by_status(
    series_manifest: manifest.Manifest, upstream: Upstream, tmp_path: Path
) -> None:
    tree = gitops.clone_release(str(upstream.url), "v3.1.0", tmp_path / "immich")
    before = tree_fingerprint(tree)
    series = series_manifest.by_name("t3")
    # What a kill right after the first write leaves: the journal, the backup, one file changed.
    snapshot_paths = {"server/src/search.ts", "web/src/menu.svelte", "web/src/lib/new/refresh-ocr.svelte"}
    state.begin_apply(
        tree,
        Snapshot.capture(tree, snapshot_paths),
        (gitops.git_dir(tree) / "index").read_bytes(),
        "t3",
        "v3.1.0",
    )
    (tree / "server/src/search.ts").write_text("half written")
    (tree / "web/src/lib/new").mkdir(parents=True)
    (tree / "web/src/lib/new/refresh-ocr.svelte").write_text("<button>")
    (gitops.git_dir(tree) / "index.lock").write_text("")
    result = engine.status(tree, series, upstream.root)
    assert result.recovered and "undone" in result.recovered
    assert tree_fingerprint(tree) == before
    assert not (gitops.git_dir(tree) / "index.lock").exists()
    assert engine.apply_series(tree, series, "v3.1.0", upstream.root).method == "clean"


IMMICH_SOURCE = os.environ.get("IMMICH_SOURCE")


@pytest.mark.immich_source
@pytest.mark.skipif(not IMMICH_SOURCE, reason="set IMMICH_SOURCE to a local Immich upstream")
def test_fifty_kill_points_against_a_real_immich_tree(tmp_path: Path) -> None:
    assert IMMICH_SOURCE
    shipped = manifest.load(Path(__file__).resolve().parents[2])
    tag = shipped.series[-1].base
    tree = gitops.clone_release(IMMICH_SOURCE, tag, tmp_path / "immich")
    report = exercise(tree, ["--source", IMMICH_SOURCE], points=50, seed=31)
    print(report)
    assert sum(report.outcomes.values()) == 50
