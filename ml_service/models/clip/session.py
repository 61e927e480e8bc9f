"""ONNX Runtime sessions for the exported encoders, and turning their output into a unit embedding."""

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray


def onnx_session(path: Path, threads: int, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> Any:
    """A session with full graph optimisation; providers that this onnxruntime lacks are skipped."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads if threads > 0 else 0
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    available = set(ort.get_available_providers())
    chosen = [p for p in providers if p in available] or ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), options, providers=chosen)


def normalise(vector: NDArray[np.float32]) -> NDArray[np.float32]:
    """The vector scaled to length 1 (a zero vector stays as it is)."""
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def embed(session: Any, tensor: NDArray[Any]) -> NDArray[np.float32]:
    """Run a one-input session on a batch of one and return its unit embedding."""
    output = session.run(None, {session.get_inputs()[0].name: tensor})[0]
    return normalise(np.asarray(output[0], dtype=np.float32))
