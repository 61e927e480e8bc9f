"""Requests typed with @immich/sdk 3.2.2 (tests/gateway/sdk/fixtures.ts) go through the gateway as Immich 3.2
would have them answered: `tsc --strict` checks them against the SDK's types, then each is sent."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from patcher.node import cache_root, find_node, npm_cli
from tests.gateway.conftest import Stack

HERE = Path(__file__).with_name("sdk")
SDK = "@immich/sdk@3.2.2"
TYPESCRIPT = "typescript@5.9.3"


def run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv[1:3])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


@pytest.fixture(scope="module")
def fixtures() -> dict[str, Any]:
    """The fixtures, type-checked against the SDK and printed by the compiled file."""
    node, _ = find_node(24)
    work = cache_root() / "contract" / "immich-sdk-3.2.2"
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "node_modules" / "@immich" / "sdk" / "package.json").exists():
        (work / "package.json").write_text('{"private": true, "type": "module"}\n')
        run([str(node), str(npm_cli(node)), "install", SDK, TYPESCRIPT, "--no-audit", "--no-fund"], work)
    for name in ("fixtures.ts", "tsconfig.json"):
        shutil.copy(HERE / name, work / name)
    run([str(node), str(work / "node_modules" / "typescript" / "bin" / "tsc"), "-p", "."], work)
    return dict(json.loads(run([str(node), "build/fixtures.js"], work)))


def test_sdk_requests_through_the_gateway(stack_v32: Stack, fixtures: dict[str, Any]) -> None:
    stack = stack_v32
    alice = stack.library.user()
    favourite = stack.library.asset(alice)
    stack.library.write_ocr(favourite, ["增值税发票"])
    for n in range(3):
        stack.library.write_ocr(stack.library.asset(alice), [f"发票 {n}"])
    stack.library.conn.execute('UPDATE asset SET "isFavorite" = true WHERE id = %s', (favourite,))
    answers: dict[str, Any] = {}
    with stack.client(alice) as client:
        for endpoint in ("metadata", "smart"):
            for name, body in fixtures[endpoint].items():
                answers[name] = client.post(f"/api/search/{endpoint}", json=body)
        first = answers["filterOcr"].json()["assets"]
        second = client.post(
            "/api/search/metadata", json={**fixtures["metadata"]["filterOcr"], "cursor": first["nextCursor"]}
        ).json()["assets"]
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {name: 400 if name == "deprecatedMixedWithFilter" else 200 for name in answers}
    assert answers["deprecatedMixedWithFilter"].json()["message"].startswith("Deprecated search fields")

    def ids(name: str) -> list[str]:
        return [item["id"] for item in answers[name].json()["assets"]["items"]]

    assert len(first["items"]) == 2 and first["nextCursor"] and "nextPage" not in first
    assert len(second["items"]) == 2 and second["nextCursor"] is None
    assert ids("filterOcrWithUnion") == [favourite] == ids("ocrPrefixWithFilter")
    assert len(ids("flatOcr")) == 4 and len(ids("ocrPrefixFlat")) == 4 and len(ids("orderByRating")) == 4
