"""The end-to-end checks: what a self-hoster does with Immich, and what must then be true.

Each check observes Immich from outside: its REST API, its database (read-only queries on the tables it
owns, to see per-asset job effects the API does not expose) and its log.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from e2e import images
from e2e.images import Scene
from e2e.immich_api import ImmichClient, ImmichError
from e2e.report import Report
from e2e.supervisor import Supervisor, wait_until

ADMIN_EMAIL = "admin@e2e.immich-aio.test"
ADMIN_PASSWORD = "e2e-password-7"
PIN_CODE = "246810"
PROCESSING_TIMEOUT = 1200.0

# (query, scene expected first, scenes that must all be in the results) for `ocr:` searches.
OCR_QUERIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ocr:发票", "receipt-invoice-title", ("receipt-invoice-title", "receipt-restaurant")),
    ("ocr:拿铁", "sign-cafe", ("sign-cafe",)),
    ("ocr:PARKING", "sign-parking", ("sign-parking",)),
    ("ocr:虹桥", "ticket-train", ("ticket-train",)),
    ("OCR：人民广场", "sign-metro", ("sign-metro",)),
)
# Queries that would match the locked or trashed receipts if visibility rules were broken.
HIDDEN_PROBES = ("ocr:发票", "发票", "ocr:出租车", "出租车发票", "ocr:医疗", "医疗门诊收费发票")
OUTAGE_SCENE = Scene(
    "sign-outage",
    "sign",
    images.lines_of(("停电通知 Power Outage", 72, True), "明日 09:00 至 12:00", "Building B 二号楼"),
    size=(1440, 900),
    paper=(255, 240, 200),
)


class CheckFailed(AssertionError):
    """An end-to-end expectation did not hold; the message says what was seen."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass
class Scenario:
    """State shared by the checks of one run: the client, the uploaded assets and where things are."""

    client: ImmichClient
    database_url: str
    report: Report
    supervisor: Supervisor
    image_dir: Path
    ml_url: str
    assets: dict[str, str] = field(default_factory=dict)
    search_latencies: list[float] = field(default_factory=list)

    # --- observation helpers ---------------------------------------------------------------------

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read-only query on Immich's database."""
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as connection:
            return list(connection.execute(sql, params).fetchall())

    def ocr_done_at(self) -> dict[str, Any]:
        rows = self.query('SELECT "assetId"::text, "ocrAt" FROM asset_job_status WHERE "ocrAt" IS NOT NULL')
        return {str(asset): stamp for asset, stamp in rows}

    def ocr_rows(self) -> dict[str, set[str]]:
        result: dict[str, set[str]] = {}
        for asset, row_id in self.query('SELECT "assetId"::text, id::text FROM asset_ocr'):
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

    def immich_log(self) -> str:
        return self.supervisor.get("immich").log_path.read_text(encoding="utf-8", errors="replace")

    def wait_processed(self, asset_ids: list[str], timeout: float = PROCESSING_TIMEOUT) -> float:
        """Wait until each asset has OCR done and a CLIP embedding (Immich's own jobs via ml_service)."""

        def done() -> bool:
            self.supervisor.check_alive()
            ocr, clip = self.ocr_done_at(), self.smart_search_versions()
            return all(a in ocr and a in clip for a in asset_ids)

        return wait_until(done, timeout, "OCR and smart-search jobs of the uploaded assets", interval=1.0)

    # --- the run ---------------------------------------------------------------------------------

    def set_up_admin(self, ml_url: str, clip_model: str) -> None:
        self.client.admin_sign_up(ADMIN_EMAIL, ADMIN_PASSWORD, "E2E Admin")
        self.client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        self.client.change_password(ADMIN_PASSWORD, ADMIN_PASSWORD)
        self.client.finish_onboarding()
        config = self.client.configure_machine_learning(ml_url, clip_model)
        ml = config["machineLearning"]
        ml["availabilityChecks"] = {"enabled": True, "timeout": 2000, "interval": 3000}
        config = self.client.update_system_config(config)
        expect(
            config["machineLearning"]["clip"]["modelName"] == clip_model, "Immich did not keep the CLIP model"
        )
        expect(config["machineLearning"]["ocr"]["enabled"] is True, "Immich did not keep OCR enabled")

    def upload_all(self) -> None:
        paths = images.write_all(self.image_dir)
        per_image = []
        for scene in images.SCENES:
            started = time.monotonic()
            answer = self.client.upload(paths[scene.name])
            per_image.append(time.monotonic() - started)
            expect(answer["status"] == "created", f"upload of {scene.name} answered {answer}")
            self.assets[scene.name] = str(answer["id"])
        self.report.timing("upload_total", sum(per_image))
        self.report.timing("upload_per_image_mean", statistics.fmean(per_image))

    def check_ocr_text(self) -> str:
        """Immich's OCR rows (made by ml_service through Immich's own job) carry each scene's key text."""
        missing = []
        for scene in images.SCENES:
            found = "".join(row["text"] for row in self.client.asset_ocr(self.assets[scene.name]))
            first_line = scene.lines[0].text.replace(" ", "")
            if first_line.lower() not in found.replace(" ", "").lower():
                missing.append(f"{scene.name}: wanted {first_line!r}, OCR has {found[:80]!r}")
        expect(not missing, "OCR text missing: " + "; ".join(missing))
        return f"{len(images.SCENES)} assets: title line recovered exactly"

    def hide_assets(self) -> None:
        """Move the 'locked' scene to the locked folder and the 'trash' scene to the trash.

        The session is locked again afterwards: an unlocked (PIN-elevated) session may see locked assets
        by Immich's design, a normal one never.
        """
        self.client.setup_pin_code(PIN_CODE)
        self.client.unlock_session(PIN_CODE)
        locked = [self.assets[s.name] for s in images.SCENES if s.role == "locked"]
        trashed = [self.assets[s.name] for s in images.SCENES if s.role == "trash"]
        self.client.set_visibility(locked, "locked")
        self.client.trash(trashed)
        for asset_id in locked:
            expect(self.client.asset(asset_id)["visibility"] == "locked", f"{asset_id} is not locked")
        for asset_id in trashed:
            expect(self.client.asset(asset_id)["isTrashed"] is True, f"{asset_id} is not in the trash")
        self.client.lock_session()

    def check_ocr_search(self) -> str:
        seen = []
        for query, first, members in OCR_QUERIES:
            results = self.search(query)
            names = self.names(results)
            expect(bool(results), f"{query!r} returned nothing")
            expect(names[0] == first, f"{query!r}: expected {first} first, got {names}")
            expected = set(members)
            expect(
                set(names) == expected,
                f"{query!r}: OCR-only search returned {names}, expected exactly {expected}",
            )
            seen.append(f"{query} -> {names}")
        return "; ".join(seen)

    def check_hybrid_search(self) -> str:
        """A plain query fuses CLIP with OCR relevance: the assets whose text matches come first.

        The CLIP weights are random, so CLIP alone orders assets arbitrarily; text matches can only lead
        consistently when OCR relevance takes part in the ranking.
        """
        results = self.search("发票")
        names = self.names(results)
        wanted = {"receipt-invoice-title", "receipt-restaurant"}
        expect(set(names[:2]) == wanted, f"plain '发票': expected {wanted} on top, got {names}")
        expect(len(names) > len(wanted), f"plain '发票' returned only {names}; CLIP candidates are missing")
        results = self.search("Latte 拿铁")
        names_cafe = self.names(results)
        expect(bool(names_cafe) and names_cafe[0] == "sign-cafe", f"'Latte 拿铁': got {names_cafe}")
        return f"发票 -> {names}; Latte 拿铁 -> {names_cafe[:3]}"

    def check_hidden_assets(self) -> str:
        hidden = {self.assets[s.name] for s in images.SCENES if s.role in ("locked", "trash")}
        probes = 0
        for query in HIDDEN_PROBES:
            # As the API is called bare and as the web app calls it (visibility: timeline).
            for filters in ({}, {"visibility": "timeline"}):
                leaked = hidden & set(self.search(query, **filters))
                expect(not leaked, f"{query!r} {filters} returned hidden assets {self.names(sorted(leaked))}")
                probes += 1
        return f"{probes} probes, no locked/trashed asset returned"

    def check_refresh(self, job: str) -> str:
        """Queue `job` for one asset; exactly that asset's OCR/CLIP rows must be rewritten."""
        target_name = "ticket-museum"
        target = self.assets[target_name]
        if job == "refresh-ocr":
            before_at, before_rows = self.ocr_done_at(), self.ocr_rows()
        else:
            before_versions = self.smart_search_versions()
        self.client.asset_jobs([target], job)
        if job == "refresh-ocr":
            wait_until(
                lambda: self.ocr_done_at().get(target) != before_at.get(target), 300, f"{job} of {target}"
            )
        else:
            wait_until(
                lambda: self.smart_search_versions().get(target) != before_versions.get(target),
                300,
                f"{job} of {target}",
            )
        self.client.wait_for_queues(("ocr", "smartSearch"), timeout=300)
        if job == "refresh-ocr":
            after_at, after_rows = self.ocr_done_at(), self.ocr_rows()
            changed = sorted(a for a in after_at if after_at[a] != before_at.get(a))
            expect(
                changed == [target],
                f"{job}: OCR re-ran for {self.names(changed)}, expected only {target_name}",
            )
            rewritten = sorted(a for a in after_rows if after_rows[a] != before_rows.get(a))
            expect(rewritten == [target], f"{job}: OCR rows rewritten for {self.names(rewritten)}")
            return f"ocrAt and OCR rows changed for {target_name} only ({len(after_at)} assets observed)"
        after_versions = self.smart_search_versions()
        changed = sorted(a for a in after_versions if after_versions[a] != before_versions.get(a))
        expect(
            changed == [target],
            f"{job}: embeddings rewritten for {self.names(changed)}, expected {target_name}",
        )
        return f"smart_search row rewritten for {target_name} only ({len(after_versions)} assets observed)"

    def check_ml_outage(self, stop_ml: Callable[[], None], start_ml: Callable[[], None]) -> str:
        """With ml_service down Immich reports failures; once it is back, the missed work completes."""
        log_before = len(self.immich_log())
        stop_ml()
        path = self.image_dir / OUTAGE_SCENE.file_name
        path.write_bytes(images.render(OUTAGE_SCENE))
        asset_id = str(self.client.upload(path)["id"])
        self.assets[OUTAGE_SCENE.name] = asset_id

        def failure_reported() -> bool:
            new_log = self.immich_log()[log_before:]
            return "Machine learning server became unhealthy" in new_log or "failed for all URLs" in new_log

        wait_until(failure_reported, 180, "Immich to report the ML failure in its log")
        try:
            self.client.smart_search("停电")
            raise CheckFailed("smart search answered while ml_service was down")
        except ImmichError as error:
            search_error = f"HTTP {error.status}"
        self.client.wait_for_queues(("ocr", "smartSearch", "thumbnailGeneration", "metadataExtraction"), 300)
        expect(asset_id not in self.ocr_done_at(), "OCR completed although ml_service was down")
        start_ml()
        wait_until(
            lambda: "Machine learning server became healthy" in self.immich_log()[log_before:],
            120,
            "ML healthy again",
        )
        self.client.queue_command("ocr", "start")
        self.client.queue_command("smartSearch", "start")
        self.wait_processed([asset_id], timeout=300)
        names = self.names(self.search("ocr:停电"))
        expect(names[:1] == [OUTAGE_SCENE.name], f"after recovery 'ocr:停电' returned {names}")
        return f"outage: log reported it, search answered {search_error}; recovered: ocr:停电 -> {names}"

    def ml_inference_figures(self) -> dict[str, dict[str, float]]:
        """Mean inference seconds per task/model from ml_service's /metrics (what OCR and CLIP cost)."""
        text = httpx.get(f"{self.ml_url}/metrics", timeout=10).text
        return inference_means(text)

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


def inference_means(metrics_text: str) -> dict[str, dict[str, float]]:
    """Parse ml_service's Prometheus text into {"task/model": {"count", "mean_s"}}."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in metrics_text.splitlines():
        match = _SAMPLE.match(line.strip())
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
        key = f"{labels.get('task', '?')}/{labels.get('model', '?')}"
        (sums if match.group(1) == "sum" else counts)[key] = float(match.group(3))
    return {
        key: {"count": counts[key], "mean_s": round(sums.get(key, 0.0) / counts[key], 4)}
        for key in sorted(counts)
        if counts[key] > 0
    }
