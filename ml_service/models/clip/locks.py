"""One lock per file path, so threads preparing the same file (export, int8, torch load) take turns."""

import threading
from pathlib import Path


class PathLocks:
    """A lock for each path, created on first use; the same path always gets the same lock."""

    def __init__(self) -> None:
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, path: Path) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(path, threading.Lock())
