"""The gateway's own parts in an e2e run: its settings page (admins only, saved values take effect) and the
admin API key its refresh jobs start Immich's runs with."""

from __future__ import annotations

from typing import Any

import httpx

from e2e.checks import expect
from e2e.immich_api import ImmichClient
from e2e.observe import Library

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
