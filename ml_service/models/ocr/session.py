"""ONNX Runtime sessions for the OCR graphs, with the thread settings the service was given."""

from pathlib import Path
from typing import Any

import onnxruntime as ort

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def ocr_session(path: Path, threads: int, use_cuda: bool) -> Any:
    """One inference session; `threads` 0 leaves ONNX Runtime its default (one per core)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads > 0:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    providers = [CUDA, CPU] if use_cuda else [CPU]
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)
