"""CLIP checkpoints on demand: where each comes from, one download per file, progress, and 503s."""

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml_service.config import Settings
from ml_service.download import DownloadError, Progress, download, exclusive
from ml_service.metrics import Metrics
from ml_service.models.clip.checkpoint import checkpoint_path
from ml_service.models.clip.digest import record_digest
from ml_service.models.clip.names import CLIP_MODELS, clip_release
from ml_service.models.clip.release import RELEASE_HOST, release_url
from ml_service.models.errors import ModelUnavailable, UnknownModel

log = logging.getLogger("ml_service.download")

#: After a failed download, requests get the same 503 for this long before one of them tries again.
RETRY_AFTER_S = 30.0
_LOG_EVERY_S = 5.0


@dataclass(frozen=True)
class CheckpointSource:
    """Where one served model's checkpoint must lie and where it is downloaded from."""

    model: str
    release: str
    path: Path
    url: str
    sha256: str | None


@dataclass
class DownloadState:
    """A download under way: bytes received so far, of how many (None until the server says)."""

    url: str
    done: int = 0
    total: int | None = None


def checkpoint_source(settings: Settings, model: str) -> CheckpointSource:
    """The source of a CLIP model's checkpoint: its own URL if configured, else the release file on the
    mirror or on the release host (Hugging Face)."""
    release = clip_release(model)
    if release is None:
        raise UnknownModel(f"{model!r} is not a CLIP model served here; served: {', '.join(CLIP_MODELS)}")
    url = settings.clip_model_urls.get(model) or release_url(
        release, settings.clip_mirror_url or RELEASE_HOST
    )
    path = checkpoint_path(settings.clip_weights_dir, release)
    return CheckpointSource(model, release, path, url, settings.clip_sha256.get(model))


class _ProgressLog:
    """Keeps a download's state current, logs progress every few seconds, and tells a listener."""

    def __init__(self, source: CheckpointSource, state: DownloadState, listener: Progress | None) -> None:
        self.source = source
        self.state = state
        self.listener = listener
        self.started = time.monotonic()
        self.logged = self.started
        self.first: int | None = None

    def __call__(self, done: int, total: int | None) -> None:
        self.state.done, self.state.total = done, total
        if self.first is None:
            self.first = done
        if self.listener is not None:
            self.listener(done, total)
        now = time.monotonic()
        if now - self.logged >= _LOG_EVERY_S:
            self.logged = now
            rate = (done - self.first) / max(now - self.started, 1e-6)
            log.info(
                "downloading",
                extra={
                    "model": self.source.model,
                    "bytes": done,
                    "total": total,
                    "percent": round(100 * done / total, 1) if total else None,
                    "mb_per_s": round(rate / 1e6, 2),
                },
            )


class CheckpointStore:
    """Makes served models' checkpoints present in the weights directory, downloading those missing.

    Concurrent callers needing the same file wait for one download (another process downloading it
    holds its lock file); a failed download answers 503 to every caller for RETRY_AFTER_S seconds.
    """

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self._metrics = metrics
        self._downloads: dict[Path, asyncio.Task[Path]] = {}
        self._states: dict[Path, DownloadState] = {}
        self._failures: dict[Path, tuple[float, str]] = {}

    def source(self, model: str) -> CheckpointSource:
        return checkpoint_source(self.settings, model)

    def status(self, model: str) -> dict[str, Any]:
        """A model's checkpoint as GET / shows it: file, presence, URL, running download, last error."""
        source = self.source(model)
        state = self._states.get(source.path)
        failure = self._failures.get(source.path)
        present = source.path.is_file()
        return {
            "file": source.path.name,
            "present": present,
            "url": source.url,
            "downloading": None if state is None else {"bytes_done": state.done, "bytes_total": state.total},
            "download_error": None if failure is None or present else failure[1],
        }

    async def ensure(self, model: str, progress: Progress | None = None) -> Path:
        """The checkpoint's path once it is present; progress hears a download this call starts."""
        source = self.source(model)
        if source.path.is_file():
            return source.path
        if not self.settings.clip_download:
            raise self._missing(source, "automatic download is off (IMMICH_AIO_ML_CLIP_DOWNLOAD=false)")
        failure = self._failures.get(source.path)
        if failure is not None and time.monotonic() - failure[0] < RETRY_AFTER_S:
            raise self._missing(
                source, failure[1], retry_after=RETRY_AFTER_S - (time.monotonic() - failure[0])
            )
        task = self._downloads.get(source.path)
        if task is None:
            task = asyncio.create_task(self._fetch(source, progress))
            self._downloads[source.path] = task
            task.add_done_callback(self._forget)
        # A caller that goes away (client disconnect) leaves the download running for the others.
        return await asyncio.shield(task)

    def _forget(self, task: "asyncio.Task[Path]") -> None:
        self._downloads = {path: running for path, running in self._downloads.items() if running is not task}
        if not task.cancelled():
            task.exception()  # retrieved here, so a download whose callers all went away logs no warning

    async def close(self) -> None:
        """Stop running downloads; their partial files stay for the next start to resume."""
        running = list(self._downloads.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def _fetch(self, source: CheckpointSource, progress: Progress | None) -> Path:
        state = DownloadState(source.url)
        started = time.monotonic()
        async with exclusive(source.path):
            if source.path.is_file():  # another process downloaded it while this one waited for the lock
                return source.path
            self._states[source.path] = state
            log.info(
                "downloading CLIP checkpoint",
                extra={"model": source.model, "url": source.url, "file": str(source.path)},
            )
            try:
                result = await download(
                    source.url,
                    source.path,
                    sha256=source.sha256,
                    timeout_s=self.settings.clip_download_timeout_s,
                    progress=_ProgressLog(source, state, progress),
                )
            except (DownloadError, OSError) as error:
                reason = f"downloading it from {source.url} failed: {error}"
                self._failures[source.path] = (time.monotonic(), reason)
                rejected = isinstance(error, DownloadError) and error.rejected
                self._count(source.model, "rejected" if rejected else "failed")
                log.warning("checkpoint download failed", extra={"model": source.model, "error": reason})
                raise self._missing(source, reason) from None
            finally:
                self._states.pop(source.path, None)
        record_digest(result.path, result.sha256)
        self._failures.pop(source.path, None)
        self._count(source.model, "complete")
        log.info(
            "checkpoint downloaded",
            extra={
                "model": source.model,
                "bytes": result.size,
                "resumed_from": result.resumed_from,
                "sha256": result.sha256,
                "seconds": round(time.monotonic() - started, 1),
            },
        )
        return result.path

    def _count(self, model: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.model_downloads.labels(model, outcome).inc()

    def _missing(
        self, source: CheckpointSource, reason: str, retry_after: float = RETRY_AFTER_S
    ) -> ModelUnavailable:
        return ModelUnavailable(
            f"CLIP weights for {source.model} not found: expected {source.path.name} in "
            f"{source.path.parent}; {reason}. Place the file there by hand, or point "
            "IMMICH_AIO_ML_CLIP_MIRROR_URL or IMMICH_AIO_ML_CLIP_MODEL_URLS at a reachable copy",
            retry_after,
        )
