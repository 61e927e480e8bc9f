"""Model registry: lazy creation and loading (once, even under concurrent first requests), idle unload."""

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from ml_service.checkpoints import CheckpointStore
from ml_service.config import Settings, unknown_ocr_model
from ml_service.errors import ServiceError
from ml_service.metrics import Metrics
from ml_service.models.base import InferenceModel
from ml_service.models.clip.export import can_export, onnx_paths, prebuilt_graphs
from ml_service.models.clip.shipped import shipped_graph
from ml_service.models.clip.textual import ClipTextualModel
from ml_service.models.clip.visual import ClipVisualModel
from ml_service.models.clip_names import CN_CLIP_MODELS, cn_clip_architecture
from ml_service.models.ocr import OcrModel
from ml_service.models.ocr.serving import OcrServingGauge

log = logging.getLogger("ml_service.registry")
M = TypeVar("M", bound=InferenceModel)


def ocr_threads(settings: Settings) -> int:
    """Intra-op threads per OCR session: as set, else the cores shared among the concurrent inferences.

    Measured (bench/ocr_levers.py): with two inferences at once on two cores, one thread each reads
    the corpus with ~20 % less CPU per image than ONNX Runtime's one-per-core default.
    """
    if settings.intra_op_threads > 0:
        return settings.intra_op_threads
    return max(1, (os.cpu_count() or 1) // settings.max_concurrent)


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
        self._ocr_serving = OcrServingGauge(metrics.registry)

    def _create(self, task: str, name: str) -> InferenceModel:
        settings = self.settings
        if task == OcrModel.task:
            files = settings.ocr_models().get(name)
            if files is None:
                raise ServiceError(422, unknown_ocr_model(name, settings))
            return OcrModel(
                files,
                threads=ocr_threads(settings),
                use_cuda=settings.use_cuda,
                rec_batch=settings.ocr_rec_batch,
                angle_classification=settings.ocr_angle_classification,
            )
        architecture = cn_clip_architecture(name)
        if architecture is None:
            raise ServiceError(
                422, f"{name!r} is not a Chinese-CLIP model; served: {', '.join(CN_CLIP_MODELS)}"
            )
        encoder = ClipVisualModel if task == ClipVisualModel.task else ClipTextualModel
        return encoder(
            name,
            architecture,
            settings.clip_weights_dir,
            settings.clip_backend,
            settings.threads,
            settings.onnx_providers,
        )

    def get(self, task: str, name: str) -> InferenceModel:
        key = (task, name)
        model = self._models.get(key)
        if model is None:
            model = self._create(task, name)
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
                    if isinstance(model, ClipTextualModel | ClipVisualModel) and not model.prebuilt:
                        self._require_exportable(name, model)
                        await self.checkpoints.ensure(name)
                    seconds = await asyncio.to_thread(model.load)
                    if isinstance(model, OcrModel):
                        self._ocr_serving.loaded(model.describe())
                    self.metrics.model_load_seconds.labels(task, name).observe(seconds)
                    self.metrics.models_loaded.set(len(self.loaded_models()))
                    log.info(
                        "model loaded", extra={"task": task, "model": name, "seconds": round(seconds, 3)}
                    )
        return model

    def _require_exportable(self, name: str, model: ClipTextualModel | ClipVisualModel) -> None:
        # Checked before a download: hundreds of MB fetched for a model that could not be served.
        visual, textual, _ = onnx_paths(model.weights_dir, model.architecture)
        exported = model.backend != "torch" and visual.is_file() and textual.is_file()
        if not exported and not can_export():
            raise ServiceError(
                422,
                f"{name} is not among the models this installation serves: it has no exported graphs of "
                "it and no torch to export them (an immich-aio ML image serves the models it was built "
                f"with). Rebuild the image with `immich-aio build --images ml --ml-models {name}`, or "
                "install immich-aio with its `ml` extra",
            )

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
        """Loaded models; CLIP encoders also say which backend actually serves them (int8 may fall back)."""
        loaded = []
        for (task, name), model in self._models.items():
            if model.loaded:
                entry = {"task": task, "model": name}
                if isinstance(model, ClipTextualModel | ClipVisualModel):
                    entry["backend"] = model.active_backend
                if isinstance(model, OcrModel):
                    entry.update(model.describe())
                loaded.append(entry)
        return loaded

    async def preload(self, names: tuple[str, ...]) -> None:
        """Load the models named in IMMICH_AIO_ML_PRELOAD ("ocr", or a CLIP name: both encoders)."""
        for name in names:
            if name == "ocr":
                default = self.settings.resolve_ocr_name(self.settings.ocr_default_model)
                await self.ensure_loaded(OcrModel.task, default or self.settings.ocr_default_model)
                continue
            served = self.settings.resolve_clip_name(name)
            if served is None:
                raise ServiceError(
                    422, f"cannot preload {name!r}: neither 'ocr' nor a Chinese-CLIP model name"
                )
            try:
                await self.ensure_loaded(ClipTextualModel.task, served)
                await self.ensure_loaded(ClipVisualModel.task, served)
            except ServiceError as error:
                if error.status != 503:
                    raise
                # Weights that cannot be had now must not keep the service (OCR, proxying) from starting.
                log.error(
                    "preload failed; requests will try again", extra={"model": served, "error": error.message}
                )
                continue
            for task in (ClipTextualModel.task, ClipVisualModel.task):
                self._last_used[(task, served)] = time.monotonic()

    def _prebuilt(self, architecture: str) -> bool:
        weights, backend = self.settings.clip_weights_dir, self.settings.clip_backend
        if backend == "torch":
            return False
        shipped = all(
            shipped_graph(weights, architecture, task, backend) is not None
            for task in (ClipTextualModel.task, ClipVisualModel.task)
        )
        return shipped or prebuilt_graphs(weights, architecture) is not None

    def model_status(self) -> list[dict[str, Any]]:
        """Each Chinese-CLIP model: checkpoint present, download under way, backend per loaded task."""
        statuses = []
        for name, dimension in CN_CLIP_MODELS.items():
            loaded = {
                task: model.active_backend
                for (task, model_name), model in self._models.items()
                if model_name == name
                and model.loaded
                and isinstance(model, ClipTextualModel | ClipVisualModel)
            }
            architecture = cn_clip_architecture(name)
            prebuilt = architecture is not None and self._prebuilt(architecture)
            status = {**self.checkpoints.status(name), "prebuilt": prebuilt}
            status["present"] = bool(status["present"]) or prebuilt
            statuses.append({"model": name, "dimension": dimension, **status, "loaded": loaded})
        return statuses

    def ocr_model_status(self) -> list[dict[str, Any]]:
        """Every OCR model this installation can serve (not only the loaded ones): its files, and loaded."""
        loaded = {
            name for (task, name), model in self._models.items() if task == OcrModel.task and model.loaded
        }
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
                if isinstance(model, OcrModel):
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
