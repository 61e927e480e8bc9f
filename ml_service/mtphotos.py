"""MT Photos AI API compatibility: /check, /ocr, /clip/img, /clip/txt with MT Photos' response shapes."""

import json
from typing import Any

from fastapi import APIRouter, Request

from ml_service import openapi
from ml_service.errors import bad_request, unprocessable
from ml_service.forms import form_bytes, read_form
from ml_service.models.ocr import OcrOptions
from ml_service.service import MlService


def _floats_as_strings(values: Any) -> list[str]:
    return [f"{float(v):.16f}" for v in values]


async def _upload(request: Request) -> bytes:
    form = await read_form(request)
    data = await form_bytes(form, "file")
    if data is None:
        raise unprocessable("send the image as the 'file' form part")
    return data


def mtphotos_router(service: MlService) -> APIRouter:
    """Routes MT Photos calls to the same models the Immich protocol uses."""
    router = APIRouter()
    clip_model = service.settings.clip_default_model

    settings = service.settings

    @router.get("/check", operation_id="check_get", openapi_extra=openapi.mtphotos_check_operation(settings))
    @router.post(
        "/check", operation_id="check_post", openapi_extra=openapi.mtphotos_check_operation(settings)
    )
    async def check() -> dict[str, Any]:
        return {"result": "pass", "title": "immich-aio ml_service", "help": "MT Photos AI API compatible"}

    @router.post("/ocr", openapi_extra=openapi.mtphotos_ocr_operation(settings))
    async def ocr(request: Request) -> dict[str, Any]:
        image = await service.decode(await _upload(request))
        result = await service.ocr(image, OcrOptions())
        width, height = image.size
        boxes = []
        for i in range(len(result.text)):
            xs = [result.box[8 * i + 2 * k] * width for k in range(4)]
            ys = [result.box[8 * i + 2 * k + 1] * height for k in range(4)]
            boxes.append(
                {
                    "x": f"{min(xs):.2f}",
                    "y": f"{min(ys):.2f}",
                    "width": f"{max(xs) - min(xs):.2f}",
                    "height": f"{max(ys) - min(ys):.2f}",
                }
            )
        scores = [f"{score:.2f}" for score in result.text_score]
        return {"result": {"texts": result.text, "scores": scores, "boxes": boxes}}

    @router.post("/clip/img", openapi_extra=openapi.mtphotos_image_operation(settings))
    async def clip_image(request: Request) -> dict[str, Any]:
        image = await service.decode(await _upload(request))
        return {"result": _floats_as_strings(await service.encode_image(clip_model, image))}

    @router.post("/clip/txt", openapi_extra=openapi.mtphotos_text_operation(settings))
    async def clip_text(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):
            raise bad_request('the body must be JSON like {"text": "..."}') from None
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise unprocessable("'text' must be a non-empty string")
        return {"result": _floats_as_strings(await service.encode_text(clip_model, text))}

    return router
