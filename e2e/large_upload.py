"""A large upload through the gateway arrives byte for byte, and the gateway never holds it in memory."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from e2e.checks import expect
from e2e.observe import Library

CHUNK = 8 << 20


def write_file(path: Path, size: int) -> str:
    """A file of `size` bytes that repeats no chunk (each 8 MiB block is salted by its index); its SHA-1."""
    digest = hashlib.sha1()
    base = hashlib.sha256(b"immich-aio large upload").digest() * (CHUNK // 32)
    with path.open("wb") as handle:
        written = 0
        index = 0
        while written < size:
            block = (index.to_bytes(8, "big") + base[8:])[: size - written]
            handle.write(block)
            digest.update(block)
            written += len(block)
            index += 1
    return digest.hexdigest()


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def check_large_upload(library: Library, directory: Path, size: int) -> str:
    """Upload `size` bytes through the gateway; Immich's own checksum must be the file's; the gateway's peak
    RSS must grow by less than 100 MiB (the body is streamed, never held)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "large-upload.mp4"
    sha1 = write_file(path, size)
    gateway = library.supervisor.get("gateway")
    before = peak_rss_mib(gateway.pid)
    try:
        asset_id = str(library.client.upload(path)["id"])
    finally:
        path.unlink(missing_ok=True)
    after = peak_rss_mib(gateway.pid)
    stored = library.client.asset(asset_id)
    immich_sha1 = base64.b64decode(stored["checksum"]).hex()
    expect(immich_sha1 == sha1, f"Immich stored SHA-1 {immich_sha1}, the file's is {sha1}")
    expect(after - before < 100, f"the gateway's peak RSS grew by {after - before:.0f} MiB")
    library.client.trash([asset_id])
    return (
        f"{size / (1 << 30):.2f} GiB arrived whole (Immich's SHA-1 = the file's); gateway peak RSS "
        f"{before:.0f} -> {after:.0f} MiB (+{after - before:.0f})"
    )
