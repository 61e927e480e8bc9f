"""The Immich v3 patch series is well-formed, consistent with itself and with db_extension and ml_service."""

import json
import re
import tomllib
from pathlib import Path

import pytest
from unidiff import PatchSet

from ml_service.models.clip_names import CN_CLIP_MODELS
from patcher import manifest, placement
from patcher.releases import KNOWN_RELEASES
from patcher.versions import parse

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = manifest.load(ROOT)
SERIES = SHIPPED.by_name("v3")
V3_RELEASES = ("v3.0.0", "v3.0.1", "v3.0.2", "v3.0.3", "v3.1.0")
INSTALLER = "server/src/utils/immich-aio-database.ts"


def patch_sets() -> dict[str, PatchSet]:
    return {p.name: PatchSet(p.text().split("\n---\n", 1)[1]) for p in SERIES.patches()}


def added_lines(path_fragment: str, removed: bool = False) -> list[str]:
    """Lines the series adds (or removes) in files whose path contains `path_fragment`."""
    lines = []
    for patch in patch_sets().values():
        for patched in patch:
            if path_fragment in patched.path:
                lines += [
                    line.value.rstrip("\n")
                    for hunk in patched
                    for line in hunk
                    if (line.is_removed if removed else line.is_added)
                ]
    return lines


def rendered(dest: str, tag: str) -> str:
    (item,) = [p for p in SERIES.placements(SHIPPED.root) if p.dest == dest]
    return placement.render(item, SHIPPED.root, placement.template_context(tag, SERIES)).decode("utf-8")


def test_the_manifest_serves_every_v3_release_with_this_series_and_nothing_else() -> None:
    for tag in V3_RELEASES:
        assert tag in KNOWN_RELEASES
        assert SHIPPED.series_for(tag) is SERIES, tag
    assert SERIES.base == "v3.1.0"
    for tag in KNOWN_RELEASES:
        if tag not in V3_RELEASES and parse(tag) < parse("v3.2.0"):
            assert SHIPPED.series_for(tag) is not SERIES, f"{tag} is not a v3 release"


def test_the_series_lists_every_patch_file_once_in_number_order() -> None:
    listed = [p.name for p in SERIES.patches()]
    on_disk = sorted(p.name for p in SERIES.folder.glob("*.patch"))
    assert listed == on_disk
    numbers = [int(name.split("-", 1)[0]) for name in listed]
    assert numbers == list(range(1, len(listed) + 1))


@pytest.mark.parametrize("patch", SERIES.patches(), ids=lambda p: p.name)
def test_every_patch_has_a_header_naming_the_v3_range(patch: manifest.PatchFile) -> None:
    header = patch.header()
    assert header.versions == "v3.0.0..v3.1.0"
    assert len(header.description) > 20
    assert header.fields.get("Author") == "immich-aio"
    assert header.fields.get("Forwarded") == "not-needed"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", header.fields.get("Last-Update", "")), "Last-Update YYYY-MM-DD"


@pytest.mark.parametrize("patch", SERIES.patches(), ids=lambda p: p.name)
def test_every_patch_parses_and_only_edits_files_inside_the_tree(patch: manifest.PatchFile) -> None:
    patched_files = PatchSet(patch.text().split("\n---\n", 1)[1])
    assert len(patched_files) > 0
    for patched in patched_files:
        assert patched.is_modified_file, f"{patch.name}: {patched.path} is not an edit of an upstream file"
        assert patched.path.split("/", 1)[0] in ("server", "web", "i18n", "open-api", "packages")
        assert ".." not in Path(patched.path).parts
        assert patched.added > 0


def test_patches_edit_disjoint_files_and_never_a_placed_file() -> None:
    owners: dict[str, str] = {}
    for name, patched_files in patch_sets().items():
        for patched in patched_files:
            assert patched.path not in owners, (
                f"{patched.path} is edited by {owners[patched.path]} and {name}"
            )
            owners[patched.path] = name
    placed = {p.dest for p in SERIES.placements(SHIPPED.root)}
    assert not placed & set(owners)


def test_placements_exist_have_unique_destinations_and_new_names() -> None:
    entries = tomllib.loads((SERIES.folder / "place.toml").read_text(encoding="utf-8"))["place"]
    items = SERIES.placements(SHIPPED.root)
    assert len(items) == len(entries) == len({p.dest for p in items})
    for item in items:
        assert item.source.is_file()
        assert item.dest.startswith(("server/src/", "web/src/"))


@pytest.mark.parametrize("tag", V3_RELEASES)
def test_every_placement_renders_for_every_v3_release(tag: str) -> None:
    for item in SERIES.placements(SHIPPED.root):
        body = rendered(item.dest, tag)
        assert body.strip()
        assert "{{" not in body and "{%" not in body, f"{item.dest} kept template syntax"
        assert str(ROOT) not in body


def test_the_start_up_installer_inlines_the_db_extension_sql_verbatim() -> None:
    body = rendered(INSTALLER, "v3.1.0")
    literals = re.findall(r"^const install = (\".*\");$", body, flags=re.MULTILINE)
    assert len(literals) == 1
    source = (ROOT / "db_extension" / "sql" / "install.sql").read_text(encoding="utf-8")
    assert json.loads(literals[0]) == source
    assert "await sql.raw(install).execute(trx);" in body
    assert "set_config('immich_aio.sync_mode', 'patched-server', true)" in body


def test_the_server_tags_its_connections_with_the_name_the_triggers_run_for() -> None:
    body = rendered(INSTALLER, "v3.1.0")
    (name,) = re.findall(
        r"^export const IMMICH_AIO_APPLICATION_NAME = '([\w-]+)';$", body, flags=re.MULTILINE
    )
    install = (ROOT / "db_extension" / "sql" / "install.sql").read_text(encoding="utf-8")
    assert re.search(
        rf"FUNCTION immich_aio\.server_application_name\(\) RETURNS text\n.*\n  RETURN '{name}';", install
    )
    assert "process.env.PGAPPNAME = IMMICH_AIO_APPLICATION_NAME;" in body


def test_the_series_records_no_migration_a_stock_immich_would_not_know() -> None:
    placed = [p.dest for p in SERIES.placements(SHIPPED.root)]
    assert not [dest for dest in placed if "/schema/migrations/" in dest]
    assert not [path for path in added_lines("server/src/schema/migrations")]
    runner = added_lines("server/src/repositories/database.repository.ts")
    assert "    await forgetImmichAioMigrations(this.db);" in runner
    assert "    await installImmichAio(this.db, this.logger);" in runner


def test_the_ranking_code_uses_the_search_builder_of_each_release() -> None:
    for tag in V3_RELEASES:
        body = rendered("server/src/utils/ocr-ranking.ts", tag)
        if parse(tag) >= parse("v3.1.0"):
            assert "import { searchAssetBuilderLegacy } from 'src/utils/database';" in body
            assert ".select(columns.searchAsset)" in body and ".selectAll('asset')" not in body
        else:
            assert "import { searchAssetBuilder } from 'src/utils/database';" in body
            assert ".selectAll('asset')" in body and "columns" not in body


def test_the_ranking_code_scores_only_through_the_db_extension_functions() -> None:
    body = rendered("server/src/utils/ocr-ranking.ts", "v3.1.0")
    install = (ROOT / "db_extension" / "sql" / "install.sql").read_text(encoding="utf-8")
    used = set(re.findall(r"immich_aio\.(\w+)\(", body)) | set(re.findall(r"immich_aio\.(\w+)`", body))
    assert used == {"ocr_query", "ocr_rank", "hybrid_score", "asset_ocr_document"}
    for name in used - {"asset_ocr_document"}:
        assert re.search(rf"CREATE OR REPLACE FUNCTION immich_aio\.{name}\(", install), name
    assert re.search(r"CREATE TABLE IF NOT EXISTS immich_aio\.asset_ocr_document", install)
    assert "ts_rank" not in body and "1.0 /" not in body, "scoring must stay in the SQL"


def test_the_chinese_clip_models_match_what_ml_service_serves() -> None:
    registered = {}
    for line in added_lines("server/src/constants.ts"):
        match = re.match(r"^\s*'?([\w.-]+__cn-clip)'?: \{ dimSize: (\d+) \},$", line)
        if match:
            registered[match.group(1)] = int(match.group(2))
    assert registered == CN_CLIP_MODELS


def test_the_openapi_spec_and_sdk_carry_the_new_job_names() -> None:
    spec_lines = added_lines("open-api/immich-openapi-specs.json")
    sdk_lines = added_lines("packages/sdk/src/fetch-client.ts")
    server_lines = added_lines("server/src/dtos/asset.dto.ts")
    for job in ("refresh-ocr", "refresh-smart-search"):
        assert any(f"'{job}'" in line for line in server_lines)
        assert any(f'"{job}"' in line for line in spec_lines)
        assert any(f'= "{job}"' in line for line in sdk_lines)
    assert any('"OcrHybridSearchConfig": {' in line for line in spec_lines)
    assert "export enum OcrHybridMethod {" in sdk_lines


def i18n_additions(file: str) -> dict[str, str]:
    pairs = [re.match(r'^\s*"([\w.]+)": (".*"),?$', line) for line in added_lines(f"i18n/{file}")]
    return {m.group(1): json.loads(m.group(2)) for m in pairs if m}


def test_every_new_string_exists_in_english_and_simplified_chinese() -> None:
    english, chinese = i18n_additions("en.json"), i18n_additions("zh_Hans.json")
    assert english.keys() == chinese.keys()
    assert all(re.search(r"[\u4e00-\u9fff]", text) for text in chinese.values())
    used: set[str] = set()
    snippets = [p.source for p in SERIES.placements(SHIPPED.root) if p.dest.startswith("web/")]
    sources = [p.read_text(encoding="utf-8") for p in snippets]
    sources += ["\n".join(added_lines("web/src"))]
    for source in sources:
        used |= set(re.findall(r"\$t\('([\w.]+)'\)", source))
    upstream = set(re.findall(r"\$t\('([\w.]+)'\)", "\n".join(added_lines("web/src", removed=True))))
    new_keys = {key for key in used - upstream if not key.startswith("errors.")}
    assert new_keys <= english.keys(), f"missing strings: {new_keys - english.keys()}"
    assert english.keys() <= used, f"unused strings: {english.keys() - used}"


def test_the_web_menus_mount_the_snippet_in_the_viewer_and_the_selection_menus() -> None:
    menu_lines = added_lines("web/src/routes") + added_lines("AssetViewerNavBar.svelte")
    mounts = [line.strip() for line in menu_lines if "<RefreshSearchMenuItems" in line]
    assert "<RefreshSearchMenuItems assetId={asset.id} />" in mounts
    assert mounts.count("<RefreshSearchMenuItems />") == 5


def test_every_chinese_clip_model_has_a_stand_in_a_stock_immich_knows() -> None:
    config = (ROOT / "server_snippets" / "utils" / "immich-aio-config.ts").read_text(encoding="utf-8")
    stand_ins = dict(re.findall(r"^  '([\w.-]+__cn-clip)': '([\w.-]+)',$", config, flags=re.MULTILINE))
    assert stand_ins.keys() == CN_CLIP_MODELS.keys()
    assert not [name for name in stand_ins.values() if name.endswith("__cn-clip")]
    stored = added_lines("server/src/utils/config.ts")
    assert any("storeImmichAioClipModel(partialConfig)" in line for line in stored)
    assert any("loadImmichAioClipModel(await metadataRepo.get(" in line for line in stored)
