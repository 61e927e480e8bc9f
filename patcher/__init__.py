"""immich-aio patch engine: applies versioned patch series to an upstream Immich checkout."""

__version__ = "0.1.0"
