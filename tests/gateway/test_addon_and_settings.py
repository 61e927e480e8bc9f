"""The web add-on is added to the web app's pages; the settings page is for admins and takes effect."""

from __future__ import annotations

import json

import httpx

from gateway.addon import ADDON_PATH, TAG, inject, strings
from tests.gateway.conftest import Stack


def test_pages_get_the_addon_and_everything_else_is_untouched(stack: Stack) -> None:
    page = httpx.get(
        f"{stack.gateway}/photos", headers={"accept": "text/html,*/*", "accept-encoding": "gzip, br"}
    )
    script = httpx.get(f"{stack.gateway}{ADDON_PATH}")
    thumbnail = httpx.get(f"{stack.gateway}/api/assets/x/thumbnail", headers={"x-api-key": "u"})
    assert page.status_code == 200 and TAG.decode() in page.text
    assert page.text.index(TAG.decode()) < page.text.index("</head>")
    assert int(page.headers["content-length"]) == len(page.content)
    assert script.headers["content-type"].startswith("text/javascript")
    config = json.loads(
        script.text.split("\n", 1)[0].removeprefix("window.__IMMICH_AIO_ADDON__ = ").rstrip(";")
    )
    assert config["strings"] == strings() and "Refresh metadata" in config["anchors"]
    assert config["strings"]["zh_Hans"]["refresh_ocr"] == "刷新 OCR"
    assert TAG not in thumbnail.content


def test_injection_leaves_other_shapes_alone() -> None:
    assert inject(b"<html><body>no head</body></html>") == b"<html><body>no head</body></html>"
    once = inject(b"<html><HEAD></HEAD></html>")
    assert once == b"<html><HEAD>" + TAG + b"</HEAD></html>" and inject(once) == once


def test_the_settings_page_is_for_admins_and_changes_the_next_search(stack: Stack) -> None:
    alice = stack.library.user()
    exact = stack.library.asset(alice)
    stack.library.write_ocr(exact, ["请紧握扶手"])
    near = stack.library.asset(alice)
    stack.library.write_ocr(near, ["请系握扶手"])
    admin = {"x-api-key": f"admin:{stack.library.user()}"}
    with stack.client(alice) as client:
        assert client.get("/immich-aio/settings").status_code == 403
        refused = client.put("/immich-aio/api/settings", json={"near": False})
        before = [
            i["id"]
            for i in client.post("/api/search/smart", json={"query": "ocr:请紧握扶手"}).json()["assets"][
                "items"
            ]
        ]
        assert httpx.get(f"{stack.gateway}/immich-aio/settings").status_code == 401
        page = httpx.get(f"{stack.gateway}/immich-aio/settings", headers=admin)
        shown = httpx.get(f"{stack.gateway}/immich-aio/api/settings", headers=admin).json()
        bad = httpx.put(f"{stack.gateway}/immich-aio/api/settings", headers=admin, json={"rrf_k": 0})
        saved = httpx.put(
            f"{stack.gateway}/immich-aio/api/settings",
            headers=admin,
            json={"near": False, "admin_api_key": "secret-key-1"},
        )
        after = [
            i["id"]
            for i in client.post("/api/search/smart", json={"query": "ocr:请紧握扶手"}).json()["assets"][
                "items"
            ]
        ]
    assert refused.status_code == 403 and "admins" in refused.json()["message"]
    assert page.status_code == 200 and "immich-aio settings" in page.text
    assert shown == {"hybrid": True, "rrf_k": 60, "clip_weight": 1.0, "ocr_weight": 1.0, "near": True,
                     "text_conversion": "t2s", "admin_api_key_set": False}  # fmt: skip
    assert bad.status_code == 400 and "rrf_k" in bad.json()["message"]
    assert saved.status_code == 200 and saved.json()["near"] is False and saved.json()["admin_api_key_set"]
    assert "secret-key-1" not in saved.text  # the key itself is never shown
    assert before == [exact, near] and after == [exact]
    stored = dict(stack.library.conn.execute("SELECT key, value FROM immich_aio.gateway_settings").fetchall())
    assert stored == {"near": False, "admin_api_key": "secret-key-1"}


def test_traditional_queries_are_read_as_the_setting_says(stack: Stack) -> None:
    alice = stack.library.user()
    admin = {"x-api-key": f"admin:{stack.library.user()}"}

    def clip_queries() -> list[str]:
        return [body["query"] for endpoint, body in stack.standin.requests if endpoint == "smart"]

    with stack.client(alice) as client:
        client.post("/api/search/smart", json={"query": "臺北車站"})  # hybrid: Immich's CLIP half
        settings = f"{stack.gateway}/immich-aio/api/settings"
        assert httpx.put(settings, headers=admin, json={"hybrid": False}).status_code == 200
        client.post("/api/search/smart", json={"query": "臺北車站"})  # passed through, query rewritten
        assert httpx.put(settings, headers=admin, json={"text_conversion": "off"}).status_code == 200
        client.post("/api/search/smart", json={"query": "臺北車站"})
        refused = httpx.put(settings, headers=admin, json={"text_conversion": "s2t"})
    assert clip_queries() == ["台北车站", "台北车站", "臺北車站"]
    assert refused.status_code == 400 and "text_conversion" in refused.json()["message"]
