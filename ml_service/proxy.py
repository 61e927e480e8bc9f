"""Forwarding to the upstream Immich ML server: byte-identical streaming, or a JSON sub-request."""

import json
import logging
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from ml_service.errors import ServiceError
from ml_service.metrics import Metrics

log = logging.getLogger("ml_service.proxy")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class UpstreamProxy:
    """An httpx client bound to the upstream URL with the configured timeouts."""

    def __init__(self, base_url: str, timeout_s: float, connect_timeout_s: float, metrics: Metrics) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._metrics = metrics
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s), follow_redirects=False
        )

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def _failure(self, error: httpx.HTTPError) -> ServiceError:
        if isinstance(error, httpx.TimeoutException) and not isinstance(error, httpx.ConnectTimeout):
            self._metrics.upstream_requests.labels("timeout").inc()
            return ServiceError(
                504, f"upstream ML at {self.base_url} did not answer within {self.timeout_s:g} s"
            )
        self._metrics.upstream_requests.labels("unreachable").inc()
        return ServiceError(
            502, f"upstream ML at {self.base_url} is unreachable: {type(error).__name__}: {error}"
        )

    async def forward(self, path: str, body: bytes, content_type: str | None) -> StreamingResponse:
        """Send the request body unchanged and stream the upstream answer (status, type, bytes) back."""
        headers = {"content-type": content_type} if content_type else {}
        request = self._client.build_request("POST", self._url(path), content=body, headers=headers)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as error:
            raise self._failure(error) from None
        self._metrics.upstream_requests.labels(str(response.status_code)).inc()
        passed = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
        return StreamingResponse(
            response.aiter_raw(),
            status_code=response.status_code,
            headers=passed,
            background=BackgroundTask(response.aclose),
        )

    async def predict_json(
        self, entries: dict[str, Any], image: bytes | None, text: str | None
    ) -> dict[str, Any]:
        """Ask upstream for a subset of tasks (mixed requests) and return its JSON object."""
        files = {"image": ("blob", image, "application/octet-stream")} if image is not None else None
        data: dict[str, str] = {"entries": json.dumps(entries)}
        if text is not None:
            data["text"] = text
        try:
            response = await self._client.post(self._url("predict"), data=data, files=files)
        except httpx.HTTPError as error:
            raise self._failure(error) from None
        self._metrics.upstream_requests.labels(str(response.status_code)).inc()
        if response.status_code >= 400:
            raise ServiceError(502, f"upstream ML answered {response.status_code}: {response.text[:500]}")
        try:
            body = response.json()
        except ValueError:
            raise ServiceError(502, "upstream ML answered with non-JSON content") from None
        if not isinstance(body, dict):
            raise ServiceError(502, "upstream ML answered with a JSON value that is not an object")
        return body

    async def close(self) -> None:
        await self._client.aclose()
