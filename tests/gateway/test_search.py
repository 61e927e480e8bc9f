"""The gateway's own search answers over real HTTP, on a real PostgreSQL, before a stand-in Immich."""

from __future__ import annotations

from typing import Any

import pytest

from gateway import readback, timing
from gateway.requests import MAX_SIZE, encode_cursor
from tests.gateway.conftest import Stack


def ids(answer: dict[str, Any]) -> list[str]:
    return [item["id"] for item in answer["assets"]["items"]]


def photo(stack: Stack, owner: str, *lines: str, **kwargs: Any) -> str:
    asset_id = stack.library.asset(owner, **kwargs)
    stack.library.write_ocr(asset_id, list(lines))
    return asset_id


def test_ocr_prefix_ranks_matches_and_keeps_the_shape_of_immichs_answer(stack: Stack) -> None:
    alice = stack.library.user()
    title = stack.library.asset(alice)
    stack.library.write_ocr(title, [("增值税普通发票", 0.2), ("金额 ¥35", 0.05)])
    body = photo(stack, alice, "请保留购物小票", "开具发票请到服务台")
    near = photo(stack, alice, "增值税普遍发票")  # one misread character: a near match, after the exact ones
    photo(stack, alice, "欢迎光临")

    with stack.client(alice) as client:
        answer = client.post("/api/search/smart", json={"query": "ocr:发票"}).json()
        near_answer = client.post("/api/search/smart", json={"query": "OCR：普通发票"}).json()

    # the ranking is db_extension's, the one the patched servers use
    assert ids(answer) == stack.library.ocr_search("发票", [alice])
    assert set(ids(answer)) == {title, body, near}
    assert ids(near_answer) == [title, near]  # the exact match first, then the near one
    assets = answer["assets"]
    assert assets["count"] == 3 and assets["nextPage"] is None and answer["albums"]["items"] == []
    assert {"ownerId", "originalFileName"} <= answer["assets"]["items"][0].keys()  # Immich's own item


def test_empty_prefix_is_a_400_with_a_message(stack: Stack) -> None:
    alice = stack.library.user()
    with stack.client(alice) as client:
        response = client.post("/api/search/smart", json={"query": "ocr: "})
    assert response.status_code == 400
    assert "ocr:" in response.json()["message"]


def test_results_stay_within_what_immich_shows_the_caller(stack: Stack) -> None:
    alice, bob, carol = stack.library.user(), stack.library.user(), stack.library.user()
    stack.library.conn.execute(
        'INSERT INTO partner ("sharedById", "sharedWithId", "inTimeline") '
        "VALUES (%s, %s, true), (%s, %s, false)",
        (bob, alice, carol, alice),
    )
    own = photo(stack, alice, "停车发票")
    partner = photo(stack, bob, "出租车发票")
    photo(stack, carol, "餐饮发票")  # a partner without "show in timeline"
    photo(stack, bob, "住宿发票", visibility="locked")
    photo(stack, alice, "旧发票", deleted=True)
    photo(stack, stack.library.user(), "别人的发票")

    with stack.client(alice) as client:
        found = set(ids(client.post("/api/search/smart", json={"query": "ocr:发票"}).json()))
    assert found == {own, partner}

    with stack.client(alice, key=f"noread:{alice}") as client:
        refused = client.post("/api/search/smart", json={"query": "ocr:发票"})
    assert refused.status_code == 403  # Immich's own answer for a key without asset.read

    with stack.client(None) as client:
        anonymous = client.post("/api/search/smart", json={"query": "ocr:发票"})
    assert anonymous.status_code == 401


def test_filters_restrict_as_immich_does(stack: Stack) -> None:
    alice = stack.library.user()
    favourite = photo(stack, alice, "机场大巴车票")
    photo(stack, alice, "火车车票")
    stack.library.conn.execute('UPDATE asset SET "isFavorite" = true WHERE id = %s', (favourite,))
    with stack.client(alice) as client:
        answer = client.post("/api/search/smart", json={"query": "ocr:车票", "isFavorite": True}).json()
    assert ids(answer) == [favourite]


def test_pages_follow_the_ranking_without_overlap(stack: Stack) -> None:
    alice = stack.library.user()
    made = {photo(stack, alice, f"第{n}号 发票") for n in range(7)}
    seen: list[str] = []
    with stack.client(alice) as client:
        for page in (1, 2, 3):
            answer = client.post(
                "/api/search/smart", json={"query": "ocr:发票", "page": page, "size": 3}
            ).json()
            seen += ids(answer)
            assert answer["assets"]["nextPage"] == (str(page + 1) if page < 3 else None)
    assert len(seen) == 7 and set(seen) == made


def test_the_index_follows_what_immich_writes(stack: Stack) -> None:
    alice = stack.library.user()
    asset = stack.library.asset(alice)
    with stack.client(alice) as client:
        assert ids(client.post("/api/search/smart", json={"query": "ocr:禁止吸烟"}).json()) == []
        stack.library.write_ocr(asset, ["电梯内禁止吸烟"])  # Immich's OCR job, as a stock connection
        assert ids(client.post("/api/search/smart", json={"query": "ocr:禁止吸烟"}).json()) == [asset]
        stack.library.conn.execute('UPDATE asset SET "deletedAt" = now() WHERE id = %s', (asset,))
        assert ids(client.post("/api/search/smart", json={"query": "ocr:禁止吸烟"}).json()) == []


def test_hybrid_fuses_immichs_clip_order_with_the_ocr_ranking(stack: Stack) -> None:
    alice = stack.library.user()
    plain = [photo(stack, alice, "风景") for _ in range(5)]
    receipt = photo(stack, alice, "增值税发票")
    with stack.client(alice) as client:
        direct = client.post(f"{stack.immich}/api/search/smart", json={"query": "发票"}).json()
        fused = client.post("/api/search/smart", json={"query": "发票"}).json()
    clip_order = ids(direct)
    assert set(ids(fused)) == set(plain) | {receipt}
    # found by both rankings, the receipt rises to the top unless CLIP already put it there
    assert ids(fused)[0] == receipt
    assert [i for i in ids(fused) if i != receipt] == [i for i in clip_order if i != receipt]


def test_hybrid_answers_with_ocr_alone_when_immichs_ml_is_down(stack: Stack) -> None:
    alice = stack.library.user()
    receipt = photo(stack, alice, "增值税发票")
    photo(stack, alice, "风景")
    stack.standin.ml_down = True
    with stack.client(alice) as client:
        answer = client.post("/api/search/smart", json={"query": "发票"})
    assert answer.status_code == 200 and ids(answer.json()) == [receipt]


def test_metadata_ocr_is_ranked_unless_an_order_is_named(stack: Stack) -> None:
    alice = stack.library.user()
    weak = photo(stack, alice, "说明 发票 很多 其他 文字 在 这里")
    strong = photo(stack, alice, "发票")
    stack.library.conn.execute(
        "UPDATE asset SET \"fileCreatedAt\" = now() - interval '1 day' WHERE id = %s", (strong,)
    )
    with stack.client(alice) as client:
        ranked = client.post("/api/search/metadata", json={"ocr": "发票"}).json()
        by_date = client.post("/api/search/metadata", json={"ocr": "发票", "order": "asc"}).json()
    assert ids(ranked) == [strong, weak]
    assert ids(by_date) == [strong, weak] and by_date["assets"]["nextPage"] is None
    newest_first = [weak, strong]
    with stack.client(alice) as client:
        desc = client.post("/api/search/metadata", json={"ocr": "发票", "order": "desc"}).json()
    assert ids(desc) == newest_first


@pytest.mark.parametrize(
    "body",
    [
        {"query": "ocr:\x00'\"\\%_*:&|!()<->"},
        {"query": "ocr:" + "发" * 3000},
        {"query": "ocr:🙂🙂 ​ \u202e"},
        {"query": "ocr:((("},
    ],
)
def test_odd_queries_never_fail(stack: Stack, body: dict[str, Any]) -> None:
    alice = stack.library.user()
    photo(stack, alice, "发票")
    with stack.client(alice) as client:
        response = client.post("/api/search/smart", json=body)
    assert response.status_code == 200, response.text


def test_shapes_it_does_not_know_go_to_immich(stack: Stack) -> None:
    alice = stack.library.user()
    photo(stack, alice, "发票")
    with stack.client(alice) as client:
        broken = client.post(
            "/api/search/smart", content=b"{not json", headers={"content-type": "application/json"}
        )
        locked = client.post("/api/search/smart", json={"query": "ocr:发票", "visibility": "locked"})
    assert broken.status_code == 400 and "JSON" in broken.json()["message"]  # Immich's own 400
    assert locked.status_code == 200
    assert stack.standin.requests[-1] == ("smart", {"query": "ocr:发票", "visibility": "locked"})
    with stack.client(alice) as client:
        raw = b'{"query": "beach",  "queryAssetId": null}'  # not ours, and nothing to convert: bytes as sent
        client.post("/api/search/smart", content=raw, headers={"content-type": "application/json"})
    assert stack.standin.raw_bodies[-1] == raw


def test_v32_filter_ocr_with_cursor_paging(stack_v32: Stack) -> None:
    stack = stack_v32
    alice = stack.library.user()
    made = [photo(stack, alice, f"发票 {n}") for n in range(5)]
    seen: list[str] = []
    cursors: list[str] = []
    cursor = None
    with stack.client(alice) as client:
        for _ in range(3):
            body: dict[str, Any] = {"filter": {"ocr": {"matches": "发票"}}, "size": 2}
            if cursor:
                body["cursor"] = cursor
            answer = client.post("/api/search/metadata", json=body).json()
            seen += ids(answer)
            cursor = answer["assets"]["nextCursor"]
            if cursor is None:
                break
            cursors.append(cursor)
        mixed = client.post("/api/search/metadata", json={"filter": {"ocr": {"matches": "发票"}}, "page": 2})
    assert sorted(seen) == sorted(made)
    assert cursors == [encode_cursor(2), encode_cursor(4)]  # v3.2's base64url JSON {offset}
    assert mixed.status_code == 400  # Immich's own validation error, passed through
    # the read-back named every candidate in one request's or[] branches
    read_backs = [body for endpoint, body in stack.standin.requests if "or" in body.get("filter", {})]
    assert read_backs and all(len(body["filter"]["or"]) <= 2 for body in read_backs)


def test_v32_or_branches_without_ocr_apply_through_the_read_back(stack_v32: Stack) -> None:
    stack = stack_v32
    alice = stack.library.user()
    favourite = photo(stack, alice, "停车场 发票")
    photo(stack, alice, "加油站 发票")
    stack.library.conn.execute('UPDATE asset SET "isFavorite" = true WHERE id = %s', (favourite,))
    union = {"ocr": {"matches": "发票"}, "or": [{"isFavorite": {"eq": True}}, {"id": {"eq": favourite}}]}
    with stack.client(alice) as client:
        answer = client.post("/api/search/metadata", json={"filter": union}).json()
    assert ids(answer) == [favourite]
    read_backs = [body["filter"] for _, body in stack.standin.requests if "filter" in body]
    assert read_backs and all(f["or"] == union["or"] and "id" in f for f in read_backs)


def test_the_bulk_read_back_is_narrowed_to_the_pages_dates(stack: Stack) -> None:
    alice = stack.library.user()
    made = []
    for n in range(6):
        asset = photo(stack, alice, f"发票 {n}")
        stack.library.conn.execute(
            'UPDATE asset SET "fileCreatedAt" = '
            "'2026-01-01T00:00:00.123456Z'::timestamptz + %s * interval '1 day' WHERE id = %s",
            (n, asset),
        )
        made.append(asset)
    with stack.client(alice) as client:
        pages = [
            ids(client.post("/api/search/smart", json={"query": "ocr:发票", "page": p, "size": 2}).json())
            for p in (1, 2, 3)
        ]
    # nothing lost to the narrowed bounds (sub-millisecond dates too)
    assert sorted(asset for page in pages for asset in page) == sorted(made)
    bulk = [body for endpoint, body in stack.standin.requests if endpoint == "metadata" and "ocr" in body]
    assert len(bulk) == 3 and all("takenAfter" in body and "takenBefore" in body for body in bulk)


def test_a_page_the_bulk_cannot_cover_is_read_back_one_by_one(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = stack.library.user()
    made = [photo(stack, alice, f"发票 {n}") for n in range(3)]
    with stack.client(alice) as client:
        covered = client.post("/api/search/smart", json={"query": "ocr:发票"})
        # the index now counts more matches than the bulk search could return: it is skipped
        monkeypatch.setattr(readback, "BULK_SKIP_RATIO", 1 / MAX_SIZE)
        sent = len(stack.standin.requests)
        one_by_one = client.post("/api/search/smart", json={"query": "ocr:发票"})
    assert ids(one_by_one.json()) == ids(covered.json()) and sorted(ids(covered.json())) == sorted(made)
    asked = [body for endpoint, body in stack.standin.requests[sent:] if endpoint == "metadata"]
    assert not any("ocr" in body for body in asked) and sorted(body["id"] for body in asked) == sorted(made)
    assert set(timing.parse(covered.headers[timing.HEADER])) >= {"identity", "rank", "bulk", "reply", "total"}
    phases = timing.parse(one_by_one.headers[timing.HEADER])
    assert "bulk" not in phases and phases["one_by_one"][1] == 3
    # a page in date order spans only its own dates: the bulk search, narrowed to them, covers it
    with stack.client(alice) as client:
        sent = len(stack.standin.requests)
        by_date = client.post("/api/search/metadata", json={"ocr": "发票", "order": "desc"})
    assert sorted(ids(by_date.json())) == sorted(made)
    assert [body for _, body in stack.standin.requests[sent:] if "ocr" in body]
    assert timing.parse(by_date.headers[timing.HEADER])["bulk"][1] == 3
