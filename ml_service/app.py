"""FastAPI application factory: Immich ML routes, error handling, middleware, metrics and lifecycle."""

import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Match

from ml_service import __version__, openapi
from ml_service.config import Settings
from ml_service.errors import ServiceError, bad_request, unprocessable
from ml_service.forms import form_bytes, form_text, read_form
from ml_service.limits import ApiKeyMiddleware, BodyLimitMiddleware, Message, Receive, Scope, Send
from ml_service.models.clip.names import CLIP_MODELS
from ml_service.models.errors import ModelError, ModelUnavailable, NotServable, UnknownModel
from ml_service.mtphotos import mtphotos_router
from ml_service.protocol import CLIP, OCR, ParsedEntries, embedding_json, parse_entries
from ml_service.service import MlService

log = logging.getLogger("ml_service.http")
_ROUTES = {"/ping", "/", "/predict", "/metrics", "/check", "/ocr", "/clip/img", "/clip/txt"}


def _route_label(path: str) -> str:
    return path if path in _ROUTES else "other"


class RequestLogMiddleware:
    """Counts and times every request and writes one structured log line per request."""

    def __init__(self, app: Any, service: MlService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_label(str(scope.get("path", "")))
            metrics = self.service.metrics
            metrics.requests.labels(route, str(status)).inc()
            metrics.request_seconds.labels(route).observe(elapsed)
            if route not in ("/ping", "/metrics"):
                log.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status,
                        "ms": round(elapsed * 1000, 1),
                    },
                )


def _error_response(
    service: MlService, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    service.metrics.errors.labels(str(status)).inc()
    return JSONResponse({"error": message}, status_code=status, headers=headers)


# The one place where a model's failure becomes an HTTP status.
_MODEL_ERROR_STATUS: tuple[tuple[type[ModelError], int], ...] = (
    (UnknownModel, 422),
    (NotServable, 422),
    (ModelUnavailable, 503),
)


def model_error_status(error: ModelError) -> int:
    return next((status for kind, status in _MODEL_ERROR_STATUS if isinstance(error, kind)), 500)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(app: FastAPI, scope: Scope) -> str:
    """Every method some route answers at this path, for the Allow header of a 405."""
    return ", ".join(
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in app.router.routes)
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; settings default to the environment."""
    settings = settings or Settings.from_env()
    service = MlService(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="immich-aio ML",
        version=__version__,
        description="An Immich machine-learning server: Chinese-CLIP and RapidOCR served here, faces and "
        "other CLIP models forwarded to an upstream Immich ML; the MT Photos AI API on the same port.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service

    @app.exception_handler(ServiceError)
    async def on_service_error(_: Request, error: ServiceError) -> Response:
        return _error_response(service, error.status, error.message, error.headers)

    @app.exception_handler(ModelError)
    async def on_model_error(_: Request, error: ModelError) -> Response:
        headers = {} if error.retry_after is None else {"Retry-After": retry_after_header(error.retry_after)}
        return _error_response(service, model_error_status(error), error.message, headers)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException) -> Response:
        headers = dict(error.headers or {})
        if error.status_code == 405:
            # Starlette names only the first matching route's methods; /check has one route per method.
            headers["Allow"] = _allowed_methods(app, request.scope)
        return _error_response(service, error.status_code, str(error.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_: Request, error: RequestValidationError) -> Response:
        return _error_response(service, 422, f"invalid request: {error.errors()}")

    @app.exception_handler(Exception)
    async def on_unexpected(_: Request, error: Exception) -> Response:
        log.exception("unexpected error")
        return _error_response(service, 500, f"internal error: {type(error).__name__}")

    @app.get(
        "/ping",
        response_class=PlainTextResponse,
        openapi_extra=openapi.plain_operation(settings, "Liveness", "Always `pong`.", protected=False),
    )
    async def ping() -> PlainTextResponse:
        return PlainTextResponse("pong")

    @app.get("/", openapi_extra=openapi.info_operation(settings))
    async def info() -> dict[str, Any]:
        return {
            "message": "Immich ML",
            "service": "immich-aio ml_service",
            "version": __version__,
            "models_loaded": service.registry.loaded_models(),
            "clip_models": CLIP_MODELS,
            "clip_model_status": service.catalogue.clip_status(),
            "clip_aliases": settings.clip_aliases,
            "clip_backend": settings.clip_backend,
            "ocr_models": service.catalogue.ocr_status(),
            "ocr_aliases": settings.ocr_aliases,
            "ocr_substitutes": settings.ocr_substitutes(),
            "upstream": settings.upstream_url,
        }

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        openapi_extra=openapi.plain_operation(settings, "Prometheus metrics", "Prometheus text format."),
    )
    async def metrics() -> Response:
        service.metrics.observe_models(service.catalogue.clip_status())
        return Response(service.metrics.render(), media_type=service.metrics.content_type)

    @app.post("/predict", openapi_extra=openapi.predict_operation(settings))
    async def predict(request: Request) -> Response:
        body = await request.body()
        form = await read_form(request)
        entries_raw = await form_text(form, "entries")
        if entries_raw is None:
            raise bad_request("the 'entries' form field is missing")
        parsed = parse_entries(entries_raw, settings)
        if parsed.remote and not parsed.has_local and service.proxy is not None:
            return await service.proxy.forward("predict", body, request.headers.get("content-type"))
        image_bytes = await form_bytes(form, "image")
        text = await form_text(form, "text")
        return JSONResponse(await _predict_local(service, parsed, image_bytes, text))

    app.include_router(mtphotos_router(service))
    openapi.install(app, settings)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    if settings.api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=settings.api_key, scope_name=settings.api_key_scope)
    app.add_middleware(RequestLogMiddleware, service=service)
    return app


async def _predict_local(
    service: MlService, parsed: ParsedEntries, image_bytes: bytes | None, text: str | None
) -> dict[str, Any]:
    if parsed.needs_image and image_bytes is None:
        raise unprocessable("this task needs an image: send it as the 'image' file part")
    if parsed.needs_text and text is None:
        raise unprocessable("clip.textual needs the 'text' form field")
    if parsed.needs_text and text is not None and not text.strip():
        raise unprocessable("the 'text' form field is empty")
    response: dict[str, Any] = {}
    image = None
    if image_bytes is not None and (parsed.needs_image or parsed.remote):
        image = await service.decode(image_bytes)
        response["imageWidth"], response["imageHeight"] = image.size
    if parsed.clip is not None:
        if parsed.clip.kind == "visual" and image is not None:
            response[CLIP] = embedding_json(await service.encode_image(parsed.clip.model, image))
        elif text is not None:
            vector = await service.encode_text(parsed.clip.model, text, parsed.clip.text_conversion)
            response[CLIP] = embedding_json(vector)
    if parsed.ocr is not None and image is not None:
        response[OCR] = (await service.ocr(image, parsed.ocr.options)).as_immich()
    if parsed.remote and service.proxy is not None:
        remote = await service.proxy.predict_json(parsed.remote, image_bytes, text)
        response.update({k: v for k, v in remote.items() if k in parsed.remote})
    return response
