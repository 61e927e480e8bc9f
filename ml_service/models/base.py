"""Common base for locally served models: load once, predict, unload, and report memory-relevant state."""

import threading
import time
from abc import ABC, abstractmethod


class InferenceModel(ABC):
    """One servable model; subclasses implement _load/_unload and a task-specific predict method."""

    #: Task name used in metrics and logs, e.g. "ocr" or "clip-visual".
    task: str = "model"

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.load_seconds: float | None = None
        self._load_lock = threading.Lock()
        self._loaded = False
        self.load_count = 0

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> float:
        """Load the model once (thread-safe); returns the seconds spent loading (0 if already loaded)."""
        with self._load_lock:
            if self._loaded:
                return 0.0
            started = time.perf_counter()
            self._load()
            self._loaded = True
            self.load_count += 1
            self.load_seconds = time.perf_counter() - started
            return self.load_seconds

    def unload(self) -> None:
        with self._load_lock:
            if self._loaded:
                self._unload()
                self._loaded = False

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _unload(self) -> None: ...
