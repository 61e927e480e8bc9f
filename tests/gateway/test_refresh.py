"""Refresh OCR / smart search through the gateway: Immich decides who may, Immich's own jobs redo it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from e2e.postgres import EmbeddedPostgres
from tests.gateway.conftest import Stack, stack_for


@pytest.fixture
def stack_with_admin(pg_cluster: EmbeddedPostgres) -> Iterator[Stack]:
    yield from stack_for(pg_cluster, (3, 1, 0), admin_api_key="admin:00000000-0000-4000-8000-000000000000")


def ocr_state(stack: Stack) -> dict[str, Any]:
    rows = stack.library.conn.execute(
        'SELECT a.id::text, (SELECT count(*) FROM asset_ocr o WHERE o."assetId" = a.id), '
        'j."ocrAt" IS NOT NULL, '
        '(SELECT count(*) FROM smart_search s WHERE s."assetId" = a.id) '
        'FROM asset a LEFT JOIN asset_job_status j ON j."assetId" = a.id'
    ).fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def processed_photo(stack: Stack, owner: str, text: str) -> str:
    asset = stack.library.asset(owner)
    stack.library.write_ocr(asset, [text])
    stack.library.embed(asset, [0.1] * 512)
    stack.library.conn.execute(
        'INSERT INTO asset_job_status ("assetId", "ocrAt") VALUES (%s, now())', (asset,)
    )
    return asset


def test_refresh_ocr_clears_only_the_chosen_assets_and_starts_immichs_run(stack_with_admin: Stack) -> None:
    stack = stack_with_admin
    alice = stack.library.user()
    chosen = [processed_photo(stack, alice, f"发票 {n}") for n in range(2)]
    other = processed_photo(stack, alice, "车票")
    with stack.client(alice) as client:
        answer = client.post("/api/assets/jobs", json={"assetIds": chosen, "name": "refresh-ocr"})
        found = client.post("/api/search/smart", json={"query": "ocr:发票"}).json()["assets"]["items"]
    assert answer.status_code == 204, answer.text
    state = ocr_state(stack)
    assert all(state[a][:2] == (0, False) and state[a][2] == 1 for a in chosen)  # embeddings kept
    assert state[other] == (1, True, 1)
    assert found == []  # their documents followed at once
    assert ("jobs/ocr", {"command": "start", "force": False}) in stack.standin.requests


def test_refresh_smart_search_clears_only_the_embeddings(stack_with_admin: Stack) -> None:
    stack = stack_with_admin
    alice = stack.library.user()
    chosen = processed_photo(stack, alice, "发票")
    other = processed_photo(stack, alice, "车票")
    with stack.client(alice) as client:
        answer = client.post("/api/assets/jobs", json={"assetIds": [chosen], "name": "refresh-smart-search"})
    assert answer.status_code == 204
    state = ocr_state(stack)
    assert state[chosen] == (1, True, 0) and state[other] == (1, True, 1)
    assert ("jobs/smartSearch", {"command": "start", "force": False}) in stack.standin.requests


def test_nobody_refreshes_what_they_may_not_edit(stack_with_admin: Stack) -> None:
    stack = stack_with_admin
    alice, bob = stack.library.user(), stack.library.user()
    stack.library.conn.execute(
        'INSERT INTO partner ("sharedById", "sharedWithId", "inTimeline") VALUES (%s, %s, true)', (alice, bob)
    )
    theirs = processed_photo(stack, alice, "发票")
    mine = processed_photo(stack, bob, "车票")
    before = ocr_state(stack)
    with stack.client(bob) as client:
        partner = client.post("/api/assets/jobs", json={"assetIds": [mine, theirs], "name": "refresh-ocr"})
    with stack.client(alice, key=f"nojob:{alice}") as client:
        no_job = client.post("/api/assets/jobs", json={"assetIds": [theirs], "name": "refresh-ocr"})
    assert partner.status_code == 400 and "asset.update" in partner.json()["message"]  # Immich's answer
    assert no_job.status_code == 403
    assert ocr_state(stack) == before  # nothing cleared, not even the caller's own photo
    assert not any(name.startswith("jobs/") for name, _ in stack.standin.requests)


def test_without_an_admin_key_nothing_is_cleared_and_the_message_says_why(stack: Stack) -> None:
    alice = stack.library.user()
    photo = processed_photo(stack, alice, "发票")
    before = ocr_state(stack)
    with stack.client(alice) as client:
        answer = client.post("/api/assets/jobs", json={"assetIds": [photo], "name": "refresh-ocr"})
        other_job = client.post("/api/assets/jobs", json={"assetIds": [photo], "name": "refresh-faces"})
    assert answer.status_code == 503 and "admin API key" in answer.json()["message"]
    assert ocr_state(stack) == before
    assert other_job.status_code == 204  # Immich's own jobs pass through
