"""The sha256 of a checkpoint, computed once per version of the file and recorded beside it.

Exports (ONNX, int8) are stamped with it, so a changed checkpoint is exported again while a checkpoint
that was only touched or copied is not. A download records the hash it computed on the way; a file
placed by hand is hashed on first use (about a second per 500 MB).
"""

import contextlib
import hashlib
import json
from pathlib import Path

_CHUNK = 1 << 20


def record_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name + ".sha256.json")


def _version(checkpoint: Path) -> dict[str, int]:
    stat = checkpoint.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def record_digest(checkpoint: Path, sha256: str) -> None:
    """Remember the hash of the checkpoint as it is now (a read-only weights dir keeps no record)."""
    with contextlib.suppress(OSError):
        record_path(checkpoint).write_text(json.dumps({**_version(checkpoint), "sha256": sha256}))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_digest(checkpoint: Path) -> str:
    """The checkpoint's sha256: the recorded one while size and mtime are unchanged, else computed anew."""
    version = _version(checkpoint)
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        saved = json.loads(record_path(checkpoint).read_text())
        if {key: saved[key] for key in version} == version:
            return str(saved["sha256"])
    sha256 = file_sha256(checkpoint)
    record_digest(checkpoint, sha256)
    return sha256
