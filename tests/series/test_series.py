"""Every shipped patch series is well-formed, consistent with itself and with db_extension and ml_service.

The same checks run for each series of the manifest; what differs between release lines (where the SDK and
the zh-CN strings live, how many multi-select menus carry upstream's refresh actions, which search builder a
release has) is read from the series itself or listed in MENUS below.
"""

import json
import re
import tomllib
from pathlib import Path

import opencc
import pytest
from unidiff import PatchSet

from db_extension.installer import install_script
from ml_service.models.clip.names import CLIP_MODELS
from patcher import manifest, placement, store, store_edit
from patcher.versions import parse

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = manifest.load(ROOT)
SERIES = SHIPPED.series
INSTALLER = "server/src/utils/immich-aio-database.ts"
RANKING = "server/src/utils/ocr-ranking.ts"
#: Every release immich-aio serves, each by exactly one series: the manifest's list.
SERVED = tuple(SHIPPED.supported())
#: The multi-select menus that get "Refresh OCR" / "Refresh smart search" next to upstream's refresh actions:
#: the pages that list them (v2.5.6 and later), or AssetJobActions.svelte, which every such menu renders.
MENUS = {
    "v3": 5,
    "v2.6-v2.7": 4,
    "v2.5.6": 3,
    "v2.5.3-v2.5.5": 1,
    "v2.5.0-v2.5.2": 1,
    "v2.2-v2.4": 1,
    "v1.143-v2.1": 1,
    "v1.140-v1.142": 1,
    "v1.137-v1.139": 1,
    "v1.136.0": 1,
    "v1.135": 1,
    "v1.133-v1.134": 1,
    "v1.132": 1,
}
by_name = pytest.mark.parametrize("series", SERIES, ids=lambda s: s.name)


def releases(series: manifest.Series) -> list[str]:
    return list(series.releases)


def patch_sets(series: manifest.Series) -> dict[str, PatchSet]:
    return {p.name: PatchSet(p.text().split("\n---\n", 1)[1]) for p in series.patches(series.base)}


def added_lines(series: manifest.Series, path_fragment: str, removed: bool = False) -> list[str]:
    """Lines the series adds (or removes) in files whose path contains `path_fragment`."""
    lines = []
    for patch in patch_sets(series).values():
        for patched in patch:
            if path_fragment in patched.path:
                lines += [
                    line.value.rstrip("\n")
                    for hunk in patched
                    for line in hunk
                    if (line.is_removed if removed else line.is_added)
                ]
    return lines


def edited_paths(series: manifest.Series) -> set[str]:
    return {patched.path for patch in patch_sets(series).values() for patched in patch}


def rendered(series: manifest.Series, dest: str, tag: str) -> str:
    (item,) = [p for p in series.placements(SHIPPED.root) if p.dest == dest]
    return rendered_item(series, item, tag)


def rendered_item(series: manifest.Series, item: manifest.Placement, tag: str) -> str:
    context = placement.template_context(tag, series)
    return placement.render(item, SHIPPED.root, context).decode("utf-8")


def test_every_served_release_has_exactly_one_series() -> None:
    for tag in SERVED:
        serving = [s.name for s in SERIES if s.serves(tag)]
        assert len(serving) == 1, f"{tag} is served by {serving}"
    assert SERVED[0] == "v1.132.3"
    assert len(SERVED) == 63


@by_name
def test_the_series_is_based_on_its_newest_release(series: manifest.Series) -> None:
    assert series.base == releases(series)[-1]


STORE = SHIPPED.root / "patches"


def listed_edits() -> list[str]:
    lines = [line.split("#", 1)[0] for line in (STORE / "series").read_text().splitlines()]
    return [line.split()[0] for line in lines if line.strip()]


def takes(tag: str, edit: str) -> bool:
    series = SHIPPED.series_for(tag)
    assert series is not None
    return edit in [p.name for p in series.patches(tag)]


def test_the_series_list_names_every_kept_edit_once_in_number_order() -> None:
    listed = listed_edits()
    numbers = [int(name.split("-", 1)[0]) for name in listed]
    assert numbers == sorted(set(numbers))
    # every feature keeps its number in every line; 0007, the web strings, became a merge of ui_snippets/i18n
    assert {n for n in numbers if n <= 12} == set(range(1, 13)) - {7}
    kept = {p.name for p in (STORE / "pool").glob("*.patch")}
    kept |= {p.name for p in (STORE / "generated").rglob("*.patch")}
    assert set(listed) == kept
    assert {d.name + ".patch" for d in (STORE / "overrides").iterdir()} <= set(listed)


def test_pool_patches_carry_a_dep3_header_and_overrides_name_their_releases() -> None:
    for path in sorted((STORE / "pool").glob("*.patch")) + sorted((STORE / "generated").rglob("*.patch")):
        fields = store.header_fields(path.read_text(encoding="utf-8"))
        assert len(fields.get("Description", "")) > 20, path.name
        assert fields.get("Author") == "immich-aio" and fields.get("Forwarded") == "not-needed", path.name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields.get("Last-Update", "")), "Last-Update YYYY-MM-DD"
        assert "Versions" not in fields, f"{path.name}: the series list says which releases take an edit"
    for path in sorted((STORE / "overrides").rglob("*.patch")):
        fields = store.header_fields(path.read_text(encoding="utf-8"))
        assert fields.get("Description"), path
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields.get("Last-Update", "")), path
        named = [tag for tag in SERVED if store.in_range(fields["Versions"], tag)]
        assert named, f"{path}: names no served release"
        assert all(takes(tag, path.parent.name + ".patch") for tag in named), (
            f"{path}: a release lacks the edit"
        )


def test_an_override_carries_only_sections_that_differ_from_the_pool() -> None:
    for folder in sorted((STORE / "overrides").iterdir()):
        pool_text = (STORE / "pool" / (folder.name + ".patch")).read_text(encoding="utf-8")
        pool = {s.path: edit_only_text(s.text) for s in store.split_patch(pool_text).sections}
        for path in sorted(folder.glob("*.patch")):
            for section in store.split_patch(path.read_text(encoding="utf-8")).sections:
                assert pool.get(section.path) != edit_only_text(section.text), f"{path}: {section.path}"


@by_name
def test_every_patch_parses_and_only_edits_files_inside_the_tree(series: manifest.Series) -> None:
    for name, patched_files in patch_sets(series).items():
        assert len(patched_files) > 0, name
        for patched in patched_files:
            assert patched.is_modified_file, f"{name}: {patched.path} is not an edit of an upstream file"
            assert patched.path.split("/", 1)[0] in ("server", "web", "i18n", "open-api", "packages")
            assert ".." not in Path(patched.path).parts
            assert patched.added > 0


@by_name
def test_patches_never_edit_a_placed_file(series: manifest.Series) -> None:
    # Edits may share a file (0018 builds on 0001's config lines): the engine applies and judges them in
    # `series` order (tests/patcher/test_engine.py), so only placed files are off limits.
    sets = patch_sets(series)
    placed = {p.dest for p in series.placements(SHIPPED.root)}
    for tag in releases(series):
        edited = {patched.path for patch in series.patches(tag) for patched in sets[patch.name]}
        assert edited and not placed & edited


@by_name
def test_placements_exist_have_unique_destinations_and_new_names(series: manifest.Series) -> None:
    entries = tomllib.loads((series.folder / "place.toml").read_text(encoding="utf-8"))["place"]
    assert len(entries) == len({(e["dest"], e["source"]) for e in entries})
    items = series.placements(SHIPPED.root)
    assert len(items) == len({(p.dest, p.source) for p in items})
    files = [p.dest for p in items if not p.strings]  # strings tables may share a locale file
    assert len(files) == len(set(files))
    for item in items:
        assert item.source.is_file()
        assert item.source.relative_to(ROOT).parts[0] in ("server_snippets", "ui_snippets")
        if item.strings:  # merged into the release's own locale file
            assert item.dest.startswith("i18n/") and item.source.relative_to(ROOT).parts[:2] == (
                "ui_snippets",
                "i18n",
            )
        else:
            assert item.dest.startswith(("server/src/", "web/src/"))
        assert item.render == item.source.name.endswith(".j2"), f"{item.source.name}: render iff a template"


@by_name
def test_every_placement_renders_for_every_release(series: manifest.Series) -> None:
    for tag in releases(series):
        for item in series.placements(SHIPPED.root):
            body = rendered_item(series, item, tag)
            assert body.strip()
            assert not re.search(r"\{\{|\{%|\{#-", body), f"{item.dest} kept template syntax"
            assert str(ROOT) not in body


@by_name
def test_the_start_up_installer_inlines_the_db_extension_sql_verbatim(series: manifest.Series) -> None:
    for tag in releases(series):
        storage = series.variables(tag).get("ocr_storage", "native")
        asset_table = series.variables(tag).get("asset_table", "asset")
        visibility_flags = series.variables(tag).get("visibility_flags", False)
        body = rendered(series, INSTALLER, tag)
        literals = re.findall(r"^const install = (\".*\");$", body, flags=re.MULTILINE)
        assert len(literals) == 1
        assert json.loads(literals[0]) == install_script(storage, asset_table, visibility_flags), tag
        assert "await sql.raw(install).execute(trx);" in body
        assert "set_config('immich_aio.sync_mode', 'patched-server', true)" in body


@by_name
def test_the_server_tags_its_connections_with_the_name_the_triggers_run_for(series: manifest.Series) -> None:
    body = rendered(series, INSTALLER, series.base)
    declared = r"^export const IMMICH_AIO_APPLICATION_NAME = '([\w-]+)';$"
    (name,) = re.findall(declared, body, flags=re.MULTILINE)
    install = install_script()
    assert re.search(
        rf"FUNCTION immich_aio\.server_application_name\(\) RETURNS text\n.*\n  RETURN '{name}';", install
    )
    assert "process.env.PGAPPNAME = IMMICH_AIO_APPLICATION_NAME;" in body


@by_name
def test_the_series_records_no_migration_a_stock_immich_would_not_know(series: manifest.Series) -> None:
    placed = [p.dest for p in series.placements(SHIPPED.root)]
    assert not [dest for dest in placed if "/schema/migrations/" in dest]
    assert not added_lines(series, "server/src/schema/migrations")
    runner = added_lines(series, "server/src/repositories/database.repository.ts")
    assert "    await forgetImmichAioMigrations(this.db);" in runner
    assert "    await installImmichAio(this.db, this.logger);" in runner


@by_name
def test_the_ranking_code_uses_the_search_builder_of_each_release(series: manifest.Series) -> None:
    for tag in releases(series):
        body = rendered(series, RANKING, tag)
        if parse(tag) >= parse("v3.1.0"):
            assert "import { searchAssetBuilderLegacy } from 'src/utils/database';" in body
            assert ".select(columns.searchAsset)" in body and ".selectAll('asset')" not in body
        else:
            # the asset table is "assets" before v1.136
            table = series.variables(tag).get("asset_table", "asset")
            assert "import { searchAssetBuilder } from 'src/utils/database';" in body
            assert f".selectAll('{table}')" in body and "columns" not in body


@by_name
def test_the_placed_specs_expect_the_visibility_the_release_passes(series: manifest.Series) -> None:
    body = rendered(series, "server/src/services/search-ocr.service.spec.ts", series.base)
    not_locked = parse(series.base) >= parse("v3.0.0")
    assert ("visibility: 'not-locked'" in body) == not_locked


@by_name
def test_the_ranking_code_scores_only_through_the_db_extension_functions(series: manifest.Series) -> None:
    body = rendered(series, RANKING, series.base)
    install = install_script()
    used = set(re.findall(r"immich_aio\.(\w+)\(", body)) | set(re.findall(r"immich_aio\.(\w+)`", body))
    assert used == {"ocr_query", "ocr_rank", "hybrid_score", "asset_ocr_document"}
    for name in used - {"asset_ocr_document"}:
        assert re.search(rf"CREATE OR REPLACE FUNCTION immich_aio\.{name}\(", install), name
    assert re.search(r"CREATE TABLE IF NOT EXISTS immich_aio\.asset_ocr_document", install)
    assert "ts_rank" not in body and "1.0 /" not in body, "scoring must stay in the SQL"


@by_name
def test_the_chinese_clip_models_match_what_ml_service_serves(series: manifest.Series) -> None:
    registered = {}
    for line in added_lines(series, "server/src/constants.ts"):
        match = re.match(r"^\s*'?([\w.-]+)'?: \{ dimSize: (\d+) \},$", line)
        if match:
            registered[match.group(1)] = int(match.group(2))
    assert registered == CLIP_MODELS


@by_name
def test_the_openapi_spec_and_sdk_carry_the_new_job_names(series: manifest.Series) -> None:
    (sdk,) = [path for path in edited_paths(series) if path.endswith("/src/fetch-client.ts")]
    # v3 keeps its SDK in packages/sdk, v2 in open-api/typescript-sdk
    assert (
        sdk == ("packages/sdk" if series.name == "v3" else "open-api/typescript-sdk") + "/src/fetch-client.ts"
    )
    spec_lines = added_lines(series, "open-api/immich-openapi-specs.json")
    sdk_lines = added_lines(series, sdk)
    server_lines = added_lines(series, "server/src/dtos/asset.dto.ts")
    for job in ("refresh-ocr", "refresh-smart-search"):
        assert any(f"'{job}'" in line for line in server_lines)
        assert any(f'"{job}"' in line for line in spec_lines)
        assert any(f'= "{job}"' in line for line in sdk_lines)
    assert any('"OcrHybridSearchConfig": {' in line for line in spec_lines)
    assert "export enum OcrHybridMethod {" in sdk_lines


def strings_merged(series: manifest.Series) -> dict[str, dict[str, str]]:
    """The strings a series merges into each locale file, flattened to the keys `$t()` names."""

    def flat(group: dict[str, object], trail: str = "") -> dict[str, str]:
        result: dict[str, str] = {}
        for key, value in group.items():
            result |= (
                flat(value, f"{trail}{key}.") if isinstance(value, dict) else {f"{trail}{key}": str(value)}
            )
        return result

    merged: dict[str, dict[str, str]] = {}
    for table in [p for p in series.placements(SHIPPED.root) if p.strings]:
        strings = flat(json.loads(table.source.read_text("utf-8")))
        merged.setdefault(table.dest.split("/")[1], {}).update(strings)
    return merged


@by_name
def test_every_new_string_exists_in_english_and_both_chinese_scripts(series: manifest.Series) -> None:
    merged = strings_merged(series)
    traditional_file = "zh_Hant.json"
    (simplified_file,) = set(merged) - {"en.json", traditional_file}
    # the file of each release: zh_SIMPLIFIED.json until v2.5.6, zh_Hans.json from v2.6
    assert simplified_file == (
        "zh_SIMPLIFIED.json" if parse(series.base) < parse("v2.6.0") else "zh_Hans.json"
    )
    english, simplified, traditional = merged["en.json"], merged[simplified_file], merged[traditional_file]
    assert english.keys() == simplified.keys() == traditional.keys()
    assert all(re.search(r"[\u4e00-\u9fff]", text) for text in [*simplified.values(), *traditional.values()])
    # each script is written in itself: OpenCC leaves Simplified text Simplified and Traditional Traditional
    # (a string may be the same in both: 融合方式)
    to_simplified, to_traditional = opencc.OpenCC("t2s"), opencc.OpenCC("s2twp")
    for key in english:
        assert to_simplified.convert(simplified[key]) == simplified[key], simplified[key]
        assert to_traditional.convert(traditional[key]) == traditional[key], traditional[key]
    used: set[str] = set()
    web = [p for p in series.placements(SHIPPED.root) if p.dest.startswith("web/")]
    sources = [rendered_item(series, p, series.base) for p in web]
    sources += ["\n".join(added_lines(series, "web/src"))]
    for source in sources:
        used |= set(re.findall(r"\$t\('([\w.]+)'\)", source))
    upstream = set(re.findall(r"\$t\('([\w.]+)'\)", "\n".join(added_lines(series, "web/src", removed=True))))
    # upstream's own keys that new code reuses without a removed line naming them (the OCR job tile's)
    upstream |= {"all", "missing"}
    new_keys = {key for key in used - upstream if not key.startswith("errors.")}
    assert new_keys <= english.keys(), f"missing strings: {new_keys - english.keys()}"
    assert english.keys() <= used, f"unused strings: {english.keys() - used}"


@by_name
def test_the_web_menus_mount_the_snippet_in_the_viewer_and_the_selections(series: manifest.Series) -> None:
    mounts = [line.strip() for line in added_lines(series, "web/src") if "<RefreshSearchMenuItems" in line]
    assert mounts.count("<RefreshSearchMenuItems assetId={asset.id} />") == 1
    assert mounts.count("<RefreshSearchMenuItems />") == MENUS[series.name]
    assert len(mounts) == 1 + MENUS[series.name]


@by_name
def test_every_chinese_clip_model_has_a_stand_in_a_stock_immich_knows(series: manifest.Series) -> None:
    config = (ROOT / "server_snippets" / "utils" / "immich-aio-config.ts").read_text(encoding="utf-8")
    stand_ins = dict(re.findall(r"^  '([\w.-]+)': '([\w.-]+)',$", config, flags=re.MULTILINE))
    assert stand_ins.keys() == CLIP_MODELS.keys()
    assert not [name for name in stand_ins.values() if name in CLIP_MODELS]
    stored = added_lines(series, "server/src/utils/config.ts")
    assert any("storeImmichAioClipModel(partialConfig)" in line for line in stored)
    assert any("loadImmichAioClipModel(await metadataRepo.get(" in line for line in stored)


def edit_only_text(diff: str) -> str:
    """A diff without what depends on the base release: blob ids and hunk positions and headings."""
    diff = re.sub(r"^index [0-9a-f]+\.\.[0-9a-f]+( \d+)?$", "index", diff, flags=re.MULTILINE)
    return re.sub(r"^@@ .*$", "@@", diff, flags=re.MULTILINE)


@by_name
def test_the_pipeline_reads_the_visibility_the_release_keeps(series: manifest.Series) -> None:
    # v1.132 keeps an asset's visibility in the "isArchived" / "isVisible" flags (v1.133 makes a column of
    # them)
    flags = series.variables(series.base).get("visibility_flags", False)
    assert flags == (parse(series.base) < parse("v1.133.0"))
    if not any(p.dest == "server/src/services/ocr.service.ts" for p in series.placements(SHIPPED.root)):
        return  # the v2/v3 lines have upstream's own OCR job
    service = rendered(series, "server/src/services/ocr.service.ts", series.base)
    spec = rendered(series, "server/src/services/ocr.service.spec.ts", series.base)
    assert ("if (!asset.isVisible) {" in service) == flags
    assert ("AssetVisibility" in service + spec) != flags
    installer = rendered(series, INSTALLER, series.base)
    assert ("immich_aio.asset_visibility(to_jsonb(NEW))" in installer) == flags


def test_the_served_releases_doc_is_what_the_manifest_generates() -> None:
    doc = (ROOT / store_edit.SERVED_DOC).read_text(encoding="utf-8")
    assert doc == store_edit.served_markdown(SHIPPED), "regenerate: immich-aio list --format markdown"


def test_the_hand_written_store_stays_within_its_budget() -> None:
    """Issue 25's budget: generated output (patches/generated/) does not count."""
    written = sorted((STORE / "pool").glob("*.patch")) + sorted((STORE / "overrides").rglob("*.patch"))
    lines = sum(len(path.read_text(encoding="utf-8").splitlines()) for path in written)
    assert len(written) <= 80 and lines <= 8000, (len(written), lines)
