"""e2e.immich_api and the sharing probes: what differs between Immich releases, on a stand-in transport."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from e2e.immich_api import ImmichClient, ImmichError, queues_from_jobs
from e2e.sharing import Probes

COUNTS = {"active": 1, "completed": 9, "delayed": 0, "failed": 0, "paused": 0, "waiting": 2}


def client_answering(routes: dict[str, tuple[int, object]]) -> ImmichClient:
    def handle(request: httpx.Request) -> httpx.Response:
        status, body = routes.get(request.url.path, (404, {"message": "Cannot GET"}))
        return httpx.Response(status, json=body)

    client = ImmichClient("http://immich.test")
    client.http = httpx.Client(base_url="http://immich.test/api", transport=httpx.MockTransport(handle))
    return client


def test_queues_are_read_from_the_queues_endpoint_where_it_exists() -> None:
    client = client_answering({"/api/queues": (200, [{"name": "ocr", "statistics": COUNTS}])})
    assert client.queues() == {"ocr": COUNTS}


def test_queues_fall_back_to_the_jobs_endpoint_of_v2_2_and_v2_3() -> None:
    jobs = {
        "ocr": {"jobCounts": COUNTS, "queueStatus": {"isActive": True, "isPaused": False}},
        "smartSearch": {"jobCounts": {**COUNTS, "active": 0}, "queueStatus": {"isActive": False}},
    }
    client = client_answering({"/api/jobs": (200, jobs)})
    assert client.queues() == {"ocr": COUNTS, "smartSearch": {**COUNTS, "active": 0}}


def test_other_errors_of_the_queues_endpoint_are_not_hidden() -> None:
    client = client_answering({"/api/queues": (401, {"message": "Authentication required"})})
    with pytest.raises(ImmichError, match="HTTP 401"):
        client.queues()


def test_jobs_entries_without_counts_are_left_out() -> None:
    assert queues_from_jobs({"ocr": {"jobCounts": COUNTS}, "note": "x", "odd": {"queueStatus": {}}}) == {
        "ocr": COUNTS
    }


def test_an_upload_names_a_device_as_immich_v2_requires(tmp_path: Path) -> None:
    seen: list[bytes] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.read())
        return httpx.Response(201, json={"id": "a1", "status": "created"})

    client = ImmichClient("http://immich.test")
    client.http = httpx.Client(base_url="http://immich.test/api", transport=httpx.MockTransport(handle))
    photo = tmp_path / "sign-cafe.jpg"
    photo.write_bytes(b"\xff\xd8jpeg")
    assert client.upload(photo) == {"id": "a1", "status": "created"}
    body = seen[0].decode("latin-1")
    for field, value in (("deviceAssetId", "immich-aio-e2e-sign-cafe.jpg"), ("deviceId", "immich-aio-e2e")):
        assert f'name="{field}"\r\n\r\n{value}\r\n' in body
    assert 'name="assetData"; filename="sign-cafe.jpg"' in body


def test_a_refused_probe_is_counted_and_noted_a_server_error_is_a_fault() -> None:
    probes = Probes()
    probes.refused("album link, filter", ImmichError("POST", "/search/metadata", 403, "Forbidden"))
    assert (probes.count, probes.leaks, probes.notes) == (1, [], ["album link, filter: refused (HTTP 403)"])
    probes.refused("album link, filter", ImmichError("POST", "/search/metadata", 500, "boom"))
    assert probes.count == 2 and probes.leaks == ["album link, filter: HTTP 500"]
