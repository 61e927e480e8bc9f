"""int8 versions of the exported encoders: the recipes, dynamic quantisation, and the fidelity guard."""

import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml_service.models.clip.export import EXPORT_REVISION
from ml_service.models.clip.locks import PathLocks
from ml_service.models.clip.session import embed, onnx_session

log = logging.getLogger("ml_service.clip")


@dataclass(frozen=True)
class Int8Recipe:
    """How one encoder is quantised: the cache-file tag and onnxruntime's quantize_dynamic options."""

    tag: str
    per_channel: bool
    reduce_range: bool


# Text: per-tensor int8 keeps cosine >= 0.9995 and is what a short query's weight-bound encode needs.
TEXTUAL_INT8 = Int8Recipe("int8", per_channel=False, reduce_range=False)
# Image: per-channel 7-bit weights. Without VNNI (AVX2) int8 products are summed pairwise into 16-bit
# saturating lanes; full-range weights saturate and the image embedding drifts to cosine ~0.98, 7-bit
# weights cannot saturate (cosine 0.9998 on ViT-B-16), at the same speed.
VISUAL_INT8 = Int8Recipe("int8-pc7", per_channel=True, reduce_range=True)
# Below this cosine to fp32 on the probe inputs, a quantised encoder is not used (fp32 serves instead).
INT8_MIN_COSINE = 0.999
# Bumped when an encoder's probe inputs change, so recorded fidelities are measured again.
_PROBE_REVISION = 1
_quantise_locks = PathLocks()

Probes = Callable[[], list[NDArray[Any]]]


def int8_path(fp32_path: Path, recipe: Int8Recipe) -> Path:
    """Where the int8 graph of an fp32 graph is cached for a recipe."""
    return fp32_path.with_name(fp32_path.name.replace(".onnx", f".{recipe.tag}.onnx"))


def _int8_stamp(fp32_path: Path, checkpoint_sha256: str | None) -> dict[str, Any]:
    # the export revision and the graph's size, not its mtime: graphs copied into an image keep what they
    # are but not always their mtimes
    return {
        "checkpoint_sha256": checkpoint_sha256,
        "export_revision": EXPORT_REVISION,
        "fp32_size": fp32_path.stat().st_size,
    }


def ensure_int8(fp32_path: Path, recipe: Int8Recipe, checkpoint_sha256: str | None = None) -> Path:
    """Dynamically quantise an exported encoder's MatMul/Gemm weights to int8 (once; redone if stale).

    The int8 file is stamped with the checkpoint's sha256 (when the caller knows it), the export
    revision and the fp32 graph's size, and quantised again when any of them changes. Activations are
    quantised per call, so no calibration data is needed; the fidelity to fp32 is checked by
    int8_fidelity before serving.
    """
    # onnxruntime.quantization imports onnx (~22 MB RSS, measured): needed only to quantise a new graph.
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = int8_path(fp32_path, recipe)
    stamp_file = target.with_suffix(".stamp.json")
    stamp = _int8_stamp(fp32_path, checkpoint_sha256)
    with _quantise_locks(target):
        with contextlib.suppress(ValueError, OSError):
            if target.is_file() and json.loads(stamp_file.read_text()) == stamp:
                return target
        log.info("quantising to int8", extra={"model": fp32_path.name, "recipe": recipe.tag})
        partial = target.with_suffix(".partial")
        quantize_dynamic(
            str(fp32_path),
            str(partial),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Gemm"],
            per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range,
        )
        os.replace(partial, target)
        stamp_file.write_text(json.dumps(stamp))
    return target


def int8_fidelity(fp32_path: Path, quantised_path: Path, probes: Probes) -> float:
    """The lowest cosine between fp32 and int8 embeddings over the probe inputs (cached next to the int8
    file, so later loads neither build the probes nor open the fp32 graph)."""
    record = quantised_path.with_suffix(".fidelity.json")
    stamp = {"int8_size": quantised_path.stat().st_size, "probes": _PROBE_REVISION}
    with contextlib.suppress(ValueError, OSError, KeyError, TypeError):
        saved = json.loads(record.read_text())
        if saved["stamp"] == stamp:
            return float(saved["min_cosine"])
    reference, quantised = onnx_session(fp32_path, 0), onnx_session(quantised_path, 0)
    lowest = 1.0
    for probe in probes():
        lowest = min(lowest, float(np.dot(embed(reference, probe), embed(quantised, probe))))
    record.write_text(json.dumps({"stamp": stamp, "min_cosine": lowest}))
    return lowest


def faithful_int8(
    fp32_path: Path, recipe: Int8Recipe, probes: Probes, checkpoint_sha256: str
) -> tuple[Path | None, float]:
    """The int8 graph of an encoder (None if it strays from fp32: cosine < INT8_MIN_COSINE) and its cosine."""
    path = ensure_int8(fp32_path, recipe, checkpoint_sha256)
    cosine = int8_fidelity(fp32_path, path, probes)
    if cosine < INT8_MIN_COSINE:
        log.warning(
            "int8 encoder strays from fp32, serving fp32",
            extra={"model": fp32_path.name, "recipe": recipe.tag, "cosine": round(cosine, 6)},
        )
        return None, cosine
    return path, cosine
