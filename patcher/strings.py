"""Web strings merged into a release's locale files, each key where upstream's sorted order puts it.

Immich keeps its strings in `i18n/<locale>.json`, sorted by key and written as 2-space JSON. A diff of such
a file breaks whenever upstream retranslates a neighbouring line; merging the keys needs no context at
all, so one table of strings serves every release of every series.
"""

from __future__ import annotations

import json
from typing import Any

from patcher.errors import PatcherError


class StringsError(PatcherError):
    """A locale file the strings cannot be merged into (not JSON, or not laid out as Immich writes it)."""


def _dump(document: dict[str, Any]) -> str:
    # Immich's formatter writes exactly this (checked byte for byte on every served release's locales).
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _insert_sorted(group: dict[str, Any], key: str, value: Any) -> None:
    items = list(group.items())
    at = next((i for i, (existing, _) in enumerate(items) if existing > key), len(items))
    group.clear()
    group.update([*items[:at], (key, value), *items[at:]])


def add(group: dict[str, Any], additions: dict[str, Any], trail: str = "") -> list[str]:
    """Insert `additions` (nested as the locale file is) into `group`; returns the keys upstream already
    has, whose text is kept (upstream's own translation wins over ours)."""
    kept: list[str] = []
    for key, value in additions.items():
        name = f"{trail}{key}"
        if isinstance(value, dict):
            if key not in group:
                _insert_sorted(group, key, {})
            child = group[key]
            if not isinstance(child, dict):
                raise StringsError(f"{name} is a string in the locale file, not a group of strings")
            kept += add(child, value, f"{name}.")
        elif not isinstance(value, str):
            raise StringsError(f"{name}: a string's text must be a string, not {type(value).__name__}")
        elif key in group:
            kept.append(name)
        else:
            _insert_sorted(group, key, value)
    return kept


def merged(upstream: str, additions: dict[str, Any], file: str) -> str:
    """The text of locale file `file` with `additions` merged in; the rest stays byte for byte."""
    try:
        document = json.loads(upstream)
    except ValueError as error:
        raise StringsError(f"{file} is not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise StringsError(f"{file} is not a JSON object of strings")
    if _dump(document) != upstream:
        raise StringsError(
            f"{file} is not laid out as Immich's formatter writes it (sorted 2-space JSON), so merging"
            " strings would rewrite the whole file"
        )
    add(document, additions)
    return _dump(document)


def table(text: str, source: str) -> dict[str, Any]:
    """A strings table: a JSON object nested as the locale files are."""
    try:
        document = json.loads(text)
    except ValueError as error:
        raise StringsError(f"{source} is not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise StringsError(f"{source} is not a JSON object of strings")
    return document
