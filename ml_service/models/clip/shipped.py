"""Graphs shipped in an image: the one graph that serves each encoder, chosen when the image is built.

`immich-aio models export` loads each encoder as the service would (int8 where it passes the fidelity
guard, else fp32) and writes which file served it into `<stem>.shipped.json`. An image can then carry
only those files: a ViT-B-16 image carries 247 MB of int8 graphs instead of 1 GB with the fp32 ones.
"""

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from ml_service.models.clip.export import EXPORT_REVISION, onnx_paths


@dataclass(frozen=True)
class ShippedGraph:
    """The graph that serves one encoder, the backend it is (onnx-int8 or onnx) and its int8 cosine."""

    path: Path
    backend: str
    int8_cosine: float | None


def manifest_path(weights_dir: Path, release: str) -> Path:
    visual, _, _ = onnx_paths(weights_dir, release)
    return visual.with_name(visual.name.replace(".visual.onnx", ".shipped.json"))


def shipped_graph(weights_dir: Path, release: str, task: str, backend: str) -> ShippedGraph | None:
    """The shipped graph of `task` that `backend` may serve: onnx-int8 takes the guard's choice (int8, or
    fp32 where int8 strayed), onnx takes only an fp32 graph. None without a manifest or its file."""
    with contextlib.suppress(ValueError, OSError, KeyError, TypeError):
        manifest = json.loads(manifest_path(weights_dir, release).read_text())
        if manifest["revision"] != EXPORT_REVISION:
            return None
        entry = manifest["encoders"][task]
        graph = ShippedGraph(
            manifest_path(weights_dir, release).with_name(entry["file"]),
            str(entry["backend"]),
            None if entry.get("int8Cosine") is None else float(entry["int8Cosine"]),
        )
        if graph.path.is_file() and (backend == "onnx-int8" or graph.backend == backend):
            return graph
    return None


def write_manifest(target: Path, release: str, served: dict[str, ShippedGraph]) -> Path:
    """Record, in `target` (a weights directory), which graph serves each encoder task."""
    encoders = {
        task: {"file": graph.path.name, "backend": graph.backend, "int8Cosine": graph.int8_cosine}
        for task, graph in served.items()
    }
    path = manifest_path(target, release)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"revision": EXPORT_REVISION, "encoders": encoders}, indent=1))
    return path
