"""Benchmark Chinese-CLIP: seed-style torch eager batch 1 vs the service's ONNX paths; prints JSON figures.

Run from the repository root: ``python -m bench.ml_clip [--weights-dir DIR] [--repeat 12] [--threads N]``.
Weights: a cn_clip checkpoint in --weights-dir, or (default) the real architecture with random weights,
which gives true timings (weights do not change the amount of compute).
"""

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from cn_clip.clip import load_from_name, tokenize
from cn_clip.clip.utils import _MODEL_INFO, create_model
from PIL import Image

import ml_service
from ml_service.models.clip.checkpoint import checkpoint_path, input_resolution
from ml_service.models.clip.export import onnx_paths
from ml_service.models.clip.quantize import Int8Recipe, ensure_int8
from ml_service.models.clip.session import onnx_session
from ml_service.models.clip.textual import ClipTextualModel
from ml_service.models.clip.visual import ClipVisualModel, preprocess_image

QUERIES = [
    "猫",
    "海边日落",
    "一只狗在草地上奔跑",
    "北京故宫的雪景",
    "生日蛋糕和蜡烛",
    "发票",
    "红色的汽车",
    "山顶的日出",
]


def build_random_checkpoint(directory: Path, architecture: str) -> None:
    path = checkpoint_path(directory, architecture)
    if path.is_file():
        return
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        model = create_model(_MODEL_INFO[architecture]["struct"])
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 0, "step": 0, "name": "random", "state_dict": state}, path)


@dataclass
class Contender:
    """One way of serving Chinese-CLIP: encode-one-image and encode-one-query calls plus its samples."""

    name: str
    image: Callable[[Image.Image], Any]
    text: Callable[[str], Any]
    load_s: float
    samples: dict[str, tuple[list[float], list[float]]] = field(
        default_factory=lambda: {"image": ([], []), "text": ([], [])}
    )

    def timed(self, kind: str, argument: Any) -> None:
        """One call; wall-clock and process-CPU seconds (CPU time stays meaningful on a busy machine)."""
        function = self.image if kind == "image" else self.text
        started, started_cpu = time.perf_counter(), time.process_time()
        function(argument)
        wall, cpu = self.samples[kind]
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)


def measure(contenders: list[Contender], images: list[Image.Image], repeat: int) -> None:
    """Interleaved rounds: every contender encodes the same image (and three queries) in each round, in
    rotating order, so a machine whose speed drifts during the run slows all of them alike."""
    for contender in contenders:  # warm-up
        for index in range(2):
            contender.image(images[index % len(images)])
            contender.text(QUERIES[index])
    for round_number in range(repeat):
        shift = round_number % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            contender.timed("image", images[round_number % len(images)])
            for offset in range(3):
                contender.timed("text", QUERIES[(3 * round_number + offset) % len(QUERIES)])


def summary(samples: tuple[list[float], list[float]]) -> dict[str, float]:
    wall, cpu = samples
    ordered = sorted(wall)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1),
        "per_s": round(len(wall) / sum(wall), 2),
        "cpu_ms_p50": round(statistics.median(cpu) * 1000, 1),
    }


def cosine(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    return float(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b)))


def photos(count: int) -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 255, (1080, 1440, 3), dtype=np.uint8)) for _ in range(count)]


def seed_style(weights: Path, architecture: str, threads: int) -> Contender:
    """How the seed served it: cn_clip's loader, torch eager, batch 1, texts padded to 52 tokens."""
    torch.set_num_threads(threads)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        model, transform = load_from_name(architecture, device="cpu", download_root=str(weights))
    model.eval()
    load_s = time.perf_counter() - started

    def image(picture: Image.Image) -> Any:
        with torch.no_grad():
            return model.encode_image(transform(picture).unsqueeze(0))[0].numpy()

    def text(query: str) -> Any:
        with torch.no_grad():
            return model.encode_text(tokenize([query]))[0].numpy()

    return Contender("torch_eager_seed_style", image, text, load_s)


def service_path(weights: Path, architecture: str, threads: int, backend: str) -> Contender:
    """The service's encoders with one backend (onnx = fp32, onnx-int8 = the default)."""
    name = f"{architecture}__cn-clip"
    visual = ClipVisualModel(name, architecture, weights, backend, threads)
    textual = ClipTextualModel(name, architecture, weights, backend, threads)
    started = time.perf_counter()
    visual.load()
    textual.load()
    load_s = time.perf_counter() - started
    assert visual.active_backend == textual.active_backend == backend, "fell back to another backend"
    return Contender(backend.replace("-", "_"), visual.predict, textual.predict, load_s)


def full_range_image_probe(weights: Path, architecture: str) -> Any:
    """The image encoder quantised with full-range per-tensor int8 weights (the text recipe), to show why
    the image encoder uses 7-bit per-channel weights instead."""
    recipe = Int8Recipe("int8-fullrange-probe", per_channel=False, reduce_range=False)
    session = onnx_session(ensure_int8(onnx_paths(weights, architecture)[0], recipe), 0)
    pixels = preprocess_image(photos(1)[0], input_resolution(architecture))
    return session.run(None, {"image": pixels})[0][0]


def peak_rss(weights: Path, architecture: str, threads: int) -> dict[str, float]:
    """Peak RSS of a fresh process loading OCR + CLIP (default onnx-int8) like the service, each run once."""
    script = f"""
import json
from pathlib import Path
from PIL import Image
from ml_service.models.ocr import DEFAULT_OCR_MODEL, OcrModel, OcrOptions, shipped_models
from ml_service.models.clip.textual import ClipTextualModel
from ml_service.models.clip.visual import ClipVisualModel
w = Path({str(weights)!r}); a = {architecture!r}; t = {threads}
ocr = OcrModel(shipped_models()[DEFAULT_OCR_MODEL], threads=t); ocr.load()
v = ClipVisualModel(a + "__cn-clip", a, w, "onnx-int8", t); v.load()
x = ClipTextualModel(a + "__cn-clip", a, w, "onnx-int8", t); x.load()
img = Image.new("RGB", (1440, 1080), "white")
ocr.predict(img, OcrOptions()); v.predict(img); x.predict("海边日落")
# VmHWM, not getrusage: ru_maxrss survives fork+exec and would include the benchmark process's own peak
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({{"peak_rss_mb": round(int(hwm.split()[1]) / 1024, 1)}}))
"""
    # The child runs inline code, so it finds ml_service only if the directory holding it is on its path.
    source_root = str(Path(ml_service.__file__).resolve().parents[1])
    python_path = os.pathsep.join(p for p in (source_root, os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=python_path)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"memory probe failed: {out.stderr[-2000:]}")
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--architecture", default="ViT-B-16")
    parser.add_argument("--weights-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=12, help="Interleaved rounds.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        weights = args.weights_dir or Path(scratch)
        build_random_checkpoint(weights, args.architecture)
        images = photos(4)
        seed = seed_style(weights, args.architecture, args.threads)
        fp32 = service_path(weights, args.architecture, args.threads, "onnx")
        int8 = service_path(weights, args.architecture, args.threads, "onnx-int8")
        contenders = [seed, fp32, int8]
        measure(contenders, images, args.repeat)
        stats = {c.name: {kind: summary(c.samples[kind]) for kind in ("image", "text")} for c in contenders}

        def ratio(kind: str, figure: str, name: str) -> float:
            return round(stats[seed.name][kind][figure] / stats[name][kind][figure], 2)

        reference_image, reference_text = seed.image(images[0]), seed.text(QUERIES[2])
        result = {
            "benchmark": "ml_clip",
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "architecture": args.architecture,
            "threads": args.threads,
            "random_weights": args.weights_dir is None,
            "rounds": args.repeat,
            "seed_text_is_padded_to_52_tokens": True,
            **stats,
            "load_s_including_export_or_quantisation": {c.name: round(c.load_s, 1) for c in contenders},
            "speedup_vs_seed": {
                c.name: {
                    "image_wall": ratio("image", "p50_ms", c.name),
                    "image_cpu": ratio("image", "cpu_ms_p50", c.name),
                    "text_wall": ratio("text", "p50_ms", c.name),
                }
                for c in (fp32, int8)
            },
            "cosine_to_torch_fp32": {
                c.name: {
                    "image": round(cosine(reference_image, c.image(images[0])), 6),
                    "text": round(cosine(reference_text, c.text(QUERIES[2])), 6),
                }
                for c in (fp32, int8)
            }
            | {
                "image_full_range_int8_not_used": round(
                    cosine(reference_image, full_range_image_probe(weights, args.architecture)), 6
                )
            },
            "memory": peak_rss(weights, args.architecture, args.threads),
            "this_process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
