"""Prometheus metrics of the service (requests, latencies per task/model, errors, queue depth, loads)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """One registry per app instance, so several apps (tests) never collide."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
