"""Common base for locally served models: load once, predict, unload, and report memory-relevant state."""

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

#: Work a model needs done before it can load (a download), handed in by whoever builds the model.
Preparation = Callable[[], Awaitable[None]]


class InferenceModel(ABC):
    """One servable model; subclasses implement _load/_unload and a task-specific predict method.

    Whoever holds models (the registry) needs only this interface: prepare, load, describe, unload.
    """

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

    async def prepare(self) -> None:  # noqa: B027 - an optional hook: most models need no preparation
        """What must happen before load(), on the event loop (a download); most models need nothing."""

    def describe(self) -> dict[str, str]:
        """What serves this model, for GET / and /metrics (files, backend); nothing by default."""
        return {}

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _unload(self) -> None: ...
