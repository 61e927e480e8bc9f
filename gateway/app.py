"""The gateway's ASGI application: search requests it answers itself, everything else passed to Immich."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from db_extension.search import parse_query
from gateway import addon, timing, tunables
from gateway.answers import SearchContext, answer_hybrid, answer_ocr, converted
from gateway.immich import Credential, GatewayError, ImmichAnswered, ImmichClient
from gateway.proxy import Upstream, pass_page, pass_through, pass_websocket
from gateway.refresh import (
    RefreshRequest,
    RefreshUnavailable,
    admin_credential,
    check_access,
    check_admin,
    classify_asset_job,
    clear_state,
    start_missing_run,
)
from gateway.requests import HybridSearch, OcrSearch, Plan, Refusal, classify_metadata, classify_smart
from gateway.settings import GatewaySettings
from gateway.startup import prepare
from gateway.timing import Timings

log = logging.getLogger("immich_aio.gateway")

#: A search body larger than this is no search the gateway answers; Immich gets it as it came.
MAX_SEARCH_BODY = 1 << 20


def create_app(settings: GatewaySettings) -> ASGIApp:
    """The gateway for one Immich server and its database."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        immich = ImmichClient(settings.immich_url)
        # never prepared: a generic plan would build the OCR query once per row instead of once (measured in
        # bench/db_latency.py); each search keeps its custom plan
        pool: ConnectionPool[Any] = ConnectionPool(
            settings.db_url,
            min_size=1,
            max_size=8,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": None},
        )
        try:
            prepared = await prepare(settings, immich)
            pool.open(wait=True, timeout=30)
            upstream = Upstream(settings.immich_url)
            state["context"] = SearchContext(
                pool, immich, upstream, settings, prepared.schema, prepared.filter_api
            )
            yield
        finally:
            if "context" in state:
                await state["context"].upstream.close()
            pool.close()
            await immich.close()

    async def search(request: Request) -> Response:
        started = time.perf_counter()
        context: SearchContext = state["context"]
        body = await request.body()
        if len(body) > MAX_SEARCH_BODY:
            return await pass_through(context.upstream, request, body)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            return await pass_through(context.upstream, request, body)
        endpoint = request.url.path.rsplit("/", 1)[-1]
        tuned = await context.tunables()
        plan: Plan = (
            classify_smart(parsed, hybrid=tuned.hybrid) if endpoint == "smart" else classify_metadata(parsed)
        )
        if plan is None:
            query = parsed.get("query") if endpoint == "smart" and isinstance(parsed, dict) else None
            if isinstance(query, str) and isinstance(parsed, dict) and not parse_query(query).ocr_only:
                rewritten = converted(parsed, tuned)
                if rewritten is not parsed:  # only a query the setting reads otherwise is sent changed
                    body = json.dumps(rewritten).encode()
            return await pass_through(context.upstream, request, body)
        if isinstance(plan, Refusal):
            return _json_error(plan)
        return await _answer(context, request, plan, body, started)

    async def asset_jobs(request: Request) -> Response:
        context: SearchContext = state["context"]
        body = await request.body()
        try:
            refresh = classify_asset_job(json.loads(body)) if len(body) <= MAX_SEARCH_BODY else None
        except ValueError:
            refresh = None
        credential = Credential.from_request(request.headers, request.query_params)
        caller = None
        if refresh is not None:
            caller = await context.immich.caller(credential, ttl=context.settings.identity_ttl_seconds)
        if refresh is None or caller is None:
            return await pass_through(context.upstream, request, body)
        return await _refresh(context, refresh, credential)

    async def settings_page(request: Request) -> Response:
        context: SearchContext = state["context"]
        refusal = await _admin_refusal(context, request)
        if refusal is not None:
            return HTMLResponse(addon.refusal_page(refusal), refusal.status)
        return HTMLResponse(addon.settings_page())

    async def settings_api(request: Request) -> Response:
        context: SearchContext = state["context"]
        refusal = await _admin_refusal(context, request)
        if refusal is not None:
            return _json_error(refusal)
        if request.method == "GET":
            return JSONResponse((await context.tunables()).public())
        try:
            changes = json.loads(await request.body())
            saved = await context.in_db(lambda conn: tunables.save(conn, context.settings, changes))
        except (ValueError, tunables.TunablesError) as error:
            return _json_error(Refusal(400, f"invalid settings: {error}"))
        context.remember(saved)
        log.info("settings changed by an admin: %s", sorted(changes))
        return JSONResponse(saved.public())

    async def websocket(socket: WebSocket) -> None:
        await pass_websocket(settings.immich_url, socket)

    async def everything_else(request: Request) -> Response:
        context: SearchContext = state["context"]
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return await pass_page(context.upstream, request, addon.inject)
        return await pass_through(context.upstream, request)

    async def addon_script(_: Request) -> Response:
        return Response(addon.script(), media_type="text/javascript", headers={"cache-control": "no-cache"})

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    routes = [
        Route("/api/search/smart", search, methods=["POST"]),
        Route("/api/search/metadata", search, methods=["POST"]),
        Route("/api/assets/jobs", asset_jobs, methods=["POST"]),
        Route(addon.ADDON_PATH, addon_script),
        Route(addon.SETTINGS_PATH, settings_page),
        Route(addon.SETTINGS_API_PATH, settings_api, methods=["GET", "PUT"]),
        WebSocketRoute("/{path:path}", websocket),
        Route("/{path:path}", everything_else, methods=methods),
    ]
    routed = Starlette(routes=routes, lifespan=lifespan)
    own = {("POST", "/api/search/smart"), ("POST", "/api/search/metadata"), ("POST", "/api/assets/jobs")}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        """Requests the gateway does not answer go straight to Immich: the router's work is measurable in
        the pass-through's overhead (bench/gateway_overhead.py)."""
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or "context" not in state
            or (scope["method"], path) in own
            or path.startswith("/immich-aio/")
        ):
            await routed(scope, receive, send)
            return
        response = await everything_else(Request(scope, receive))
        await response(scope, receive, send)

    return app


async def _answer(
    context: SearchContext, request: Request, plan: OcrSearch | HybridSearch, body: bytes, started: float
) -> Response:
    credential = Credential.from_request(request.headers, request.query_params)
    timings = Timings()
    try:
        with timings.phase("identity"):
            caller = await context.immich.caller(credential, ttl=context.settings.identity_ttl_seconds)
        if caller is None:
            return await pass_through(context.upstream, request, body)
        if isinstance(plan, OcrSearch):
            reply = await answer_ocr(context, plan, caller, credential, timings)
        else:
            reply = await answer_hybrid(context, plan, caller, credential, timings)
        with timings.phase("encode"):
            response = JSONResponse(reply)
        timings.add("total", 1000 * (time.perf_counter() - started))
        response.headers[timing.HEADER] = timings.header()
        return response
    except ImmichAnswered as answered:
        return Response(answered.body, answered.status, media_type=answered.content_type)
    except (GatewayError, psycopg.Error, OSError) as error:
        # Immich answers as it would without the gateway: a stock answer beats an error.
        log.warning("search answered by Immich alone: %s", error)
        return await pass_through(context.upstream, request, body)


async def _refresh(context: SearchContext, refresh: RefreshRequest, credential: Credential) -> Response:
    immich = context.immich
    try:
        admin = admin_credential((await context.tunables()).admin_api_key)
        await check_access(immich, credential, refresh.asset_ids, context.settings.read_back_concurrency)
        await check_admin(immich, admin)
        cleared = await context.in_db(lambda conn: clear_state(conn, refresh))
        await start_missing_run(immich, admin, refresh.queue)
    except ImmichAnswered as answered:
        return Response(answered.body, answered.status, media_type=answered.content_type)
    except RefreshUnavailable as error:
        return JSONResponse({"message": str(error), "error": "Service Unavailable", "statusCode": 503}, 503)
    log.info(
        "%s: %d asset(s) queued for Immich's %s run (%d cleared)",
        refresh.job,
        len(refresh.asset_ids),
        refresh.queue,
        cleared,
    )
    return Response(status_code=204)


def _json_error(refusal: Refusal) -> Response:
    names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}
    body = {"message": refusal.message, "error": names.get(refusal.status, ""), "statusCode": refusal.status}
    return JSONResponse(body, refusal.status)


async def _admin_refusal(context: SearchContext, request: Request) -> Refusal | None:
    """None for an admin (Immich says so: GET /api/users/me with the caller's credential), else why not."""
    credential = Credential.from_request(request.headers, request.query_params)
    caller = await context.immich.caller(credential, ttl=context.settings.identity_ttl_seconds)
    if caller is None:
        return Refusal(401, "Log in to Immich as an admin first")
    if not caller.is_admin:
        return Refusal(403, "Only Immich admins may change immich-aio's settings")
    return None
