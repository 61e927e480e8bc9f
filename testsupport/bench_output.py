"""How a benchmark hands over its figures: the JSON result and the Markdown tables, to files and stdout."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """What a result should say about the machine it was measured on (shared cores skew figures)."""
    return {"cpus": os.cpu_count(), "load_average_1m_at_end": round(os.getloadavg()[0], 2)}


def emit(result: dict[str, Any], table: str, json_path: Path | None, markdown_path: Path | None) -> None:
    """Write the result and the tables where asked, and print the tables."""
    if json_path:
        json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    if markdown_path:
        markdown_path.write_text(table)
    print(table)
