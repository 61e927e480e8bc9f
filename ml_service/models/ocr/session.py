"""ONNX Runtime sessions for the OCR graphs, with the thread settings the service was given."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


@dataclass(frozen=True)
class SessionSettings:
    """threads 0 leaves ONNX Runtime its default (one per core); spinning keeps idle workers busy-waiting."""

    threads: int = 0
    use_cuda: bool = False
    spinning: bool = False


def ocr_session(path: Path, settings: SessionSettings) -> Any:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if settings.threads > 0:
        options.intra_op_num_threads = settings.threads
        options.inter_op_num_threads = 1
    if not settings.spinning:
        # Busy-waiting workers burn the cores that concurrent requests (and the host's other work) need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = [CUDA, CPU] if settings.use_cuda else [CPU]
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)
