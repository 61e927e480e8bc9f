"""Every series shipped in patches/ is well-formed; with IMMICH_SOURCE set, it also applies to real Immich."""

import os
from pathlib import Path

import pytest

from patcher import check, engine, gitops, manifest, placement, store
from patcher.diagnose import parse_patch

from .conftest import tree_fingerprint

SHIPPED = manifest.load(Path(__file__).resolve().parents[2])


def test_the_manifest_names_existing_series_with_bases_they_serve() -> None:
    assert SHIPPED.series, "the manifest lists no series"
    for series in SHIPPED.series:
        assert series.serves(series.base), f"{series.name}: its base {series.base} is outside its range"


def test_no_release_is_served_by_two_series() -> None:
    for tag in SHIPPED.supported():
        serving = [s.name for s in SHIPPED.series if s.serves(tag)]
        assert len(serving) <= 1, f"{tag} is served by {serving}"


@pytest.mark.parametrize("series", SHIPPED.series, ids=lambda s: s.name)
def test_every_patch_has_a_header_and_parses(series: manifest.Series) -> None:
    patches = series.patches()
    for patch in patches:
        assert store.header_fields(patch.text()).get("Description")
        files = parse_patch(patch.text())
        assert len(files) > 0, f"{patch.name} changes no file"
        for patched in files:
            assert not patched.target_file.startswith("b/..") and ".." not in Path(patched.path).parts


@pytest.mark.parametrize("series", SHIPPED.series, ids=lambda s: s.name)
def test_every_placement_exists_and_renders(series: manifest.Series) -> None:
    for item in series.placements(SHIPPED.root):
        body = placement.render(item, SHIPPED.root, placement.template_context(series.base, series))
        assert body, f"{item.dest} renders empty"


IMMICH_SOURCE = os.environ.get("IMMICH_SOURCE")
needs_source = pytest.mark.skipif(not IMMICH_SOURCE, reason="set IMMICH_SOURCE to a local Immich upstream")


@pytest.mark.immich_source
@needs_source
def test_every_supported_release_takes_its_series() -> None:
    assert IMMICH_SOURCE
    rows = check.check_matrix(SHIPPED, IMMICH_SOURCE, SHIPPED.supported())
    failures = {row.version: row.message for row in rows if row.result not in ("clean", "3way")}
    assert failures == {}


@pytest.mark.immich_source
@needs_source
def test_patch_and_revert_a_real_release_byte_for_byte(tmp_path: Path) -> None:
    assert IMMICH_SOURCE
    tag, series = SHIPPED.resolve(SHIPPED.series[-1].base)
    tree = gitops.clone_release(IMMICH_SOURCE, tag, tmp_path / "immich")
    before = tree_fingerprint(tree)
    outcome = engine.apply_series(tree, series, tag, SHIPPED.root, source=IMMICH_SOURCE)
    assert outcome.method == "clean"
    assert engine.apply_series(tree, series, tag, SHIPPED.root).already_applied
    engine.revert(tree)
    assert tree_fingerprint(tree) == before
