"""Local inference entry points: decode, load on demand, run under the concurrency limit, record metrics."""

import asyncio
import logging
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ml_service.catalogue import ModelCatalogue
from ml_service.config import Settings
from ml_service.imaging import decode_image
from ml_service.limits import InferenceLimiter
from ml_service.metrics import Metrics
from ml_service.models.clip.script import TextConversion, to_simplified
from ml_service.models.clip.textual import ClipTextualModel
from ml_service.models.clip.visual import ClipVisualModel
from ml_service.models.ocr import OcrModel, OcrOptions, OcrResult
from ml_service.proxy import UpstreamProxy
from ml_service.registry import ModelRegistry

log = logging.getLogger("ml_service.service")


class MlService:
    """Everything a request handler needs; created once per app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.registry = ModelRegistry(settings, self.metrics)
        self.catalogue = ModelCatalogue(self.registry)
        self.limiter = InferenceLimiter(
            settings.max_concurrent, settings.queue_size, settings.queue_timeout_s, self.metrics
        )
        self.proxy = (
            UpstreamProxy(
                settings.upstream_url,
                settings.upstream_timeout_s,
                settings.upstream_connect_timeout_s,
                self.metrics,
            )
            if settings.upstream_url
            else None
        )
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for requested, served in self.settings.ocr_substitutes().items():
            log.info(
                "OCR model not served here: the nearest PP-OCRv6 tier answers for it",
                extra={"requested": requested, "model": served},
            )
        if self.settings.preload:
            await self.registry.preload(self.settings.preload)
        if self.settings.model_ttl_s > 0:
            self._reaper = asyncio.create_task(self.registry.reap_forever())

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        if self.proxy is not None:
            await self.proxy.close()
        await self.registry.close()

    async def decode(self, data: bytes) -> Image.Image:
        return await asyncio.to_thread(decode_image, data, self.settings.max_pixels)

    async def _timed(self, task: str, model: str, function: Any, *args: Any) -> Any:
        async with self.limiter.slot():
            started = time.perf_counter()
            result = await asyncio.to_thread(function, *args)
            self.metrics.inference_seconds.labels(task, model).observe(time.perf_counter() - started)
            return result

    async def ocr(self, image: Image.Image, options: OcrOptions) -> OcrResult:
        """Read text with the served OCR model the request named (the configured default when none)."""
        name = options.model_name or self.settings.resolve_ocr_name(self.settings.ocr_default_model)
        name = name or self.settings.ocr_default_model
        async with self.registry.use(OcrModel.task, name, OcrModel) as model:
            result: OcrResult = await self._timed(model.task, model.model_name, model.predict, image, options)
            return result

    async def encode_image(self, model_name: str, image: Image.Image) -> NDArray[np.float32]:
        async with self.registry.use(ClipVisualModel.task, model_name, ClipVisualModel) as model:
            vector: NDArray[np.float32] = await self._timed(model.task, model_name, model.predict, image)
            return vector

    async def encode_text(
        self, model_name: str, text: str, conversion: TextConversion | None = None
    ) -> NDArray[np.float32]:
        """The text's embedding, read in Simplified by `conversion` (the service's setting when None)."""
        applied = conversion or self.settings.clip_text_conversion
        self.metrics.text_conversions.labels(applied, "request" if conversion else "setting").inc()
        text = to_simplified(text, applied)
        async with self.registry.use(ClipTextualModel.task, model_name, ClipTextualModel) as model:
            vector: NDArray[np.float32] = await self._timed(model.task, model_name, model.predict, text)
            return vector
