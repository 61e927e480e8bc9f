"""The Prometheus gauge naming the OCR model in memory and the files that serve it."""

from prometheus_client import CollectorRegistry, Gauge

_LABELS = ("model", "source", "detection", "recognition")


class OcrServingGauge:
    """`immich_aio_ml_ocr_model_serving{model,source,detection,recognition}` is 1 while a model is loaded."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._gauge = Gauge(
            "immich_aio_ml_ocr_model_serving",
            "1 for each loaded OCR model, labelled with the wheel and the files serving it",
            _LABELS,
            registry=registry,
        )
        self._labels: dict[str, tuple[str, ...]] = {}

    def loaded(self, description: dict[str, str]) -> None:
        """Record a loaded model that names its files; other models (CLIP encoders) are not OCR's."""
        if not all(label in description for label in _LABELS):
            return
        labels = tuple(description[label] for label in _LABELS)
        self._labels[description["model"]] = labels
        self._gauge.labels(*labels).set(1)

    def unloaded(self, model: str) -> None:
        labels = self._labels.pop(model, None)
        if labels is not None:
            self._gauge.remove(*labels)
