"""Builds the model serving a (task, name) from the settings: the one module that knows each kind of model."""

import os
from collections.abc import Callable
from functools import partial

from ml_service.checkpoints import CheckpointStore
from ml_service.config import Settings, unknown_ocr_model
from ml_service.models.base import InferenceModel
from ml_service.models.clip.base import ClipEncoder
from ml_service.models.clip.export import prebuilt_graphs
from ml_service.models.clip.names import CLIP_MODELS, clip_release
from ml_service.models.clip.shipped import shipped_graph
from ml_service.models.clip.textual import ClipTextualModel
from ml_service.models.clip.visual import ClipVisualModel
from ml_service.models.errors import UnknownModel
from ml_service.models.ocr import OcrModel

OCR_TASK = OcrModel.task
#: Both encoders of a CLIP model, as IMMICH_AIO_ML_PRELOAD loads them.
CLIP_TASKS = (ClipTextualModel.task, ClipVisualModel.task)


def ocr_threads(settings: Settings) -> int:
    """Intra-op threads per OCR session: as set, else the cores shared among the concurrent inferences.

    Measured (bench/ocr_levers.py): with two inferences at once on two cores, one thread each reads
    the corpus with ~20 % less CPU per image than ONNX Runtime's one-per-core default.
    """
    if settings.intra_op_threads > 0:
        return settings.intra_op_threads
    return max(1, (os.cpu_count() or 1) // settings.max_concurrent)


def ocr_alone_threads(settings: Settings) -> int | None:
    """Intra-op threads for a request read while no other is: every core, unless threads are set.

    Immich reads one OCR job at a time by default; with the cores divided for concurrent requests, a
    lone request would leave the others idle.
    """
    if settings.intra_op_threads > 0:
        return None
    return os.cpu_count() or 1


class ModelFactory:
    """Creates models by task; each gets what it needs from the settings and, for CLIP, its checkpoint."""

    def __init__(self, settings: Settings, checkpoints: CheckpointStore) -> None:
        self.settings = settings
        self.checkpoints = checkpoints
        self._builders: dict[str, Callable[[str], InferenceModel]] = {
            OCR_TASK: self._ocr,
            ClipTextualModel.task: partial(self._clip, ClipTextualModel),
            ClipVisualModel.task: partial(self._clip, ClipVisualModel),
        }

    def create(self, task: str, name: str) -> InferenceModel:
        builder = self._builders.get(task)
        if builder is None:
            raise UnknownModel(f"no model serves the task {task!r} here")
        return builder(name)

    def preload_keys(self, name: str) -> list[tuple[str, str]]:
        """The (task, model) pairs a name in IMMICH_AIO_ML_PRELOAD stands for: "ocr" the default OCR model,
        a CLIP name or alias both encoders of the model it serves."""
        settings = self.settings
        if name == "ocr":
            default = settings.ocr_default_model
            return [(OCR_TASK, settings.resolve_ocr_name(default) or default)]
        served = settings.resolve_clip_name(name)
        if served is None:
            raise UnknownModel(f"cannot preload {name!r}: neither 'ocr' nor a CLIP model name served here")
        return [(task, served) for task in CLIP_TASKS]

    def _ocr(self, name: str) -> InferenceModel:
        settings = self.settings
        files = settings.ocr_models().get(name)
        if files is None:
            raise UnknownModel(unknown_ocr_model(name, settings))
        return OcrModel(
            files,
            threads=ocr_threads(settings),
            alone_threads=ocr_alone_threads(settings),
            use_cuda=settings.use_cuda,
            rec_batch=settings.ocr_rec_batch,
            angle_classification=settings.ocr_angle_classification,
        )

    def _clip(self, encoder: type[ClipEncoder], name: str) -> InferenceModel:
        release = clip_release(name)
        if release is None:
            raise UnknownModel(f"{name!r} is not a CLIP model served here; served: {', '.join(CLIP_MODELS)}")
        settings, checkpoints = self.settings, self.checkpoints

        async def fetch_checkpoint() -> None:
            await checkpoints.ensure(name)

        return encoder(
            name,
            release,
            settings.clip_weights_dir,
            settings.clip_backend,
            settings.threads,
            settings.onnx_providers,
            fetch_checkpoint=fetch_checkpoint,
        )

    def clip_prebuilt(self, release: str) -> bool:
        """Whether graphs made without the checkpoint (an image's) serve both encoders of a release."""
        weights, backend = self.settings.clip_weights_dir, self.settings.clip_backend
        if backend == "torch":
            return False
        shipped = all(shipped_graph(weights, release, task, backend) is not None for task in CLIP_TASKS)
        return shipped or prebuilt_graphs(weights, release) is not None
