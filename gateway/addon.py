"""The web add-on: the script the gateway adds to the official web app's pages, and how it is added."""

from __future__ import annotations

import html
import json
import re
from functools import cache
from importlib import resources

from gateway.requests import Refusal
from patcher.manifest import repository_root

#: Where the gateway serves the add-on, its settings page and the page's API.
ADDON_PATH = "/immich-aio/addon.js"
SETTINGS_PATH = "/immich-aio/settings"
SETTINGS_API_PATH = "/immich-aio/api/settings"
#: The languages the add-on speaks (immich-aio's own strings live in ui_snippets/i18n, one home).
LANGUAGES = ("en", "zh_Hans", "zh_Hant")
_KEYS = (
    "refresh_ocr",
    "refresh_smart_search",
    "refreshing_ocr",
    "refreshing_smart_search",
    "search_ocr_prefix_hint",
    "search_your_photos_or_text",
)
#: Immich's own labels of its refresh items (its i18n keys refresh_faces .. refresh_encoded_videos, v2.2 –
#: v3.1) in those languages: the add-on's items go after the last of them, and nowhere else.
IMMICH_REFRESH_LABELS = (
    "Refresh faces", "Refresh metadata", "Refresh thumbnails", "Refresh encoded videos",
    "刷新人脸", "刷新元数据", "刷新缩略图", "刷新已编码的视频",
    "重新整理臉孔資料", "重新整理詮釋資料", "重新整理縮圖", "重新整理已編碼的影片",
)  # fmt: skip
_HEAD_END = re.compile(rb"</head\s*>", re.IGNORECASE)
TAG = f'<script src="{ADDON_PATH}" defer></script>'.encode()


def strings() -> dict[str, dict[str, str]]:
    """immich-aio's strings the add-on shows, by language, from ui_snippets/i18n."""
    folder = repository_root() / "ui_snippets" / "i18n"
    table = {}
    for language in LANGUAGES:
        catalogue = json.loads((folder / f"{language}.json").read_text(encoding="utf-8"))
        table[language] = {key: str(catalogue[key]) for key in _KEYS}
    return table


@cache
def script() -> bytes:
    """The add-on as served: its configuration, then addon.js."""
    config = {"strings": strings(), "anchors": list(IMMICH_REFRESH_LABELS)}
    source = resources.files("gateway").joinpath("addon", "addon.js").read_text(encoding="utf-8")
    return (f"window.__IMMICH_AIO_ADDON__ = {json.dumps(config, ensure_ascii=False)};\n{source}").encode()


def inject(html: bytes) -> bytes:
    """The page with the add-on's script tag before </head>; a page without one is left as it came."""
    if TAG in html:
        return html
    match = _HEAD_END.search(html)
    if match is None:
        return html
    return html[: match.start()] + TAG + html[match.start() :]


def settings_page() -> str:
    """The admins' settings page (its script reads and saves through SETTINGS_API_PATH)."""
    return resources.files("gateway").joinpath("addon", "settings.html").read_text(encoding="utf-8")


def refusal_page(refusal: Refusal) -> str:
    """A short page saying why the settings page is not shown."""
    message = html.escape(str(refusal.message))
    return f'<!doctype html><title>immich-aio settings</title><p>{message}</p><p><a href="/">Immich</a></p>'
