"""Strings merged into locale files, and series lines limited to some releases, on a small real git repo."""

import json
from pathlib import Path

import pytest

from patcher import engine, manifest
from patcher.errors import PatchConflict, PatcherError
from patcher.strings import StringsError, add, merged
from tests.patcher.conftest import git

LOCALE = {"admin": {"a_setting": "A", "z_setting": "Z"}, "delete": "Delete", "refresh": "Refresh"}


def dump(document: dict[str, object]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def test_keys_land_in_sorted_place_and_the_rest_stays_byte_for_byte() -> None:
    upstream = dump(LOCALE)
    text = merged(
        upstream, {"admin": {"m_setting": "中"}, "refresh_ocr": "刷新 OCR", "aaa": "first"}, "en.json"
    )
    lines = text.splitlines()
    assert lines.index('    "m_setting": "中",') == lines.index('    "a_setting": "A",') + 1
    assert lines.index('  "refresh_ocr": "刷新 OCR"') == lines.index('  "refresh": "Refresh",') + 1
    assert lines[1] == '  "aaa": "first",'
    kept = [
        line for line in lines if "m_setting" not in line and "refresh_ocr" not in line and "aaa" not in line
    ]
    assert "\n".join(kept).replace('"Refresh",', '"Refresh"') + "\n" == upstream


def test_a_key_upstream_already_has_keeps_upstreams_text() -> None:
    document = json.loads(dump(LOCALE))
    assert add(document, {"refresh": "ours", "admin": {"z_setting": "ours"}}) == [
        "refresh",
        "admin.z_setting",
    ]
    assert document == LOCALE


@pytest.mark.parametrize(
    ("upstream", "additions", "message"),
    [
        ("{", {}, "not valid JSON"),
        ('{"a": "b"}', {}, "not laid out as Immich's formatter writes it"),
        (dump(LOCALE), {"delete": {"nested": "x"}}, "delete is a string in the locale file"),
        (dump(LOCALE), {"count": 3}, "count: a string's text must be a string"),
    ],
)
def test_a_file_the_strings_cannot_go_into_is_a_clear_error(
    upstream: str, additions: dict[str, object], message: str
) -> None:
    with pytest.raises(StringsError, match=message):
        merged(upstream, additions, "i18n/en.json")


@pytest.fixture()
def strings_repo(tmp_path: Path) -> tuple[Path, manifest.Manifest]:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    page = work / "web" / "page.svelte"
    page.parent.mkdir(parents=True)
    for tag, with_locale in (("v1.0.0", True), ("v1.1.0", True), ("v1.2.0", False)):
        page.write_text(f"<h1>{tag}</h1>\n<p>body</p>\n", encoding="utf-8")
        locale = work / "i18n" / "en.json"
        if with_locale:
            locale.parent.mkdir(exist_ok=True)
            locale.write_text(dump(LOCALE), encoding="utf-8")
        else:
            locale.unlink()
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", tag)
        git(work, "tag", tag)
    root = tmp_path / "root"
    series = root / "patches"
    (series / "pool").mkdir(parents=True)
    (root / "ui_snippets").mkdir()
    (root / "ui_snippets" / "en.json").write_text(dump({"refresh_ocr": "Refresh OCR"}), encoding="utf-8")
    (series / "place.toml").write_text(
        '[[place]]\nsource = "ui_snippets/en.json"\ndest = "i18n/en.json"\nmerge = "strings"\n',
        encoding="utf-8",
    )
    diff = "--- a/web/page.svelte\n+++ b/web/page.svelte\n@@ -2 +2,2 @@\n <p>body</p>\n+<p>new in 1.1</p>\n"
    header = "Description: a paragraph the newer releases get\nVersions: v1.1.0..v1.2.0\nAuthor: tests\n---\n"
    (series / "pool" / "0001-paragraph.patch").write_text(header + diff, encoding="utf-8")
    (series / "series").write_text("0001-paragraph.patch >=1.1.0  # 1.0 lacks it\n", encoding="utf-8")
    (root / "patches" / "manifest.toml").write_text(
        '[[series]]\nname = "s1"\nbase = "v1.1.0"\n'
        'releases = ["v1.0.0", "v1.1.0", "v1.2.0"]\ndescription = "t"\n',
        encoding="utf-8",
    )
    return work, manifest.load(root)


def checkout(work: Path, tag: str, dest: Path) -> Path:
    git(work.parent, "clone", "-q", "--branch", tag, str(work), str(dest))
    return dest


def test_the_strings_merge_on_apply_and_revert_restores_the_file(
    strings_repo: tuple[Path, manifest.Manifest], tmp_path: Path
) -> None:
    work, shipped = strings_repo
    series = shipped.by_name("s1")
    assert [p.name for p in series.patches("v1.0.0")] == []
    assert [p.name for p in series.patches("v1.1.0")] == ["0001-paragraph.patch"]
    for tag, paragraph in (("v1.0.0", False), ("v1.1.0", True)):
        tree = checkout(work, tag, tmp_path / tag)
        before = (tree / "i18n/en.json").read_bytes()
        outcome = engine.apply_series(tree, series, tag, shipped.root)
        assert [p.name for p in outcome.patches] == (["0001-paragraph.patch"] if paragraph else [])
        assert json.loads((tree / "i18n/en.json").read_text())["refresh_ocr"] == "Refresh OCR"
        assert ("new in 1.1" in (tree / "web/page.svelte").read_text()) is paragraph
        assert engine.apply_series(tree, series, tag, shipped.root).already_applied
        engine.revert(tree)
        assert (tree / "i18n/en.json").read_bytes() == before
        assert git(tree, "status", "--porcelain") == ""


def test_a_release_without_the_locale_file_conflicts_and_keeps_the_tree(
    strings_repo: tuple[Path, manifest.Manifest], tmp_path: Path
) -> None:
    work, shipped = strings_repo
    tree = checkout(work, "v1.2.0", tmp_path / "v1.2.0")
    with pytest.raises(PatchConflict, match=r"i18n/en.json hunk \(strings\)"):
        engine.apply_series(tree, shipped.by_name("s1"), "v1.2.0", shipped.root)
    assert git(tree, "status", "--porcelain") == ""


def test_a_series_line_with_a_bad_specifier_is_named(strings_repo: tuple[Path, manifest.Manifest]) -> None:
    _, shipped = strings_repo
    series = shipped.by_name("s1")
    (series.folder / "series").write_text("0001-paragraph.patch from-1.1\n", encoding="utf-8")
    with pytest.raises(PatcherError, match=r"'from-1\.1' is not a version specifier"):
        series.patches("v1.1.0")
