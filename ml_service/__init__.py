"""ml_service: an Immich machine-learning server with RapidOCR and Chinese-CLIP."""

__version__ = "0.1.0"
