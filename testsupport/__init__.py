"""Helpers for tests and benchmarks (an Immich-shaped schema, synthetic libraries); never in the wheel."""
