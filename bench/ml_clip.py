"""Benchmark Chinese-CLIP: seed-style torch eager batch 1 vs the service's ONNX path; prints JSON figures.

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
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
    import torch
    from cn_clip.clip.utils import _MODEL_INFO, create_model

    from ml_service.models.clip import checkpoint_path

    path = checkpoint_path(directory, architecture)
    if path.is_file():
        return
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        model = create_model(_MODEL_INFO[architecture]["struct"])
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 0, "step": 0, "name": "random", "state_dict": state}, path)


def timings(function: Callable[[], Any], repeat: int, warmup: int = 2) -> tuple[list[float], list[float]]:
    """Wall-clock and process-CPU seconds per call (CPU time stays meaningful on a busy shared machine)."""
    for _ in range(warmup):
        function()
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return wall, cpu


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


def seed_style(
    weights: Path, architecture: str, threads: int, images: list[Image.Image], repeat: int
) -> dict[str, Any]:
    """How the seed served it: cn_clip's loader, torch eager, batch 1, texts padded to 52 tokens."""
    import torch
    from cn_clip.clip import load_from_name, tokenize

    torch.set_num_threads(threads)
    with contextlib.redirect_stdout(io.StringIO()):
        model, transform = load_from_name(architecture, device="cpu", download_root=str(weights))
    model.eval()
    outputs: dict[str, Any] = {}

    def image_once(index: list[int] = [0]) -> None:  # noqa: B006 - a tiny cycling counter
        image = images[index[0] % len(images)]
        index[0] += 1
        with torch.no_grad():
            outputs["image"] = model.encode_image(transform(image).unsqueeze(0))[0].numpy()

    def text_once(index: list[int] = [0]) -> None:  # noqa: B006
        query = QUERIES[index[0] % len(QUERIES)]
        index[0] += 1
        with torch.no_grad():
            outputs["text"] = model.encode_text(tokenize([query]))[0].numpy()

    image_stats = summary(timings(image_once, repeat))
    text_stats = summary(timings(text_once, repeat * 3))
    with torch.no_grad():
        reference_image = model.encode_image(transform(images[0]).unsqueeze(0))[0].numpy()
        reference_text = model.encode_text(tokenize([QUERIES[2]]))[0].numpy()
    return {"image": image_stats, "text_padded_52": text_stats, "_ref": (reference_image, reference_text)}


def onnx_path(
    weights: Path,
    architecture: str,
    threads: int,
    images: list[Image.Image],
    repeat: int,
    backend: str = "onnx",
) -> dict[str, Any]:
    from ml_service.models.clip import ClipTextualModel, ClipVisualModel

    name = f"{architecture}__cn-clip"
    visual = ClipVisualModel(name, architecture, weights, backend, threads)
    textual = ClipTextualModel(name, architecture, weights, backend, threads)
    started = time.perf_counter()
    visual.load()
    textual.load()
    load_s = time.perf_counter() - started
    counter = iter(range(10**9))
    image_stats = summary(timings(lambda: visual.predict(images[next(counter) % len(images)]), repeat))
    text_stats = summary(timings(lambda: textual.predict(QUERIES[next(counter) % len(QUERIES)]), repeat * 3))
    return {
        "image": image_stats,
        "text_unpadded": text_stats,
        "load_s_including_export_or_quantisation": round(load_s, 1),
        "_ref": (visual.predict(images[0]), textual.predict(QUERIES[2])),
    }


def quantised_image_probe(weights: Path, architecture: str) -> Any:
    """The image encoder quantised to int8 the same way, to report why the service keeps it fp32."""
    from ml_service.models.clip import (
        ensure_int8,
        input_resolution,
        onnx_paths,
        onnx_session,
        preprocess_image,
    )

    session = onnx_session(ensure_int8(onnx_paths(weights, architecture)[0]), 0)
    pixels = preprocess_image(photos(1)[0], input_resolution(architecture))
    return session.run(None, {"image": pixels})[0][0]


def peak_rss(weights: Path, architecture: str, threads: int) -> dict[str, float]:
    """Peak RSS of a fresh process loading OCR + CLIP (ONNX) the way the service does, running each once."""
    script = f"""
import resource, json
from pathlib import Path
from PIL import Image
from ml_service.models.ocr import OcrModel, OcrOptions
from ml_service.models.clip import ClipTextualModel, ClipVisualModel
w = Path({str(weights)!r}); a = {architecture!r}; t = {threads}
ocr = OcrModel(threads=t); ocr.load()
v = ClipVisualModel(a + "__cn-clip", a, w, "onnx", t); v.load()
x = ClipTextualModel(a + "__cn-clip", a, w, "onnx", t); x.load()
img = Image.new("RGB", (1440, 1080), "white")
ocr.predict(img, OcrOptions()); v.predict(img); x.predict("海边日落")
print(json.dumps({{"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"memory probe failed: {out.stderr[-2000:]}")
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--architecture", default="ViT-B-16")
    parser.add_argument("--weights-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        weights = args.weights_dir or Path(scratch)
        build_random_checkpoint(weights, args.architecture)
        images = photos(4)
        seed = seed_style(weights, args.architecture, args.threads, images, args.repeat)
        fast = onnx_path(weights, args.architecture, args.threads, images, args.repeat)
        int8 = onnx_path(weights, args.architecture, args.threads, images, args.repeat, "onnx-int8")
        seed_image, seed_text = seed.pop("_ref")
        fast_image, fast_text = fast.pop("_ref")
        int8_image, int8_text = int8.pop("_ref")
        result = {
            "benchmark": "ml_clip",
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "architecture": args.architecture,
            "threads": args.threads,
            "random_weights": args.weights_dir is None,
            "torch_eager_seed_style": seed,
            "onnx_service_path": fast,
            "onnx_int8_path": int8,
            "image_speedup_vs_seed": round(seed["image"]["p50_ms"] / fast["image"]["p50_ms"], 2),
            "text_speedup_vs_seed": round(
                seed["text_padded_52"]["p50_ms"] / fast["text_unpadded"]["p50_ms"], 2
            ),
            "image_cpu_speedup_vs_seed": round(seed["image"]["cpu_ms_p50"] / fast["image"]["cpu_ms_p50"], 2),
            "text_cpu_speedup_vs_seed": round(
                seed["text_padded_52"]["cpu_ms_p50"] / fast["text_unpadded"]["cpu_ms_p50"], 2
            ),
            "cosine_onnx_vs_torch_fp32": {
                "image": round(cosine(seed_image, fast_image), 6),
                "text": round(cosine(seed_text, fast_text), 6),
            },
            "cosine_onnx_int8_vs_torch_fp32": {
                "image_int8_not_used": round(
                    cosine(seed_image, quantised_image_probe(weights, args.architecture)), 6
                ),
                "image_served_fp32": round(cosine(seed_image, int8_image), 6),
                "text": round(cosine(seed_text, int8_text), 6),
            },
            "memory": peak_rss(weights, args.architecture, args.threads),
            "this_process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
