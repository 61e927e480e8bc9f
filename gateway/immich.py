"""Talks to the Immich server with the caller's own credential: who the caller is, and its search answers.

Foreign errors are mapped here, at the edge: a transport failure becomes `ImmichUnreachable`, an answer
other than 2xx becomes `ImmichAnswered` carrying Immich's status and body, which the gateway returns to
the caller unchanged.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

#: Request headers that carry who the caller is (Immich reads cookies, Bearer tokens, API keys, share keys).
CREDENTIAL_HEADERS = ("cookie", "authorization", "x-api-key", "x-immich-share-key", "x-immich-user-token")


class GatewayError(Exception):
    """Base of the gateway's own errors."""


class ImmichUnreachable(GatewayError):
    """Immich could not be asked (connection refused, timeout)."""


class ImmichAnswered(GatewayError):
    """Immich answered with a status other than 2xx; the caller gets that answer as it is."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        super().__init__(f"Immich answered {status}")
        self.status = status
        self.body = body
        self.content_type = content_type


@dataclass(frozen=True)
class Credential:
    """The caller's credential headers (and shared-link query parameters), forwarded as they came."""

    headers: tuple[tuple[str, str], ...]
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_request(cls, headers: Mapping[str, str], params: Mapping[str, str]) -> Credential:
        kept = tuple((name, headers[name]) for name in CREDENTIAL_HEADERS if name in headers)
        shared = tuple((name, params[name]) for name in ("key", "slug") if name in params)
        return cls(kept, shared)

    @property
    def fingerprint(self) -> str:
        """A hash that tells credentials apart without keeping them."""
        digest = hashlib.sha256(repr((self.headers, self.params)).encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class Caller:
    """Who Immich says the caller is."""

    user_id: str
    is_admin: bool


@dataclass(frozen=True)
class ServerVersion:
    major: int
    minor: int
    patch: int

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"


class ImmichClient:
    """One connection pool to Immich; every call names the credential it speaks with."""

    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            # one client serves every caller: it must never keep a cookie of one caller's answer for the next
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
            follow_redirects=False,
        )
        self._identities: dict[str, tuple[float, Caller | None]] = {}

    async def close(self) -> None:
        await self.http.aclose()

    async def version(self) -> ServerVersion:
        body = await self.call("GET", "/api/server/version", Credential(()))
        try:
            return ServerVersion(int(body["major"]), int(body["minor"]), int(body["patch"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ImmichUnreachable(f"{self.base_url} does not answer like an Immich server") from error

    async def caller(self, credential: Credential, *, ttl: float) -> Caller | None:
        """The user behind a credential, or None where `GET /api/users/me` does not name one for it
        (no credential, a shared link, an API key without user.read): such callers are left to Immich."""
        if not credential.headers:
            return None
        key = credential.fingerprint
        now = time.monotonic()
        cached = self._identities.get(key)
        if cached is not None and now - cached[0] < ttl:
            return cached[1]
        try:
            body = await self.call("GET", "/api/users/me", credential)
            caller: Caller | None = Caller(str(body["id"]), bool(body.get("isAdmin", False)))
        except (ImmichAnswered, KeyError, TypeError):
            caller = None
        if len(self._identities) > 10_000:
            self._identities.clear()
        self._identities[key] = (now, caller)
        return caller

    async def search(self, endpoint: str, body: dict[str, Any], credential: Credential) -> dict[str, Any]:
        """`POST /api/search/{endpoint}` as the caller."""
        answer = await self.call("POST", f"/api/search/{endpoint}", credential, body)
        if not isinstance(answer, dict):
            raise ImmichUnreachable(f"Immich's search/{endpoint} answered no object")
        return answer

    async def call(
        self, method: str, path: str, credential: Credential, body: dict[str, Any] | None = None
    ) -> Any:
        """One API call as `credential`; the decoded JSON (None for an empty answer)."""
        try:
            response = await self.http.request(
                method,
                path,
                json=body,
                headers=list(credential.headers),
                params=list(credential.params),
            )
        except httpx.HTTPError as error:
            raise ImmichUnreachable(f"cannot reach Immich at {self.base_url}: {error}") from error
        if not response.is_success:
            raise ImmichAnswered(
                response.status_code,
                response.content,
                response.headers.get("content-type", "application/json"),
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as error:
            raise ImmichUnreachable(f"Immich answered {path} with no JSON") from error
