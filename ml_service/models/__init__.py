"""Inference models served locally by ml_service (OCR and Chinese-CLIP)."""
