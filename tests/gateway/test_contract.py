"""The gateway's requests to Immich and its answers fit Immich's API 3.2.4 and 3.3.5 (immichpy's models).

No v3.2/v3.3 server can be built here (their source is not reachable); the generated models of the
`immichpy` wheels on PyPI (8.0.5 = API 3.2.4, 9.2.4 = API 3.3.5) are the contract instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from patcher.node import cache_root
from tests.gateway.conftest import Stack

ROOT = Path(__file__).resolve().parents[2]
WHEELS = {"3.2.4": "8.0.5", "3.3.5": "9.2.4"}


def immichpy(version: str) -> Path:
    """The unpacked immichpy wheel of `version`, downloaded from PyPI once into the cache."""
    target = cache_root() / "contract" / f"immichpy-{version}"
    if (target / "immichpy").is_dir():
        return target
    download = target.with_name(target.name + ".download")
    fetched = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            "-d",
            str(download),
            f"immichpy=={version}",
        ],
        capture_output=True,
        text=True,
    )
    wheels = sorted(download.glob("immichpy-*.whl"))
    if fetched.returncode != 0 or not wheels:
        pytest.fail(f"cannot download immichpy=={version} from PyPI: {fetched.stderr[-500:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(target)
    return target


def without_items(reply: dict[str, Any]) -> dict[str, Any]:
    """The reply's envelope: its items are Immich's own (the stand-in's here are not full assets)."""
    return {**reply, "assets": {**reply["assets"], "items": []}}


def traffic_of(stack: Stack) -> dict[str, Any]:
    alice = stack.library.user()
    for n in range(5):
        asset = stack.library.asset(alice)
        stack.library.write_ocr(asset, [f"增值税发票 第{n}联"])
    replies = []
    with stack.client(alice) as client:
        bodies: list[tuple[str, dict[str, Any]]] = [
            ("smart", {"query": "ocr:发票", "visibility": "timeline", "withExif": True, "language": "zh-CN"}),
            ("smart", {"query": "发票", "size": 2}),
            ("metadata", {"ocr": "发票", "isFavorite": False, "withExif": True, "page": 1, "size": 2}),
            ("metadata", {"filter": {"ocr": {"matches": "发票"}}, "orderBy": {"field": "rating"}, "size": 2}),
        ]
        for endpoint, body in bodies:
            answer = client.post(f"/api/search/{endpoint}", json=body)
            assert answer.status_code == 200, answer.text
            replies.append(without_items(answer.json()))
        cursor = replies[-1]["assets"]["nextCursor"]
        paged = client.post(
            "/api/search/metadata", json={"filter": {"ocr": {"matches": "发票"}}, "cursor": cursor}
        )
        replies.append(without_items(paged.json()))
    return {"requests": [[e, b] for e, b in stack.standin.requests], "replies": replies}


@pytest.mark.parametrize("api", sorted(WHEELS))
def test_traffic_fits_immichs_api(stack_v32: Stack, api: str, tmp_path: Path) -> None:
    traffic = traffic_of(stack_v32)
    assert any("filter" in body for _, body in traffic["requests"])  # the or[] read-back was exercised
    traffic_file = tmp_path / "traffic.json"
    traffic_file.write_text(json.dumps(traffic, ensure_ascii=False), encoding="utf-8")
    checked = subprocess.run(
        [sys.executable, "-m", "testsupport.immichpy_contract", str(traffic_file)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": f"{immichpy(WHEELS[api])}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 problems" in checked.stdout
