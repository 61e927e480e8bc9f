"""Prometheus metrics of the service (requests, latencies per task/model, errors, queue depth, loads)."""

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ml_service.models.ocr.serving import OcrServingGauge

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """One registry per app instance, so several apps (tests) never collide."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # resident memory, CPU seconds, open files: what a self-hoster sizes the container by
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "immich_aio_ml_requests", "HTTP requests handled", ["route", "status"], registry=self.registry
        )
        self.request_seconds = Histogram(
            "immich_aio_ml_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
            buckets=_LATENCY_BUCKETS,
        )
        self.inference_seconds = Histogram(
            "immich_aio_ml_inference_seconds",
            "Model inference latency",
            ["task", "model"],
            registry=self.registry,
            buckets=_LATENCY_BUCKETS,
        )
        self.errors = Counter(
            "immich_aio_ml_errors", "Requests answered with an error", ["kind"], registry=self.registry
        )
        self.queue_depth = Gauge(
            "immich_aio_ml_queue_depth", "Inferences waiting for a slot", registry=self.registry
        )
        self.inflight = Gauge(
            "immich_aio_ml_inferences_running", "Inferences running now", registry=self.registry
        )
        self.model_load_seconds = Histogram(
            "immich_aio_ml_model_load_seconds",
            "Model load time",
            ["task", "model"],
            registry=self.registry,
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.models_loaded = Gauge(
            "immich_aio_ml_models_loaded", "Models currently in memory", registry=self.registry
        )
        self.upstream_requests = Counter(
            "immich_aio_ml_upstream_requests",
            "Requests forwarded to the upstream ML",
            ["outcome"],
            registry=self.registry,
        )

        self.model_present = Gauge(
            "immich_aio_ml_model_present",
            "1 when a CLIP model's checkpoint is in the weights directory",
            ["model"],
            registry=self.registry,
        )
        self.model_download_bytes = Gauge(
            "immich_aio_ml_model_download_bytes",
            "Bytes of a checkpoint received by the running download (0: none running)",
            ["model"],
            registry=self.registry,
        )
        self.model_download_size_bytes = Gauge(
            "immich_aio_ml_model_download_size_bytes",
            "Size of the checkpoint being downloaded (0: none running, or not announced)",
            ["model"],
            registry=self.registry,
        )
        self.model_downloads = Counter(
            "immich_aio_ml_model_downloads",
            "Checkpoint downloads that ended, by outcome (complete, failed, rejected)",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.text_conversions = Counter(
            "immich_aio_ml_text_conversions",
            "Textual CLIP queries by the script conversion applied and where it came from (request, setting)",
            ["conversion", "source"],
            registry=self.registry,
        )
        self.model_serving = Gauge(
            "immich_aio_ml_model_serving",
            "1 for each loaded model and the backend actually serving it",
            ["task", "model", "backend"],
            registry=self.registry,
        )

        self._ocr_serving = OcrServingGauge(self.registry)

    def model_loaded(self, description: dict[str, str]) -> None:
        """A model was loaded; what it describes of itself labels the gauges that name served files."""
        self._ocr_serving.loaded(description)

    def model_unloaded(self, model: str) -> None:
        self._ocr_serving.unloaded(model)

    def observe_models(self, statuses: list[dict[str, Any]]) -> None:
        """Set the per-model gauges from the catalogue's CLIP status (done at each scrape)."""
        self.model_serving.clear()
        for status in statuses:
            model = status["model"]
            self.model_present.labels(model).set(1 if status["present"] else 0)
            running = status["downloading"] or {}
            self.model_download_bytes.labels(model).set(running.get("bytes_done") or 0)
            self.model_download_size_bytes.labels(model).set(running.get("bytes_total") or 0)
            for task, backend in status["loaded"].items():
                self.model_serving.labels(task, model, backend).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
