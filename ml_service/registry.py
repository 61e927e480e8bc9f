"""Model registry: lazy creation and loading (once, even under concurrent first requests), idle unload."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from ml_service.checkpoints import CheckpointStore
from ml_service.config import Settings
from ml_service.metrics import Metrics
from ml_service.model_factory import CLIP_TASKS, OCR_TASK, ModelFactory
from ml_service.models.base import InferenceModel
from ml_service.models.clip_names import CN_CLIP_MODELS, cn_clip_architecture
from ml_service.models.errors import ModelUnavailable, UnknownModel
from ml_service.models.ocr.serving import OcrServingGauge

log = logging.getLogger("ml_service.registry")
M = TypeVar("M", bound=InferenceModel)


class ModelRegistry:
    """Holds one instance per (task, model name); loads on first use and unloads after the idle TTL."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._models: dict[tuple[str, str], InferenceModel] = {}
        self._load_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._last_used: dict[tuple[str, str], float] = {}
        self._in_use: dict[tuple[str, str], int] = {}
        self.checkpoints = CheckpointStore(settings, metrics)
        self.factory = ModelFactory(settings, self.checkpoints)
        self._ocr_serving = OcrServingGauge(metrics.registry)

    def get(self, task: str, name: str) -> InferenceModel:
        key = (task, name)
        model = self._models.get(key)
        if model is None:
            model = self.factory.create(task, name)
            self._models[key] = model
        return model

    async def ensure_loaded(self, task: str, name: str) -> InferenceModel:
        """Return the loaded model; concurrent first callers wait for one single load."""
        key = (task, name)
        model = self.get(task, name)
        if not model.loaded:
            lock = self._load_locks.setdefault(key, asyncio.Lock())
            async with lock:
                if not model.loaded:
                    await model.prepare()
                    seconds = await asyncio.to_thread(model.load)
                    self._ocr_serving.loaded(model.describe())
                    self.metrics.model_load_seconds.labels(task, name).observe(seconds)
                    self.metrics.models_loaded.set(len(self.loaded_models()))
                    log.info(
                        "model loaded", extra={"task": task, "model": name, "seconds": round(seconds, 3)}
                    )
        return model

    @asynccontextmanager
    async def use(self, task: str, name: str, kind: type[M]) -> AsyncIterator[M]:
        """Load if needed and mark the model busy so the idle reaper leaves it alone."""
        key = (task, name)
        self._in_use[key] = self._in_use.get(key, 0) + 1
        try:
            model = await self.ensure_loaded(task, name)
            if not isinstance(model, kind):
                raise RuntimeError(
                    f"registry holds {type(model).__name__} for {key}, expected {kind.__name__}"
                )
            yield model
        finally:
            self._in_use[key] -= 1
            self._last_used[key] = time.monotonic()

    def loaded_models(self) -> list[dict[str, str]]:
        """Loaded models and what each says serves it (CLIP: the backend, which int8 may have left)."""
        return [
            {"task": task, "model": name, **model.describe()}
            for (task, name), model in self._models.items()
            if model.loaded
        ]

    async def preload(self, names: tuple[str, ...]) -> None:
        """Load the models named in IMMICH_AIO_ML_PRELOAD ("ocr", or a CLIP name: both encoders)."""
        for name in names:
            if name == "ocr":
                default = self.settings.resolve_ocr_name(self.settings.ocr_default_model)
                await self.ensure_loaded(OCR_TASK, default or self.settings.ocr_default_model)
                continue
            served = self.settings.resolve_clip_name(name)
            if served is None:
                raise UnknownModel(f"cannot preload {name!r}: neither 'ocr' nor a Chinese-CLIP model name")
            try:
                for task in CLIP_TASKS:
                    await self.ensure_loaded(task, served)
            except ModelUnavailable as error:
                # Weights that cannot be had now must not keep the service (OCR, proxying) from starting.
                log.error(
                    "preload failed; requests will try again", extra={"model": served, "error": error.message}
                )
                continue
            for task in CLIP_TASKS:
                self._last_used[(task, served)] = time.monotonic()

    def model_status(self) -> list[dict[str, Any]]:
        """Each Chinese-CLIP model: checkpoint present, download under way, backend per loaded task."""
        statuses = []
        for name, dimension in CN_CLIP_MODELS.items():
            loaded = {}
            for (task, model_name), model in self._models.items():
                backend = model.describe().get("backend") if model_name == name and model.loaded else None
                if backend is not None:
                    loaded[task] = backend
            architecture = cn_clip_architecture(name)
            prebuilt = architecture is not None and self.factory.clip_prebuilt(architecture)
            status = {**self.checkpoints.status(name), "prebuilt": prebuilt}
            status["present"] = bool(status["present"]) or prebuilt
            statuses.append({"model": name, "dimension": dimension, **status, "loaded": loaded})
        return statuses

    def ocr_model_status(self) -> list[dict[str, Any]]:
        """Every OCR model this installation can serve (not only the loaded ones): its files, and loaded."""
        loaded = {name for (task, name), model in self._models.items() if task == OCR_TASK and model.loaded}
        return [
            {**files.describe(), "loaded": name in loaded}
            for name, files in sorted(self.settings.ocr_models().items())
        ]

    async def unload_idle(self, now: float | None = None) -> list[tuple[str, str]]:
        """Unload every loaded model idle for longer than the TTL; returns what was unloaded."""
        ttl = self.settings.model_ttl_s
        if ttl <= 0:
            return []
        now = time.monotonic() if now is None else now
        unloaded = []
        for key, model in list(self._models.items()):
            idle_since = self._last_used.get(key, now)
            if model.loaded and self._in_use.get(key, 0) == 0 and now - idle_since >= ttl:
                await asyncio.to_thread(model.unload)
                self._ocr_serving.unloaded(model.model_name)
                unloaded.append(key)
                log.info("model unloaded after idle TTL", extra={"task": key[0], "model": key[1]})
        if unloaded:
            self.metrics.models_loaded.set(len(self.loaded_models()))
        return unloaded

    async def reap_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.model_ttl_poll_s)
            try:
                await self.unload_idle()
            except Exception:
                log.exception("idle unload failed")

    async def close(self) -> None:
        await self.checkpoints.close()
        for model in self._models.values():
            await asyncio.to_thread(model.unload)
