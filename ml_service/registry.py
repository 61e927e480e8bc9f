"""Model registry: lazy creation and loading (once, even under concurrent first requests), idle unload."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

from ml_service.checkpoints import CheckpointStore
from ml_service.config import Settings
from ml_service.metrics import Metrics
from ml_service.model_factory import ModelFactory
from ml_service.models.base import InferenceModel
from ml_service.models.errors import ModelUnavailable

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
                    self.metrics.model_loaded(model.describe())
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
        """Loaded models and what each says serves it (its describe(): files, backend)."""
        return [
            {"task": task, "model": name, **model.describe()}
            for (task, name), model in self._models.items()
            if model.loaded
        ]

    async def preload(self, names: tuple[str, ...]) -> None:
        """Load the models named in IMMICH_AIO_ML_PRELOAD; the factory says which (task, model) pairs a
        name stands for."""
        for name in names:
            keys = self.factory.preload_keys(name)
            try:
                for task, served in keys:
                    await self.ensure_loaded(task, served)
            except ModelUnavailable as error:
                # Weights that cannot be had now must not keep the rest of the service from starting.
                log.error(
                    "preload failed; requests will try again", extra={"model": name, "error": error.message}
                )
                continue
            for key in keys:
                self._last_used[key] = time.monotonic()

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
                self.metrics.model_unloaded(model.model_name)
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
