"""Version resolution, range expansion and manifest/series validation."""

from pathlib import Path

import pytest

from patcher import manifest, store, versions
from patcher.errors import PatcherError, UnknownVersion, UsageError
from patcher.manifest import ManifestError

TAGS = ["v2.7.5", "v3.0.0", "v3.0.1", "v3.0.2", "v3.0.3", "v3.1.0", "v3.1.0-rc.1", "latest", "v3.2.0"]


def test_normalize_accepts_tags_and_bare_numbers() -> None:
    assert versions.normalize("3.1.0") == "v3.1.0"
    assert versions.normalize(" v3.1.0 ") == "v3.1.0"
    for bad in ("", "v3.1", "three", "v3.1.0.1", "v3.1.0-rc.1"):
        with pytest.raises(UsageError):
            versions.normalize(bad)


def test_ranges_are_inclusive_and_ordered_numerically() -> None:
    assert versions.expand("v3.0.0..v3.1.0", TAGS) == ["v3.0.0", "v3.0.1", "v3.0.2", "v3.0.3", "v3.1.0"]
    assert versions.expand("v3.0.2,v3.0.0", TAGS) == ["v3.0.0", "v3.0.2"]
    assert versions.expand("v3.1.0..", TAGS) == ["v3.1.0", "v3.2.0"]
    assert versions.expand("3.0.3", TAGS) == ["v3.0.3"]
    assert versions.sort_tags(["v1.10.0", "v1.9.0", "v1.9.0", "nightly"]) == ["v1.9.0", "v1.10.0"]


def test_bad_ranges_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="newer"):
        versions.expand("v3.1.0..v3.0.0", TAGS)
    with pytest.raises(UsageError, match="names no release"):
        versions.expand("v9.0.0..v9.1.0", TAGS)
    with pytest.raises(UsageError):
        versions.expand("v3.x", TAGS)


def test_resolve_maps_versions_to_series(series_manifest: manifest.Manifest) -> None:
    tag, series = series_manifest.resolve("3.0.2")
    assert (tag, series.name) == ("v3.0.2", "t3")
    assert series_manifest.supported() == ["v3.0.0", "v3.0.1", "v3.0.2", "v3.0.3", "v3.1.0"]


@pytest.mark.parametrize("version", ["v2.7.5", "v3.2.0", "v9.9.9", "garbage"])
def test_unknown_versions_list_the_supported_ones(series_manifest: manifest.Manifest, version: str) -> None:
    with pytest.raises(UnknownVersion) as caught:
        series_manifest.resolve(version)
    assert "v3.0.0" in str(caught.value) and "v3.1.0" in str(caught.value)
    assert caught.value.exit_code == 2


def test_release_spellings_people_type_resolve_to_a_served_release() -> None:
    served = ["v2.6.0", "v2.7.4", "v2.7.5", "v3.0.0", "v3.1.0"]
    assert versions.resolve_release("latest", served) == "v3.1.0"
    assert versions.resolve_release("v2", served) == "v2.7.5"
    assert versions.resolve_release("v2.x", served) == "v2.7.5"
    assert versions.resolve_release("2.7", served) == "v2.7.5"
    assert versions.resolve_release("v2.6", served) == "v2.6.0"
    assert versions.resolve_release("2.7.4", served) == "v2.7.4"
    for unknown in ("v4", "v2.8", "next", "", "v2.7.5.1"):
        with pytest.raises(UnknownVersion, match=r"v3\.1\.0"):
            versions.resolve_release(unknown, served)


def test_the_manifest_says_which_release_a_spelling_meant(series_manifest: manifest.Manifest) -> None:
    assert series_manifest.resolve("latest")[0] == "v3.1.0"
    assert series_manifest.resolve("v3.0")[0] == "v3.0.3"


def _root(tmp_path: Path, manifest_text: str, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "patches" / "pool").mkdir(parents=True)
    (tmp_path / "patches" / "manifest.toml").write_text(manifest_text)
    for name, text in (files or {}).items():
        (tmp_path / "patches" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "patches" / name).write_text(text)
    return tmp_path


GOOD = '[[series]]\nname = "s"\nbase = "v1.1.0"\nreleases = ["v1.0.0", "v1.1.0", "v1.2.0"]\n'


@pytest.mark.parametrize(
    ("manifest_text", "message"),
    [
        ('[[series]]\nname = "s"\nbase = "v1.0.0"\n', "lacks 'releases'"),
        ('[[series]]\nname = "s"\nbase = "v1.0.0"\nreleases = ["v1.banana"]\n', "not an Immich release"),
        ('[[series]]\nname = "s"\nbase = "v1.0.0"\nreleases = ["v1.1.0"]\n', "base v1.0.0 is not one of"),
        (GOOD + GOOD.replace('"s"', '"t"'), "listed by two series"),
        ("[[series]\n", "manifest.toml"),
    ],
)
def test_malformed_manifests_are_rejected(tmp_path: Path, manifest_text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        manifest.load(_root(tmp_path, manifest_text))


def test_series_entries_must_exist_and_placements_stay_inside_the_tree(tmp_path: Path) -> None:
    root = _root(tmp_path, GOOD, {"series": "0001-a.patch\n"})
    series = manifest.load(root).by_name("s")
    with pytest.raises(PatcherError, match=r"names 0001-a\.patch, but neither pool/ nor generated/"):
        series.patches()
    (root / "patches" / "place.toml").write_text('[[place]]\nsource = "x"\ndest = "../evil"\n')
    with pytest.raises(ManifestError, match="inside the tree"):
        series.placements(root)
    (root / "patches" / "place.toml").write_text('[[place]]\nsource = "nothing-here"\ndest = "a"\n')
    with pytest.raises(ManifestError, match="does not exist"):
        series.placements(root)


def test_a_folder_entry_places_each_of_its_files_under_a_prefix(tmp_path: Path) -> None:
    root = _root(tmp_path, GOOD)
    folder = root / "ui_snippets" / "settings"
    folder.mkdir(parents=True)
    (folder / "Hybrid.svelte.j2").write_text("h")
    (folder / "Conversion.svelte.j2").write_text("c")
    place = root / "patches" / "place.toml"
    place.write_text(
        '[[place]]\nsource = "ui_snippets/settings/"\ndest = "web/admin/"\nprefix = "Aio"\nrender = true\n'
    )
    placed = manifest.load(root).by_name("s").placements(root)
    assert [(p.source.name, p.dest, p.render) for p in placed] == [
        ("Conversion.svelte.j2", "web/admin/AioConversion.svelte", True),
        ("Hybrid.svelte.j2", "web/admin/AioHybrid.svelte", True),
    ]
    place.write_text('[[place]]\nsource = "ui_snippets/settings/"\ndest = "web/admin/One.svelte"\n')
    with pytest.raises(ManifestError, match="must both name a folder"):
        manifest.load(root).by_name("s").placements(root)
    (folder / "Hybrid.svelte.j2").unlink()
    (folder / "Conversion.svelte.j2").unlink()
    place.write_text('[[place]]\nsource = "ui_snippets/settings/"\ndest = "web/admin/"\n')
    with pytest.raises(ManifestError, match="not a folder holding files"):
        manifest.load(root).by_name("s").placements(root)


def section(path: str, line: str) -> str:
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-old\n+{line}\n"


def test_an_edit_is_the_pool_with_the_narrowest_override_deciding_per_file(tmp_path: Path) -> None:
    header = "Description: the edit\n---\n"
    files = {
        "series": "0001-e.patch\n0002-late.patch >=1.1.0\n",
        "pool/0001-e.patch": header
        + section("a.ts", "pool a")
        + section("b.ts", "pool b")
        + section("c.ts", "c"),
        "pool/0002-late.patch": header + section("d.ts", "late"),
        "overrides/0001-e/old.patch": "Description: older\nVersions: v1.0.0..v1.1.0\nDrops: c.ts\n---\n"
        + section("a.ts", "wide a")
        + section("b.ts", "wide b"),
        "overrides/0001-e/oldest.patch": "Description: oldest\nVersions: v1.0.0\n---\n"
        + section("a.ts", "narrow a"),
    }
    series = manifest.load(_root(tmp_path, GOOD, files)).by_name("s")
    oldest = series.patches("v1.0.0")
    assert [p.name for p in oldest] == ["0001-e.patch"]
    text = oldest[0].text()
    assert "+narrow a" in text and "+wide b" in text and "c.ts" not in text and "pool" not in text
    assert [p.name for p in oldest[0].sources] == ["0001-e.patch", "old.patch", "oldest.patch"]
    middle = series.patches("v1.1.0")
    assert "+wide a" in middle[0].text() and [p.name for p in middle] == ["0001-e.patch", "0002-late.patch"]
    newest = series.patches("v1.2.0")[0].text()
    assert "+pool a" in newest and "+pool b" in newest and "+c" in newest


def test_an_override_without_versions_or_with_a_bad_range_is_an_error(tmp_path: Path) -> None:
    files = {"series": "0001-e.patch\n", "pool/0001-e.patch": "Description: e\n---\n" + section("a.ts", "x")}
    root = _root(tmp_path, GOOD, {**files, "overrides/0001-e/x.patch": "Description: x\n---\n"})
    with pytest.raises(PatcherError, match="needs a Versions: header"):
        manifest.load(root).by_name("s").patches("v1.0.0")
    (root / "patches/overrides/0001-e/x.patch").write_text("Description: x\nVersions: soon\n---\n")
    with pytest.raises(UsageError, match="'soon' is not a release or a range"):
        manifest.load(root).by_name("s").patches("v1.0.0")


def test_header_fields_join_continuation_lines() -> None:
    fields = store.header_fields("Description: adds things\n Longer why.\nVersions: v3.0.0..v3.1.0\n---\n")
    assert fields == {"Description": "adds things\nLonger why.", "Versions": "v3.0.0..v3.1.0"}
    assert store.in_range("v1.133.0..v1.135.3, v1.140.0", "v1.135.1")
    assert store.in_range("v1.133.0..v1.135.3, v1.140.0", "v1.140.0")
    assert not store.in_range("v1.133.0..v1.135.3, v1.140.0", "v1.136.0")
