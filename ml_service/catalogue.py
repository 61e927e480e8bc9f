"""Every model this installation can serve, loaded or not, as GET /, /metrics and the start-up block say."""

from typing import Any

from ml_service.model_factory import OCR_TASK
from ml_service.models.clip.names import CLIP_MODELS, clip_release
from ml_service.registry import ModelRegistry


class ModelCatalogue:
    """Reads the registry's loaded models beside what lies on disk: CLIP checkpoints and graphs, OCR files."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def clip_status(self) -> list[dict[str, Any]]:
        """Each CLIP model: checkpoint present, download under way, backend per loaded encoder."""
        registry = self.registry
        loaded = registry.loaded_models()
        statuses = []
        for name, dimension in CLIP_MODELS.items():
            backends = {
                row["task"]: row["backend"] for row in loaded if row["model"] == name and "backend" in row
            }
            release = clip_release(name)
            prebuilt = release is not None and registry.factory.clip_prebuilt(release)
            status = {**registry.checkpoints.status(name), "prebuilt": prebuilt}
            status["present"] = bool(status["present"]) or prebuilt
            statuses.append({"model": name, "dimension": dimension, **status, "loaded": backends})
        return statuses

    def ocr_status(self) -> list[dict[str, Any]]:
        """Every OCR model this installation can serve (not only the loaded ones): its files, and loaded."""
        loaded = {row["model"] for row in self.registry.loaded_models() if row["task"] == OCR_TASK}
        return [
            {**files.describe(), "loaded": name in loaded}
            for name, files in sorted(self.registry.settings.ocr_models().items())
        ]
