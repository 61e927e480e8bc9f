"""The gateway's own parts in an e2e run: its settings page (admins only, saved values take effect) and the
admin API key its refresh jobs start Immich's runs with."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from e2e.checks import expect
from e2e.immich_api import ImmichClient
from e2e.observe import Library
from e2e.supervisor import wait_until
from gateway import addon

SETTINGS_API = "/immich-aio/api/settings"
SETTINGS_PAGE = "/immich-aio/settings"
VIEWER_EMAIL = "viewer@e2e.immich-aio.test"
VIEWER_PASSWORD = "e2e-password-9"


def _settings(client: ImmichClient, method: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return client.http.request(method, f"{client.base_url}{SETTINGS_API}", json=body)


def configure(library: Library) -> str:
    """Give the gateway an admin API key (made by the admin, saved through the settings page's API)."""
    admin = library.client
    key = admin.request("POST", "/api-keys", json={"name": "immich-aio gateway", "permissions": ["all"]})
    saved = _settings(admin, "PUT", {"admin_api_key": str(key["secret"])})
    expect(saved.status_code == 200, f"saving the admin API key answered {saved.status_code}: {saved.text}")
    expect(saved.json()["admin_api_key_set"] is True, f"the key was not kept: {saved.text}")
    return "admin API key saved through the settings page's API"


def check_settings(library: Library) -> str:
    """A non-admin is refused the page and its API; turning near matches off changes the next search."""
    admin = library.client
    admin.request(
        "POST", "/admin/users", json={"email": VIEWER_EMAIL, "password": VIEWER_PASSWORD, "name": "V"}
    )
    viewer = ImmichClient(admin.base_url)
    try:
        viewer.login(VIEWER_EMAIL, VIEWER_PASSWORD)
        page = viewer.http.get(f"{viewer.base_url}{SETTINGS_PAGE}")
        refused = _settings(viewer, "PUT", {"near": False})
    finally:
        viewer.close()
    expect(page.status_code == 403, f"a non-admin got the settings page: HTTP {page.status_code}")
    expect(refused.status_code == 403, f"a non-admin changed a setting: HTTP {refused.status_code}")
    query = "ocr:请紧握扶手"  # the handrail sign's OCR reads 请系握扶手: found only as a near match
    with_near = library.names(library.search(query))
    expect(_settings(admin, "PUT", {"near": False}).status_code == 200, "turning near matches off failed")
    try:
        without_near = library.names(library.search(query))
    finally:
        _settings(admin, "PUT", {"near": True})
    expect(with_near == ["sign-handrail"] and without_near == [], f"{query}: {with_near} then {without_near}")
    return f"non-admin refused (page, API: 403); {query}: {with_near} with near matches, {without_near} off"


def simplified_chinese_code(tree: Path) -> str:
    """The language code the release's web app stores for Simplified Chinese: zh-CN in v2 (its language list
    names it so), zh-Hans in v3."""
    constants = (tree / "web" / "src" / "lib" / "constants.ts").read_text(encoding="utf-8")
    listed = re.search(r"name: 'Chinese \(Simplified\)',\s*code: '([^']+)'", constants)
    return listed.group(1) if listed else "zh-Hans"


def addon_labels(tree: Path) -> dict[str, str]:
    """What the browser steps click and expect of the add-on: its own strings, and Immich's selection menu."""
    strings = addon.strings()
    english, hans = strings["en"], strings["zh_Hans"]
    return {
        "refreshOcr": english["refresh_ocr"],
        "refreshSmart": english["refresh_smart_search"],
        "refreshingOcr": english["refreshing_ocr"],
        "refreshingSmart": english["refreshing_smart_search"],
        "refreshOcrHans": hans["refresh_ocr"],
        "refreshSmartHans": hans["refresh_smart_search"],
        # Immich's own labels: the multi-select bar's menu button (i18n key "menu"), and in Simplified
        # Chinese the viewer's "more" button and its "Refresh faces" (the add-on's anchors hold it)
        "selectionMenu": "Menu",
        "immichMoreHans": "更多",
        "immichRefreshFacesHans": addon.IMMICH_REFRESH_LABELS[4],
        "languageHans": simplified_chinese_code(tree),
    }


def check_addon_effects(
    library: Library,
    viewed: str,
    selection: list[str],
    ocr_before: dict[str, Any],
    clip_before: dict[str, str],
) -> str:
    """After the browser's clicks, exactly the viewed asset and the selection were re-OCR'd, and exactly the
    viewed asset's embedding was recomputed, by Immich's own jobs."""
    expected_ocr = sorted({viewed, *selection})
    wait_until(
        lambda: all(library.ocr_done_at().get(a) not in (None, ocr_before.get(a)) for a in expected_ocr),
        300,
        "OCR of the refreshed assets",
    )
    wait_until(
        lambda: library.smart_search_versions().get(viewed) not in (None, clip_before.get(viewed)),
        300,
        "smart search of the viewed asset",
    )
    library.client.wait_for_queues(("ocr", "smartSearch"), timeout=300)
    ocr_after, clip_after = library.ocr_done_at(), library.smart_search_versions()
    ocr_changed = sorted(a for a in ocr_after if ocr_after[a] != ocr_before.get(a))
    clip_changed = sorted(a for a in clip_after if clip_after[a] != clip_before.get(a))
    expect(
        ocr_changed == expected_ocr,
        f"OCR re-ran for {library.names(ocr_changed)}, expected {library.names(expected_ocr)}",
    )
    expect(clip_changed == [viewed], f"embeddings rewritten for {library.names(clip_changed)}")
    names = library.names
    return f"OCR re-ran for {names(ocr_changed)}; smart search for {names(clip_changed)}; nothing else"
