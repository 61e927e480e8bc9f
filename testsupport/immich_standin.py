"""A stand-in for the Immich server's HTTP API, for the gateway's tests (a mock: the real, unmodified Immich
server runs behind the gateway in `immich-aio e2e --unpatched --gateway`, which needs an Immich build).

It answers from the same PostgreSQL tables the gateway reads, with Immich's rules where the tests lean
on them: the caller from `x-api-key` (here simply the user id), the user plus timeline partners as the
search scope, trash/locked/hidden kept out, album search by album membership, a few flat filters, v3.2's
`filter` (`id`, `or[]`, `ocr`, and mixing it with flat fields is a 400), Immich's own trigram-free OCR
filter stood in for by a substring test, pages and cursors. Besides search: a thumbnail with Range
support, an upload that hashes what arrives, and a WebSocket that echoes.

Keys: `<user id>` is a full key; `noread:<user id>` lacks asset.read (search 403); `nouser:<user id>` lacks
user.read (users/me 403); `nojob:<user id>` lacks job.create; `admin:<user id>` is an admin's key (jobs).
Asset jobs, asset updates (owner only, as Immich's asset.update) and queue commands are answered and recorded.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import psycopg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

THUMBNAIL = bytes(range(256)) * 256  # 64 KiB, every byte value at a known place
PAGE = '<!doctype html><html><head><meta charset="utf-8"><title>Immich</title></head><body></body></html>\n'


class Unsupported(Exception):
    """A request the stand-in cannot answer as Immich would (a 400, so a test never passes on a guess)."""


@dataclass
class StandInState:
    dsn: str
    version: tuple[int, int, int] = (3, 1, 0)
    ml_down: bool = False
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    raw_bodies: list[bytes] = field(default_factory=list)


def _error(status: int, message: str) -> JSONResponse:
    names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error"}
    return JSONResponse({"message": message, "error": names.get(status, ""), "statusCode": status}, status)


def _key(request: Request | WebSocket) -> tuple[str, str] | None:
    key = request.headers.get("x-api-key") or request.cookies.get("immich_access_token")
    if not key:
        return None
    kind, _, user = key.rpartition(":")
    return (kind or "full", user)


def create_standin(state: StandInState) -> Starlette:
    """The stand-in Immich as an ASGI app."""

    def db() -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(state.dsn, autocommit=True)

    async def version(_: Request) -> Response:
        major, minor, patch = state.version
        return JSONResponse({"major": major, "minor": minor, "patch": patch})

    async def me(request: Request) -> Response:
        key = _key(request)
        if key is None:
            return _error(401, "Authentication required")
        if key[0] == "nouser":
            return _error(403, "Missing required permission: user.read")
        return JSONResponse({"id": key[1], "isAdmin": key[0] == "admin", "email": f"{key[1]}@example.com"})

    async def search(request: Request) -> Response:
        key = _key(request)
        if key is None:
            return _error(401, "Authentication required")
        if key[0] == "noread":
            return _error(403, "Missing required permission: asset.read")
        endpoint = request.url.path.rsplit("/", 1)[-1]
        raw = await request.body()
        state.raw_bodies.append(raw)
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "Unexpected token in JSON")
        if not isinstance(body, dict):
            return _error(400, "body must be an object")
        state.requests.append((endpoint, body))
        new_path = bool({"filter", "orderBy", "cursor"} & body.keys())
        if new_path and state.version < (3, 2, 0):
            for name in ("filter", "orderBy", "cursor"):
                body.pop(name, None)  # zod strips keys it does not know
            new_path = False
        if new_path and {"ocr", "page", "order", "id", "isFavorite"} & body.keys():
            return _error(400, "Deprecated search fields cannot be combined with filter, orderBy or cursor")
        if endpoint == "smart" and state.ml_down:
            return _error(500, "Machine learning request failed for all URLs")
        with db() as conn:
            try:
                return JSONResponse(_search(conn, endpoint, body, key[1], new_path))
            except Unsupported as error:
                return _error(400, str(error))

    async def login(request: Request) -> Response:
        user = json.loads(await request.body())["userId"]
        answer = JSONResponse({"accessToken": user, "userId": user}, 201)
        answer.set_cookie("immich_access_token", user, httponly=True)
        return answer

    async def asset_jobs(request: Request) -> Response:
        key = _key(request)
        if key is None:
            return _error(401, "Authentication required")
        if key[0] == "nojob":
            return _error(403, "Missing required permission: job.create")
        body = json.loads(await request.body())
        state.requests.append(("assets/jobs", body))
        if body.get("name") not in (
            "refresh-faces",
            "refresh-metadata",
            "regenerate-thumbnail",
            "transcode-video",
        ):
            return _error(400, "Validation failed: name")
        return Response(status_code=204)

    async def update_asset(request: Request) -> Response:
        key = _key(request)
        if key is None:
            return _error(401, "Authentication required")
        with db() as conn:
            row = conn.execute(
                'SELECT id::text FROM asset WHERE id = %s::uuid AND "ownerId" = %s::uuid',
                (request.path_params["id"], key[1]),
            ).fetchone()
        if row is None:
            return _error(400, "Not found or no asset.update access")
        return JSONResponse({"id": row[0]})

    async def jobs(request: Request) -> Response:
        key = _key(request)
        if key is None or key[0] != "admin":
            return _error(403, "Forbidden")
        if request.method == "PUT":
            state.requests.append((f"jobs/{request.path_params['name']}", json.loads(await request.body())))
            return JSONResponse({})
        return JSONResponse({"ocr": {}, "smartSearch": {}})

    async def thumbnail(request: Request) -> Response:
        if _key(request) is None:
            return _error(401, "Authentication required")
        headers = {"content-type": "image/webp", "accept-ranges": "bytes"}
        wanted = request.headers.get("range", "")
        if wanted.startswith("bytes="):
            start_text, _, end_text = wanted[6:].partition("-")
            start = int(start_text)
            end = int(end_text) if end_text else len(THUMBNAIL) - 1
            headers["content-range"] = f"bytes {start}-{end}/{len(THUMBNAIL)}"
            return Response(THUMBNAIL[start : end + 1], 206, headers=headers)
        return Response(THUMBNAIL, headers=headers)

    async def upload(request: Request) -> Response:
        if _key(request) is None:
            return _error(401, "Authentication required")
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        return JSONResponse({"status": "created", "size": size, "sha256": digest.hexdigest()}, 201)

    async def page(request: Request) -> Response:
        """The web app's index.html (gzip-compressed when the browser accepts it, as a static server does)."""
        html = PAGE.encode()
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(gzip.compress(html), media_type="text/html", headers={"content-encoding": "gzip"})
        return Response(html, media_type="text/html")

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        key = _key(websocket)
        await websocket.send_text(f"hello {key[1] if key else 'anonymous'}")
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text("echo " + message["text"])
            elif message.get("bytes") is not None:
                await websocket.send_bytes(message["bytes"][::-1])

    return Starlette(
        routes=[
            Route("/api/server/version", version),
            Route("/api/users/me", me),
            Route("/api/auth/login", login, methods=["POST"]),
            Route("/api/search/metadata", search, methods=["POST"]),
            Route("/api/search/smart", search, methods=["POST"]),
            Route("/api/assets/{id}/thumbnail", thumbnail),
            Route("/api/assets/jobs", asset_jobs, methods=["POST"]),
            Route("/api/assets/{id}", update_asset, methods=["PUT"]),
            Route("/api/jobs", jobs),
            Route("/api/jobs/{name}", jobs, methods=["PUT"]),
            Route("/api/assets", upload, methods=["POST"]),
            WebSocketRoute("/api/socket.io/", socket),
            Route("/{path:path}", page),
        ]
    )


def _search(conn: Any, endpoint: str, body: dict[str, Any], user_id: str, new_path: bool) -> dict[str, Any]:
    conditions = ['a."deletedAt" IS NULL', "a.visibility <> 'hidden'"]
    params: list[Any] = []
    album_ids = body.get("albumIds")
    if album_ids:
        conditions.append(
            '(SELECT count(DISTINCT aa."albumId") FROM album_asset aa WHERE aa."assetId" = a.id '
            'AND aa."albumId" = ANY(%s::uuid[])) = %s'
        )
        params += [album_ids, len(set(album_ids))]
    else:
        conditions.append(
            'a."ownerId" IN (SELECT %s::uuid UNION SELECT "sharedById" FROM partner '
            'WHERE "sharedWithId" = %s::uuid AND "inTimeline")'
        )
        params += [user_id, user_id]
    visibility = body.get("visibility")
    if visibility:
        conditions.append("a.visibility::text = %s")
        params.append(visibility)
    else:
        conditions.append("a.visibility <> 'locked'")
    for name in ("isFavorite", "type"):
        if name in body:
            conditions.append(f'a."{name}"::text = %s')
            params.append(str(body[name]).lower() if isinstance(body[name], bool) else body[name])
    for name, operator in (("takenAfter", ">="), ("takenBefore", "<=")):
        if name in body:
            conditions.append(f'a."fileCreatedAt" {operator} %s::timestamptz')
            params.append(body[name])
    if "city" in body:
        conditions.append('EXISTS (SELECT 1 FROM asset_exif e WHERE e."assetId" = a.id AND e.city = %s)')
        params.append(body["city"])
    if "id" in body:
        conditions.append("a.id = %s::uuid")
        params.append(body["id"])
    ocr = body.get("ocr")
    filter_ = body.get("filter") if new_path else None
    if isinstance(filter_, dict):
        ocr = (filter_.get("ocr") or {}).get("matches", ocr)
        if "id" in filter_:
            conditions.append("a.id = %s::uuid")
            params.append(filter_["id"]["eq"])
        if "isFavorite" in filter_:
            conditions.append('a."isFavorite" = %s')
            params.append(filter_["isFavorite"]["eq"])
        if "or" in filter_:
            alternatives = []
            for branch in filter_["or"]:
                tests = []
                if "id" in branch:
                    tests.append("a.id = %s::uuid")
                    params.append(branch["id"]["eq"])
                if "isFavorite" in branch:
                    tests.append('a."isFavorite" = %s')
                    params.append(branch["isFavorite"]["eq"])
                if "type" in branch:
                    tests.append("a.type = %s")
                    params.append(branch["type"]["eq"])
                if not tests:
                    raise Unsupported(f"the stand-in does not know the branch {branch}")
                alternatives.append("(" + " AND ".join(tests) + ")")
            conditions.append("(" + " OR ".join(alternatives) + ")")
    if ocr:
        conditions.append(
            'EXISTS (SELECT 1 FROM asset_ocr o WHERE o."assetId" = a.id AND o."isVisible" '
            "AND strpos(o.text, %s) > 0)"
        )
        params.append(ocr)
    size = int(body.get("size") or (100 if endpoint == "smart" else 250))
    offset = (int(body.get("page") or 1) - 1) * size
    if new_path and body.get("cursor"):
        cursor = body["cursor"]
        offset = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["offset"]
    if endpoint == "smart":
        seed = hashlib.sha256(str(body.get("query", "")).encode()).hexdigest()
        order = "md5(a.id::text || %s), a.id"
        params.append(seed)
    else:
        order = 'a."fileCreatedAt" DESC, a.id'
    rows = conn.execute(
        'SELECT a.id::text, a."ownerId"::text, a."originalFileName", a."isFavorite", a.visibility::text '
        f"FROM asset a WHERE {' AND '.join(conditions)} ORDER BY {order} LIMIT %s OFFSET %s",
        [*params, size + 1, offset],
    ).fetchall()
    items = [
        {"id": r[0], "ownerId": r[1], "originalFileName": r[2], "isFavorite": r[3], "visibility": r[4]}
        for r in rows[:size]
    ]
    more = len(rows) > size
    assets: dict[str, Any] = {"total": len(items), "count": len(items), "items": items, "facets": []}
    if new_path:
        next_cursor = json.dumps({"offset": offset + size}).encode()
        assets["nextCursor"] = base64.urlsafe_b64encode(next_cursor).decode().rstrip("=") if more else None
    else:
        assets["nextPage"] = str(offset // size + 2) if more else None
    return {"albums": {"total": 0, "count": 0, "items": [], "facets": []}, "assets": assets}


def app_from_env() -> Starlette:
    """The stand-in for `uvicorn --factory testsupport.immich_standin:app_from_env` (IMMICH_STANDIN_DSN)."""
    return create_standin(StandInState(os.environ["IMMICH_STANDIN_DSN"]))
