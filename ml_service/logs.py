"""Structured logging: one JSON object per line (or plain text), with request fields passed as extras."""

import json
import logging
import sys
import time
from typing import Any

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_LEVELS = {"verbose": "DEBUG", "debug": "DEBUG", "log": "INFO", "info": "INFO", "warning": "WARNING"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def setup_logging(level: str, fmt: str) -> None:
    """Configure the ml_service loggers once (idempotent; replaces earlier handlers of ours)."""
    logger = logging.getLogger("ml_service")
    logger.setLevel(_LEVELS.get(level, level.upper()))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    logger.handlers = [handler]
    logger.propagate = False
