"""Download of one file over HTTP: resumable (Range), atomic (a partial file renamed when complete), verified.

The bytes go to ``<target>.partial``; ``<target>.partial.json`` remembers the URL, the size the server
announced and its validator (ETag or Last-Modified), so a later attempt asks only for the missing bytes
(``Range`` with ``If-Range``). The file is renamed to its target only once its size equals the announced
one and, where one is expected, its sha256 matches; a file that fails either check is deleted.
"""

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from ml_service import __version__

#: Called with (bytes done, total bytes or None when the server does not say) as the file arrives.
Progress = Callable[[int, int | None], None]

_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")
_LOCK_POLL_S = 0.2


class DownloadError(Exception):
    """The download did not produce the complete, verified file; the message says why and what is kept."""

    def __init__(self, message: str, *, rejected: bool = False) -> None:
        super().__init__(message)
        #: The bytes arrived but failed verification (size or sha256) and were deleted.
        self.rejected = rejected


@dataclass(frozen=True)
class Downloaded:
    """A complete, verified file at its target path."""

    path: Path
    size: int
    sha256: str
    resumed_from: int


def partial_path(target: Path) -> Path:
    return target.with_name(target.name + ".partial")


def _meta_path(target: Path) -> Path:
    return target.with_name(target.name + ".partial.json")


def _lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.lock")


@contextlib.asynccontextmanager
async def exclusive(target: Path) -> AsyncIterator[None]:
    """Hold the target's lock file: one download of a file at a time, across threads and processes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(_lock_path(target), "a+b") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(_LOCK_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_meta(target: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads(_meta_path(target).read_text())
        if isinstance(meta, dict):
            return meta
    return {}


def _discard(target: Path) -> None:
    for path in (partial_path(target), _meta_path(target)):
        path.unlink(missing_ok=True)


def _hash_file(path: Path) -> "hashlib._Hash":
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(_CHUNK):
            digest.update(block)
    return digest


def _validator(response: httpx.Response) -> str | None:
    etag: str | None = response.headers.get("etag")
    # A weak ETag may not be used in If-Range (RFC 9110 13.1.5).
    if etag and not etag.startswith("W/"):
        return etag
    modified: str | None = response.headers.get("last-modified")
    return modified


def _announced(response: httpx.Response, offset: int, url: str) -> tuple[int, int | None]:
    """(first byte the body starts at, total size) from a 200 or 206 answer."""
    if response.status_code == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
        if match is None or int(match.group(1)) != offset:
            raise DownloadError(
                f"{url} answered a range request with Content-Range "
                f"{response.headers.get('content-range')!r}, not one starting at byte {offset}"
            )
        return offset, None if match.group(3) == "*" else int(match.group(3))
    length = response.headers.get("content-length")
    return 0, int(length) if length and length.isdigit() else None


async def _stream(
    response: httpx.Response,
    sink: IO[bytes],
    digest: "hashlib._Hash",
    done: int,
    total: int | None,
    progress: Progress | None,
) -> int:
    if progress is not None:
        progress(done, total)
    async for chunk in response.aiter_raw(_CHUNK):
        sink.write(chunk)
        digest.update(chunk)
        done += len(chunk)
        if total is not None and done > total:
            break
        if progress is not None:
            progress(done, total)
    sink.flush()
    # Flushing hundreds of MB to disk takes seconds, which the event loop must not wait for.
    await asyncio.to_thread(os.fsync, sink.fileno())
    return done


async def download(
    url: str,
    target: Path,
    *,
    sha256: str | None = None,
    timeout_s: float = 30.0,
    progress: Progress | None = None,
) -> Downloaded:
    """Fetch url into target, resuming an earlier partial file; call under ``exclusive(target)``.

    timeout_s bounds connecting and each wait for more bytes, not the whole download. Raises
    DownloadError when the file is not complete and verified; an interrupted partial file is kept.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(target)
    headers = {"user-agent": f"immich-aio/{__version__}", "accept-encoding": "identity"}
    client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), follow_redirects=True, headers=headers)
    async with client:
        for _ in range(2):
            meta = _read_meta(target)
            offset = partial.stat().st_size if partial.is_file() and meta else 0
            request_headers = {}
            if offset:
                request_headers["range"] = f"bytes={offset}-"
                if meta.get("validator"):
                    request_headers["if-range"] = str(meta["validator"])
            try:
                async with client.stream("GET", url, headers=request_headers) as response:
                    if response.status_code == 416 and offset:
                        # The partial file is as long as the file, or longer: start again, once.
                        _discard(target)
                        continue
                    return await _receive(response, url, target, offset, meta, sha256, progress)
            except httpx.HTTPError as error:
                kept = partial.stat().st_size if partial.is_file() else 0
                raise DownloadError(
                    f"{type(error).__name__}: {error or 'no answer'}"
                    + (f" (after {kept} bytes, kept for the next attempt to resume)" if kept else "")
                ) from None
        raise DownloadError(f"{url} refuses every range of the file")


async def _receive(
    response: httpx.Response,
    url: str,
    target: Path,
    offset: int,
    meta: dict[str, Any],
    sha256: str | None,
    progress: Progress | None,
) -> Downloaded:
    partial = partial_path(target)
    if response.status_code not in (200, 206):
        raise DownloadError(f"{url} answered HTTP {response.status_code}")
    if response.headers.get("content-type", "").startswith("text/html"):
        raise DownloadError(f"{url} answered with an HTML page, not the file")
    start, total = _announced(response, offset, url)
    if start and meta.get("total") not in (None, total):
        # Same validator but another size: the file changed; the next attempt starts from zero.
        _discard(target)
        raise DownloadError(
            f"{url} now announces {total} bytes, not {meta['total']}; the partial file was dropped"
        )
    _meta_path(target).write_text(json.dumps({"url": url, "total": total, "validator": _validator(response)}))
    digest = await asyncio.to_thread(_hash_file, partial) if start else hashlib.sha256()
    with open(partial, "ab" if start else "wb") as sink:
        done = await _stream(response, sink, digest, start, total, progress)
    if total is not None and done < total:
        raise DownloadError(
            f"the connection closed after {done} of {total} bytes (kept for the next attempt to resume)"
        )
    if total is not None and done > total:
        _discard(target)
        raise DownloadError(
            f"{url} sent more than the {total} bytes it announced; the file was deleted", rejected=True
        )
    actual = digest.hexdigest()
    if sha256 is not None and actual != sha256.lower():
        _discard(target)
        raise DownloadError(
            f"sha256 mismatch: expected {sha256.lower()}, got {actual}; the file was deleted", rejected=True
        )
    os.replace(partial, target)
    _meta_path(target).unlink(missing_ok=True)
    return Downloaded(target, done, actual, start)
