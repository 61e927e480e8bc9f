"""What the run sees of the Immich under test: its assets by scene name, its database, its log and metrics.

Observation only: read-only queries on the tables Immich owns (per-asset job effects the API does not
expose), the server's log, ml_service's Prometheus text, and timed searches through the API.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from db_extension.installer import STORAGE_TABLES, detect_storage
from e2e.immich_api import ImmichClient
from e2e.supervisor import Supervisor, wait_until

PROCESSING_TIMEOUT = 1200.0


@dataclass
class Library:
    """The library under test: the API client, where its services are, and the uploaded assets by name."""

    client: ImmichClient
    database_url: str
    supervisor: Supervisor
    ml_url: str
    assets: dict[str, str] = field(default_factory=dict)
    search_latencies: list[float] = field(default_factory=list)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read-only query on Immich's database."""
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            return list(connection.execute(sql, params).fetchall())

    def ocr_tables(self) -> tuple[str, str]:
        """Where this release keeps OCR boxes and runs: Immich's own tables (v2.2+) or the v1 series'."""
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            return STORAGE_TABLES[detect_storage(connection)]

    def table_exists(self, name: str) -> bool:
        return bool(self.query("SELECT to_regclass(%s) IS NOT NULL", (name,))[0][0])

    def ocr_done_at(self) -> dict[str, Any]:
        boxes, runs = self.ocr_tables()
        if not self.table_exists(boxes):  # a stock release before v2.2 has no OCR
            return {}
        rows = self.query(f'SELECT "assetId"::text, "ocrAt" FROM {runs} WHERE "ocrAt" IS NOT NULL')
        return {str(asset): stamp for asset, stamp in rows}

    def ocr_rows(self) -> dict[str, set[str]]:
        result: dict[str, set[str]] = {}
        boxes = self.ocr_tables()[0]
        if not self.table_exists(boxes):
            return result
        for asset, row_id in self.query(f'SELECT "assetId"::text, id::text FROM {boxes}'):
            result.setdefault(str(asset), set()).add(str(row_id))
        return result

    def smart_search_versions(self) -> dict[str, str]:
        """assetId -> the row version (xmin) of its CLIP embedding; a rewrite of the row changes it."""
        rows = self.query('SELECT "assetId"::text, xmin::text FROM smart_search')
        return {str(asset): str(version) for asset, version in rows}

    def search(self, query: str, **filters: Any) -> list[str]:
        started = time.monotonic()
        items = self.client.smart_search(query, **filters)
        self.search_latencies.append(time.monotonic() - started)
        return [str(item["id"]) for item in items]

    def name_of(self, asset_id: str) -> str:
        return next((name for name, known in self.assets.items() if known == asset_id), asset_id)

    def names(self, asset_ids: list[str]) -> list[str]:
        return [self.name_of(a) for a in asset_ids]

    def process_log(self, name: str) -> str:
        """The log of one supervised process so far ("" for one this run did not start)."""
        if name not in self.supervisor.processes:
            return ""
        return self.supervisor.get(name).log_path.read_text(encoding="utf-8", errors="replace")

    def immich_log(self) -> str:
        return self.process_log("immich")

    def wait_processed(
        self, asset_ids: list[str], timeout: float = PROCESSING_TIMEOUT, *, ocr: bool = True
    ) -> float:
        """Wait until each asset has OCR done (unless `ocr` is off: a stock release without OCR) and a CLIP
        embedding (Immich's own jobs via ml_service)."""

        def done() -> bool:
            self.supervisor.check_alive()
            read, clip = self.ocr_done_at() if ocr else {}, self.smart_search_versions()
            return all((a in read or not ocr) and a in clip for a in asset_ids)

        what = "OCR and smart-search jobs" if ocr else "smart-search jobs"
        return wait_until(done, timeout, f"{what} of the uploaded assets", interval=1.0)

    def ml_inference_figures(self) -> dict[str, dict[str, float]]:
        """Mean inference seconds per task/model from ml_service's /metrics (what OCR and CLIP cost)."""
        return inference_means(httpx.get(f"{self.ml_url}/metrics", timeout=10).text)

    def text_conversions(self) -> dict[tuple[str, str], float]:
        """ml_service's count of textual CLIP queries by (conversion, source): what Immich asked for."""
        return text_conversion_counts(httpx.get(f"{self.ml_url}/metrics", timeout=10).text)

    def search_latency_figures(self) -> dict[str, float]:
        if not self.search_latencies:
            return {}
        ordered = sorted(self.search_latencies)
        return {
            "count": len(ordered),
            "p50_ms": round(1000 * statistics.median(ordered), 1),
            "max_ms": round(1000 * ordered[-1], 1),
        }


_SAMPLE = re.compile(r"^immich_aio_ml_inference_seconds_(sum|count)\{([^}]*)\} ([0-9.eE+-]+)$")


def prometheus_labels(text: str) -> dict[str, str]:
    """`task="ocr",model="x"` -> {"task": "ocr", "model": "x"}."""
    return dict(re.findall(r'(\w+)="([^"]*)"', text))


_CONVERSIONS = re.compile(r"^immich_aio_ml_text_conversions_total\{([^}]*)\} ([0-9.eE+-]+)$")


def text_conversion_counts(metrics_text: str) -> dict[tuple[str, str], float]:
    """Parse ml_service's Prometheus text into {(conversion, source): count}."""
    counts: dict[tuple[str, str], float] = {}
    for line in metrics_text.splitlines():
        match = _CONVERSIONS.match(line.strip())
        if match:
            labels = prometheus_labels(match.group(1))
            counts[labels.get("conversion", "?"), labels.get("source", "?")] = float(match.group(2))
    return counts


def inference_means(metrics_text: str) -> dict[str, dict[str, float]]:
    """Parse ml_service's Prometheus text into {"task/model": {"count", "mean_s"}}."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in metrics_text.splitlines():
        match = _SAMPLE.match(line.strip())
        if not match:
            continue
        labels = prometheus_labels(match.group(2))
        key = f"{labels.get('task', '?')}/{labels.get('model', '?')}"
        (sums if match.group(1) == "sum" else counts)[key] = float(match.group(3))
    return {
        key: {"count": counts[key], "mean_s": round(sums.get(key, 0.0) / counts[key], 4)}
        for key in sorted(counts)
        if counts[key] > 0
    }
