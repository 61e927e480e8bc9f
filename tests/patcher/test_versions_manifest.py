"""Version resolution, range expansion and manifest/series validation."""

from pathlib import Path

import pytest

from patcher import manifest, versions
from patcher.errors import PatcherError, UnknownVersion, UsageError
from patcher.manifest import ManifestError, parse_header

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


def _root(tmp_path: Path, manifest_text: str, series: dict[str, str] | None = None) -> Path:
    (tmp_path / "patches" / "s").mkdir(parents=True)
    (tmp_path / "patches" / "manifest.toml").write_text(manifest_text)
    for name, text in (series or {}).items():
        (tmp_path / "patches" / "s" / name).write_text(text)
    return tmp_path


GOOD = '[[series]]\nname = "s"\nversions = ">=1.0.0"\nbase = "v1.0.0"\n'


@pytest.mark.parametrize(
    ("manifest_text", "message"),
    [
        ('[[series]]\nname = "s"\nbase = "v1.0.0"\n', "lacks 'versions'"),
        ('[[series]]\nname = "s"\nversions = "~=banana"\nbase = "v1.0.0"\n', "Invalid specifier"),
        ('[[series]]\nname = "gone"\nversions = ">=1"\nbase = "v1.0.0"\n', "no folder patches/gone"),
        ("[[series]\n", "manifest.toml"),
    ],
)
def test_malformed_manifests_are_rejected(tmp_path: Path, manifest_text: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        manifest.load(_root(tmp_path, manifest_text))


def test_series_entries_must_exist_and_placements_stay_inside_the_tree(tmp_path: Path) -> None:
    root = _root(tmp_path, GOOD, {"series": "0001-a.patch\n"})
    series = manifest.load(root).by_name("s")
    with pytest.raises(ManifestError, match=r"0001-a\.patch is listed"):
        series.patches()
    (root / "patches" / "s" / "place.toml").write_text('[[place]]\nsource = "x"\ndest = "../evil"\n')
    with pytest.raises(ManifestError, match="inside the tree"):
        series.placements(root)
    (root / "patches" / "s" / "place.toml").write_text('[[place]]\nsource = "nothing-here"\ndest = "a"\n')
    with pytest.raises(ManifestError, match="does not exist"):
        series.placements(root)


def test_patch_headers_need_description_and_versions() -> None:
    header = parse_header(
        "p", "Description: adds things\n Longer why.\nVersions: v3.0.0..v3.1.0\n---\ndiff --git a/x b/x\n"
    )
    assert header.description == "adds things\nLonger why."
    assert header.versions == "v3.0.0..v3.1.0"
    with pytest.raises(ManifestError, match="lacks Versions"):
        parse_header("p", "Description: x\ndiff --git a/x b/x\n")
    with pytest.raises(PatcherError, match="lacks Description, Versions"):
        parse_header("p", "diff --git a/x b/x\n")
