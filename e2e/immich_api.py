"""A small httpx client for the parts of Immich's public REST API the end-to-end checks drive."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx

JsonDict = dict[str, Any]


class ImmichError(RuntimeError):
    """An Immich API call answered with an unexpected status; carries status and Immich's message."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def queues_from_jobs(jobs: JsonDict) -> dict[str, JsonDict]:
    """Queue name -> statistics from the answer of `GET /jobs` (v2.3 and older, deprecated from v2.4).

    That answer maps each queue name to `{jobCounts: {active, completed, ...}, queueStatus: {...}}`.
    """
    return {
        str(name): cast(JsonDict, status["jobCounts"])
        for name, status in jobs.items()
        if isinstance(status, dict) and isinstance(status.get("jobCounts"), dict)
    }


class ImmichClient:
    """Immich's REST API at base_url (e.g. http://127.0.0.1:2283), authenticated after `login`."""

    def __init__(self, base_url: str, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=f"{self.base_url}/api", timeout=timeout)
        self.access_token: str | None = None

    def close(self) -> None:
        self.http.close()

    def request(
        self, method: str, path: str, expect: tuple[int, ...] = (200, 201, 204), **kwargs: Any
    ) -> Any:
        """Call the API; returns decoded JSON (or None for empty bodies); raises ImmichError otherwise."""
        response = self.http.request(method, path, **kwargs)
        if response.status_code not in expect:
            raise ImmichError(method, path, response.status_code, response.text)
        if not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    # --- server and auth -------------------------------------------------------------------------

    def ping(self) -> bool:
        try:
            return bool(self.request("GET", "/server/ping") == {"res": "pong"})
        except (httpx.HTTPError, ImmichError):
            return False

    def admin_sign_up(self, email: str, password: str, name: str) -> JsonDict:
        body = {"email": email, "password": password, "name": name}
        return cast(JsonDict, self.request("POST", "/auth/admin-sign-up", json=body))

    def login(self, email: str, password: str) -> JsonDict:
        data = cast(
            JsonDict, self.request("POST", "/auth/login", json={"email": email, "password": password})
        )
        self.access_token = str(data["accessToken"])
        self.http.headers["Authorization"] = f"Bearer {self.access_token}"
        return data

    def change_password(self, password: str, new_password: str) -> None:
        self.request(
            "POST", "/auth/change-password", json={"password": password, "newPassword": new_password}
        )

    def finish_onboarding(self) -> None:
        """Mark the admin and the user onboarded, as clicking through the web's first-run pages would."""
        self.request("POST", "/system-metadata/admin-onboarding", json={"isOnboarded": True})
        self.finish_user_onboarding()

    def finish_user_onboarding(self) -> None:
        """Mark this user onboarded; releases before v1.136 onboard only the admin and answer 404 here."""
        self.request("PUT", "/users/me/onboarding", expect=(200, 201, 204, 404), json={"isOnboarded": True})

    def share_with_partner(self, user_id: str) -> None:
        """Share this library with `user_id`: `POST /partners` (v1.142 on), else `POST /partners/{id}`."""
        response = self.http.request("POST", "/partners", json={"sharedWithId": user_id})
        if response.status_code == 404:
            self.request("POST", f"/partners/{user_id}")
        elif response.status_code not in (200, 201):
            raise ImmichError("POST", "/partners", response.status_code, response.text)

    def server_version(self) -> tuple[int, int, int]:
        data = self.request("GET", "/server/version")
        return int(data["major"]), int(data["minor"]), int(data["patch"])

    def setup_pin_code(self, pin: str) -> None:
        self.request("POST", "/auth/pin-code", json={"pinCode": pin})

    def unlock_session(self, pin: str) -> None:
        self.request("POST", "/auth/session/unlock", json={"pinCode": pin})

    def lock_session(self) -> None:
        self.request("POST", "/auth/session/lock")

    # --- system config ---------------------------------------------------------------------------

    def system_config(self) -> JsonDict:
        return cast(JsonDict, self.request("GET", "/system-config"))

    def update_system_config(self, config: JsonDict) -> JsonDict:
        return cast(JsonDict, self.request("PUT", "/system-config", json=config))

    def configure_machine_learning(
        self, ml_url: str, clip_model: str, ocr_model: str | None = None
    ) -> JsonDict:
        """Point Immich at ml_service: `clip_model` for smart search, OCR on, faces off (no upstream ML)."""
        config = self.system_config()
        ml = config["machineLearning"]
        ml["enabled"] = True
        ml["urls"] = [ml_url]
        # keep the release's other CLIP settings (a patched server requires its textConversion)
        ml["clip"] = {**ml["clip"], "enabled": True, "modelName": clip_model}
        if "ocr" in ml:  # a stock release before v2.2 has no OCR
            ml["ocr"]["enabled"] = True
            if ocr_model:
                ml["ocr"]["modelName"] = ocr_model
        ml["facialRecognition"]["enabled"] = False
        ml["duplicateDetection"]["enabled"] = False
        config["newVersionCheck"]["enabled"] = False
        config["map"]["enabled"] = False
        return self.update_system_config(config)

    # --- assets ----------------------------------------------------------------------------------

    def upload(self, path: Path, taken: datetime | None = None) -> JsonDict:
        """Upload one file; returns {"id", "status"} ("created" or "duplicate")."""
        stamp = (taken or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        data = {"fileCreatedAt": stamp, "fileModifiedAt": stamp, "filename": path.name}
        # required up to v2.7 (v3 dropped them and strips unknown fields, as v2 does)
        data |= {"deviceAssetId": f"immich-aio-e2e-{path.name}", "deviceId": "immich-aio-e2e"}
        with path.open("rb") as handle:
            files = {"assetData": (path.name, handle, "image/jpeg")}
            return cast(JsonDict, self.request("POST", "/assets", data=data, files=files))

    def asset(self, asset_id: str) -> JsonDict:
        return cast(JsonDict, self.request("GET", f"/assets/{asset_id}"))

    def asset_ocr(self, asset_id: str) -> list[JsonDict]:
        return cast(list[JsonDict], self.request("GET", f"/assets/{asset_id}/ocr"))

    def asset_jobs(self, asset_ids: list[str], name: str) -> None:
        """POST /assets/jobs: queue the asset job `name` (e.g. refresh-ocr) for these assets."""
        self.request("POST", "/assets/jobs", json={"assetIds": asset_ids, "name": name})

    def trash(self, asset_ids: list[str]) -> None:
        self.request("DELETE", "/assets", json={"ids": asset_ids, "force": False})

    def set_visibility(self, asset_ids: list[str], visibility: str) -> None:
        self.request("PUT", "/assets", json={"ids": asset_ids, "visibility": visibility})

    # --- search ----------------------------------------------------------------------------------

    def smart_search(self, query: str, size: int = 50, **filters: Any) -> list[JsonDict]:
        """POST /search/smart; returns the asset items in Immich's order."""
        body = {"query": query, "size": size, **filters}
        data = cast(JsonDict, self.request("POST", "/search/smart", json=body))
        return cast(list[JsonDict], data["assets"]["items"])

    def metadata_search(self, size: int = 50, **filters: Any) -> list[JsonDict]:
        """POST /search/metadata (e.g. ocr="发票", upstream's OCR filter); returns the asset items."""
        data = cast(JsonDict, self.request("POST", "/search/metadata", json={"size": size, **filters}))
        return cast(list[JsonDict], data["assets"]["items"])

    # --- albums ----------------------------------------------------------------------------------

    def create_album(self, name: str, asset_ids: list[str]) -> JsonDict:
        return cast(
            JsonDict, self.request("POST", "/albums", json={"albumName": name, "assetIds": asset_ids})
        )

    def albums(self) -> list[JsonDict]:
        return cast(list[JsonDict], self.request("GET", "/albums"))

    # --- jobs ------------------------------------------------------------------------------------

    def queues(self) -> dict[str, JsonDict]:
        """Queue name -> statistics {active, completed, delayed, failed, paused, waiting}.

        `GET /queues` exists from v2.4.0; older servers answer the same figures on `GET /jobs`.
        """
        try:
            items = cast(list[JsonDict], self.request("GET", "/queues"))
        except ImmichError as error:
            if error.status != 404:
                raise
            return queues_from_jobs(cast(JsonDict, self.request("GET", "/jobs")))
        return {str(item["name"]): cast(JsonDict, item["statistics"]) for item in items}

    def queue_command(self, queue: str, command: str, force: bool = False) -> None:
        """PUT /jobs/{queue}: e.g. start (queue missing work) or clear-failed."""
        self.request("PUT", f"/jobs/{queue}", json={"command": command, "force": force})

    def wait_for_queues(self, names: tuple[str, ...], timeout: float, settle: float = 3.0) -> float:
        """Wait until the named queues have nothing active, waiting or delayed for `settle` seconds."""
        started = time.monotonic()
        idle_since: float | None = None
        while True:
            stats = self.queues()
            busy = sum(
                int(stats[name][key])
                for name in names
                if name in stats
                for key in ("active", "waiting", "delayed")
            )
            now = time.monotonic()
            if busy == 0:
                idle_since = idle_since or now
                if now - idle_since >= settle:
                    return now - started - settle
            else:
                idle_since = None
            if now - started > timeout:
                raise TimeoutError(f"queues {', '.join(names)} still busy after {timeout:.0f}s: {stats}")
            time.sleep(0.5)
