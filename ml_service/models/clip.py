"""Chinese-CLIP (cn_clip) image and text encoders, served by ONNX Runtime (exported once) or torch."""

import contextlib
import io
import json
import logging
import os
import threading
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from ml_service.errors import ServiceError
from ml_service.models.base import InferenceModel

log = logging.getLogger("ml_service.clip")

# cn_clip's preprocessing constants (cn_clip.clip.utils.image_transform).
_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
CONTEXT_LENGTH = 52
_ONNX_OPSET = 17
# Bumped when the exported graphs change for the same checkpoint, so cached exports are redone.
_EXPORT_REVISION = 2
_locks: dict[tuple[str, Path] | Path, threading.Lock] = {}
_locks_guard = threading.Lock()
_shared_models: "weakref.WeakValueDictionary[Path, Any]" = weakref.WeakValueDictionary()


def checkpoint_path(weights_dir: Path, architecture: str) -> Path:
    """Where cn_clip's load_from_name looks for an architecture's checkpoint inside weights_dir."""
    from cn_clip.clip.utils import _MODELS

    return weights_dir / str(_MODELS[architecture][1])


def input_resolution(architecture: str) -> int:
    from cn_clip.clip.utils import _MODEL_INFO

    return int(_MODEL_INFO[architecture]["input_resolution"])


def preprocess_image(image: Image.Image, resolution: int) -> NDArray[np.float32]:
    """cn_clip's image_transform in numpy: bicubic resize to a square, RGB, scale to 0..1, normalise."""
    resized = image.resize((resolution, resolution), Image.Resampling.BICUBIC).convert("RGB")
    pixels = np.asarray(resized, dtype=np.float32) / 255.0
    normalised = (pixels - _MEAN) / _STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)


def tokenize(text: str) -> NDArray[np.int64]:
    """cn_clip's tokenize (BERT wordpiece, [CLS]..[SEP], at most 52 tokens) without the trailing padding.

    Dropping the padding changes nothing in the result (cn_clip masks padding out of attention) and
    makes short queries several times faster to encode.
    """
    from cn_clip.clip import tokenize as cn_tokenize

    tokens = cn_tokenize([text], context_length=CONTEXT_LENGTH).numpy()
    length = int(np.count_nonzero(tokens[0]))
    return np.ascontiguousarray(tokens[:, :length], dtype=np.int64)


def normalise(vector: NDArray[np.float32]) -> NDArray[np.float32]:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def load_torch_model(weights_dir: Path, architecture: str, threads: int) -> Any:
    """Load a cn_clip checkpoint through cn_clip's own loader (CPU, fp32, eval mode).

    Encoders of the same checkpoint share one torch model while any of them holds it.
    """
    import torch
    from cn_clip.clip import load_from_name

    path = checkpoint_path(weights_dir, architecture)
    if not path.is_file():
        raise ServiceError(
            503, f"Chinese-CLIP weights for {architecture} not found: expected {path.name} in {weights_dir}"
        )
    with _shared_lock(path):
        model = _shared_models.get(path)
        if model is not None:
            return model
        if threads > 0:
            torch.set_num_threads(threads)
        # cn_clip prints its model config on stdout; keep the service's output to structured logs.
        with contextlib.redirect_stdout(io.StringIO()):
            model, _ = load_from_name(architecture, device="cpu", download_root=str(weights_dir))
        model = model.eval()
        _shared_models[path] = model
        return model


def _shared_lock(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def onnx_paths(weights_dir: Path, architecture: str) -> tuple[Path, Path, Path]:
    """(visual.onnx, textual.onnx, stamp.json) cached next to the checkpoint."""
    stem = checkpoint_path(weights_dir, architecture).stem
    cache = weights_dir / "onnx"
    return cache / f"{stem}.visual.onnx", cache / f"{stem}.textual.onnx", cache / f"{stem}.stamp.json"


def _export_lock(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(("export", path), threading.Lock())


def _checkpoint_stamp(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {
        "checkpoint": path.name,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "opset": _ONNX_OPSET,
        "revision": _EXPORT_REVISION,
    }


def class_token_shortcut_applies(visual: Any) -> bool:
    """Whether a visual tower is a plain cn_clip ViT (the structure encode_image_class_token_only assumes)."""
    from cn_clip.clip.model import VisualTransformer

    if not isinstance(visual, VisualTransformer):
        return False
    last = visual.transformer.resblocks[-1]
    return last.attn_mask is None and not last.use_flash_attention


def encode_image_class_token_only(visual: Any, image: Any) -> Any:
    """cn_clip's ViT image encoder with the same output, computing the last block for the class token only.

    The embedding is read from the class token alone, so in the last block the other 196 tokens serve
    only as keys and values of its attention; their own attention outputs and MLP (about 7 % of the
    whole encoder's arithmetic) are never used. Layers, weights and order of operations are cn_clip's.
    """
    import torch

    x = visual.conv1(image.type(visual.conv1.weight.dtype))
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    class_token = visual.class_embedding.to(x.dtype) + torch.zeros(
        x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device
    )
    x = torch.cat([class_token, x], dim=1) + visual.positional_embedding.to(x.dtype)
    x = visual.ln_pre(x).permute(1, 0, 2)  # NLD -> LND, as cn_clip's transformer expects
    blocks = visual.transformer.resblocks
    for block in blocks[:-1]:
        x = block(x)
    last = blocks[-1]
    normed = last.ln_1(x)
    head = x[:1] + last.attn(normed[:1], normed, normed, need_weights=False)[0]
    head = head + last.mlp(last.ln_2(head))
    embedding = visual.ln_post(head[0])
    return embedding @ visual.proj if visual.proj is not None else embedding


def ensure_onnx_export(weights_dir: Path, architecture: str, threads: int) -> tuple[Path, Path]:
    """Export both encoders to ONNX once per checkpoint version; later calls reuse the cached files."""
    visual, textual, stamp_file = onnx_paths(weights_dir, architecture)
    checkpoint = checkpoint_path(weights_dir, architecture)
    if not checkpoint.is_file():
        raise ServiceError(
            503,
            f"Chinese-CLIP weights for {architecture} not found: expected {checkpoint.name} in {weights_dir}",
        )
    with _export_lock(checkpoint):
        stamp = _checkpoint_stamp(checkpoint)
        if visual.is_file() and textual.is_file() and stamp_file.is_file():
            with contextlib.suppress(ValueError, OSError):
                if json.loads(stamp_file.read_text()) == stamp:
                    return visual, textual
        log.info("exporting Chinese-CLIP to ONNX", extra={"model": architecture, "dir": str(visual.parent)})
        export_onnx(load_torch_model(weights_dir, architecture, threads), architecture, visual, textual)
        stamp_file.write_text(json.dumps(stamp))
    return visual, textual


def export_onnx(model: Any, architecture: str, visual_path: Path, textual_path: Path) -> None:
    """Trace the image and text encoders into two ONNX graphs (dynamic batch; dynamic text length)."""
    import torch

    class VisualEncoder(torch.nn.Module):
        def __init__(self, clip: Any) -> None:
            super().__init__()
            self.clip = clip

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            if class_token_shortcut_applies(self.clip.visual):
                return encode_image_class_token_only(self.clip.visual, image)  # type: ignore[no-any-return]
            return self.clip.encode_image(image)  # type: ignore[no-any-return]

    class TextualEncoder(torch.nn.Module):
        def __init__(self, clip: Any) -> None:
            super().__init__()
            self.clip = clip

        def forward(self, text: torch.Tensor) -> torch.Tensor:
            return self.clip.encode_text(text)  # type: ignore[no-any-return]

    visual_path.parent.mkdir(parents=True, exist_ok=True)
    resolution = input_resolution(architecture)
    sample_image = torch.zeros(1, 3, resolution, resolution)
    sample_text = torch.from_numpy(tokenize("一张照片"))
    jobs: list[tuple[torch.nn.Module, torch.Tensor, str, Path, dict[int, str]]] = [
        (VisualEncoder(model), sample_image, "image", visual_path, {0: "batch"}),
        (TextualEncoder(model), sample_text, "text", textual_path, {0: "batch", 1: "tokens"}),
    ]
    for wrapper, sample, input_name, path, axes in jobs:
        # The wrappers must be in eval mode: the exporter restores the wrapper's training flag afterwards,
        # which would otherwise switch the shared model's dropout on.
        wrapper.eval()
        partial = path.with_suffix(".partial")
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter is deprecated upstream but is the one that needs no onnxscript.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                (sample,),
                str(partial),
                dynamo=False,
                input_names=[input_name],
                output_names=["embedding"],
                dynamic_axes={input_name: axes, "embedding": {0: "batch"}},
                opset_version=_ONNX_OPSET,
            )
        os.replace(partial, path)


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
# Bumped when probe_inputs changes, so recorded fidelities are measured again.
_PROBE_REVISION = 1


def int8_path(fp32_path: Path, recipe: Int8Recipe) -> Path:
    return fp32_path.with_name(fp32_path.name.replace(".onnx", f".{recipe.tag}.onnx"))


def ensure_int8(fp32_path: Path, recipe: Int8Recipe = TEXTUAL_INT8) -> Path:
    """Dynamically quantise an exported encoder's MatMul/Gemm weights to int8 (once; redone if stale).

    Activations are quantised per call, so no calibration data is needed; the fidelity to fp32 is
    checked by int8_fidelity before the quantised graph is served.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = int8_path(fp32_path, recipe)
    with _export_lock(target):
        if target.is_file() and target.stat().st_mtime_ns >= fp32_path.stat().st_mtime_ns:
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
    return target


def probe_inputs(part: str, resolution: int) -> list[NDArray[Any]]:
    """Fixed inputs for comparing a quantised encoder with fp32: varied synthetic pictures or queries."""
    if part == "textual":
        return [
            tokenize(text) for text in ("猫", "海边日落", "一只狗在草地上奔跑", "发票 合计 ¥35", "a red car")
        ]
    rng = np.random.default_rng(20261122)
    ramp = np.linspace(0, 255, 640, dtype=np.float32)
    gradient = np.stack(
        [np.tile(ramp, (480, 1)), np.tile(ramp[:480, None], (1, 640)), 255 - np.tile(ramp, (480, 1))], 2
    )
    blocks = np.kron(rng.integers(0, 255, (6, 8, 3)), np.ones((80, 80, 1)))
    pictures = [
        Image.fromarray(gradient.astype(np.uint8)),
        Image.fromarray(blocks.astype(np.uint8)),
        Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)),
        Image.fromarray(np.clip(blocks + rng.normal(0, 25, blocks.shape), 0, 255).astype(np.uint8)),
    ]
    return [preprocess_image(picture, resolution) for picture in pictures]


def int8_fidelity(fp32_path: Path, quantised_path: Path, part: str, resolution: int) -> float:
    """The lowest cosine between fp32 and int8 embeddings over probe_inputs (cached next to the int8 file,
    so later loads neither build the probes nor open the fp32 graph)."""
    record = quantised_path.with_suffix(".fidelity.json")
    stamp = {"int8_mtime_ns": quantised_path.stat().st_mtime_ns, "probes": _PROBE_REVISION}
    with contextlib.suppress(ValueError, OSError, KeyError, TypeError):
        saved = json.loads(record.read_text())
        if saved["stamp"] == stamp:
            return float(saved["min_cosine"])
    reference, quantised = onnx_session(fp32_path, 0), onnx_session(quantised_path, 0)
    name = reference.get_inputs()[0].name
    lowest = 1.0
    for probe in probe_inputs(part, resolution):
        a = normalise(np.asarray(reference.run(None, {name: probe})[0][0], dtype=np.float32))
        b = normalise(np.asarray(quantised.run(None, {name: probe})[0][0], dtype=np.float32))
        lowest = min(lowest, float(np.dot(a, b)))
    record.write_text(json.dumps({"stamp": stamp, "min_cosine": lowest}))
    return lowest


def onnx_session(path: Path, threads: int, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads if threads > 0 else 0
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    available = set(ort.get_available_providers())
    chosen = [p for p in providers if p in available] or ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), options, providers=chosen)


class _ClipEncoder(InferenceModel):
    """Shared loading logic for the two encoders of one cn_clip checkpoint."""

    part = "visual"

    def __init__(
        self,
        model_name: str,
        architecture: str,
        weights_dir: Path,
        backend: str,
        threads: int,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
    ) -> None:
        super().__init__(model_name)
        self.providers = providers
        self.architecture = architecture
        self.weights_dir = weights_dir
        self.backend = backend
        self.threads = threads
        self.dimension: int | None = None
        self._session: Any = None
        self._torch_model: Any = None
        self._active = "none"
        #: Lowest cosine of the int8 graph to fp32 on the probe inputs (onnx-int8 backend only).
        self.int8_cosine: float | None = None

    def _load(self) -> None:
        if self.backend in ("onnx", "onnx-int8"):
            quantised: Path | None = None
            try:
                visual, textual = ensure_onnx_export(self.weights_dir, self.architecture, self.threads)
                path = visual if self.part == "visual" else textual
                if self.backend == "onnx-int8":
                    quantised = self._quantised(path)
            except ServiceError:
                raise
            except Exception as error:  # e.g. read-only weights dir: keep serving through torch
                log.warning("ONNX export failed, serving with torch", extra={"error": str(error)})
            else:
                self._session = onnx_session(quantised or path, self.threads, self.providers)
                self._active = "onnx-int8" if quantised else "onnx"
                return
        self._torch_model = load_torch_model(self.weights_dir, self.architecture, self.threads)
        self._active = "torch"

    def _quantised(self, fp32_path: Path) -> Path | None:
        """The int8 graph of this encoder, or None when it strays from fp32 (cosine < INT8_MIN_COSINE)."""
        recipe = VISUAL_INT8 if self.part == "visual" else TEXTUAL_INT8
        path = ensure_int8(fp32_path, recipe)
        self.int8_cosine = int8_fidelity(fp32_path, path, self.part, input_resolution(self.architecture))
        if self.int8_cosine < INT8_MIN_COSINE:
            log.warning(
                "int8 encoder strays from fp32, serving fp32",
                extra={"model": self.model_name, "part": self.part, "cosine": round(self.int8_cosine, 6)},
            )
            return None
        return path

    def _unload(self) -> None:
        self._session = None
        self._torch_model = None

    @property
    def active_backend(self) -> str:
        """The backend actually serving: onnx, onnx-int8, or torch (also after a failed export)."""
        return self._active

    def _run(self, tensor: NDArray[Any]) -> NDArray[np.float32]:
        if self._session is not None:
            output = self._session.run(None, {self._session.get_inputs()[0].name: tensor})[0]
        elif self._torch_model is not None:
            output = self._run_torch(tensor)
        else:
            raise RuntimeError(f"{self.model_name} used before load()")
        return normalise(np.asarray(output[0], dtype=np.float32))

    def _run_torch(self, tensor: NDArray[Any]) -> NDArray[np.float32]:
        import torch

        with torch.inference_mode():
            batch = torch.from_numpy(tensor)
            if self.part == "visual":
                result = self._torch_model.encode_image(batch)
            else:
                result = self._torch_model.encode_text(batch)
        return np.asarray(result.float().numpy(), dtype=np.float32)


class ClipVisualModel(_ClipEncoder):
    """Chinese-CLIP image encoder."""

    task = "clip-visual"
    part = "visual"

    def predict(self, image: Image.Image) -> NDArray[np.float32]:
        return self._run(preprocess_image(image, input_resolution(self.architecture)))


class ClipTextualModel(_ClipEncoder):
    """Chinese-CLIP text encoder."""

    task = "clip-textual"
    part = "textual"

    def predict(self, text: str) -> NDArray[np.float32]:
        return self._run(tokenize(text))
