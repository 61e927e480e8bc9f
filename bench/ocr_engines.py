"""OCR engines side by side on the hard corpus: ml_service's PP-OCRv5 mobile and PP-OCRv6 tiny/small
against faster-paddle's PP-OCRv6 tiny/small, the fastest CPU OCR a user could pick instead.

ml_service is measured as Immich meets it: one server process (its defaults), the corpus posted over
HTTP with Immich's OCR request naming each model in turn. faster-paddle is measured in its own
process through its Python API (one engine, `ocr()` called from as many threads as the concurrency
level), so it pays no HTTP at all: a margin in its favour. Both read the same JPEG bytes; accuracy is
scored from the returned boxes rebuilt into reading order (testsupport.ocr_scoring), speed is images/s
and CPU seconds per image of each process tree at each concurrency level, memory the peak resident set.

faster-paddle is a peer, never a dependency: install it beside the project (`pip install
faster-paddle==1.0.4`) or name a folder holding it with --peer-path; without it only ml_service runs.

    python -m bench.ocr_engines [--per-class 12] [--levels 1,4] [--json out.json] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

from bench.ocr_side_by_side import ml_service, run_pass, score
from ml_service.models.ocr import PP_OCRV5_MOBILE, PP_OCRV6_SMALL, PP_OCRV6_TINY
from testsupport.bench_output import emit, machine
from testsupport.ocr_corpus import CLASSES, SIMPLIFIED, TRADITIONAL, CorpusImage, corpus

ML_SERVICE_MODELS = (PP_OCRV5_MOBILE, PP_OCRV6_TINY, PP_OCRV6_SMALL)
PEER_SIZES = ("tiny", "small")
REPO = Path(__file__).resolve().parents[1]


def measure_ml_service(images: list[CorpusImage], levels: list[int], log: Path) -> dict[str, Any]:
    """Every model through one running service; levels alternate the models' order against drift."""
    results: dict[str, Any] = {f"ml_service {model}": {"speed": {}} for model in ML_SERVICE_MODELS}
    with ml_service(log) as server:
        for model in ML_SERVICE_MODELS:
            asyncio.run(run_pass(server, images[:4], 1, model))  # loads the model, warms its sessions
        for round_no, level in enumerate(levels):
            order = ML_SERVICE_MODELS if round_no % 2 == 0 else ML_SERVICE_MODELS[::-1]
            for model in order:
                outcome = asyncio.run(run_pass(server, images, level, model))
                entry = results[f"ml_service {model}"]
                entry["speed"][f"concurrency_{level}"] = outcome.speed()
                if level == levels[0]:
                    entry["accuracy"] = score(images, outcome.answers)
        peak = round(server.peak_rss / 2**20, 1)
    for entry in results.values():
        entry["peak_rss_mb"] = peak  # one process serves all three models (all loaded at the end)
    return results


def _peer_boxes(result: dict[str, Any], width: int, height: int) -> dict[str, list[Any]]:
    """faster-paddle's axis-aligned bounds as the service's answer: texts and 4 corners normalised to 0..1."""
    texts: list[str] = []
    boxes: list[float] = []
    for bound in result["bounds"].values():
        (x1, y1), (x2, y2) = bound["topLeftCoord"], bound["bottomRightCoord"]
        texts.append(str(bound["text"]))
        boxes += [
            x1 / width,
            y1 / height,
            x2 / width,
            y1 / height,
            x2 / width,
            y2 / height,
            x1 / width,
            y2 / height,
        ]
    return {"text": texts, "box": boxes}


def peer_worker(size: str, per_class: int, seed: int, levels: list[int]) -> dict[str, Any]:
    """Runs inside the peer's own process: faster-paddle's engine on the corpus at each level."""
    faster_paddle = importlib.import_module("faster_paddle")
    images = corpus(per_class=per_class, seed=seed)
    sizes = [Image.open(io.BytesIO(image.jpeg)).size for image in images]
    engine = faster_paddle.OcrEngine(model_size=size)
    for image in images[:4]:
        engine.ocr(image.jpeg)
    speed: dict[str, dict[str, float]] = {}
    answers: list[dict[str, Any]] = []
    for level in levels:
        latencies: list[float] = []

        def read(index: int, latencies: list[float] = latencies) -> dict[str, Any]:
            started = time.perf_counter()
            result = engine.ocr(images[index].jpeg)
            latencies.append(time.perf_counter() - started)
            return _peer_boxes(result, *sizes[index])

        cpu, started = time.process_time(), time.perf_counter()
        with ThreadPoolExecutor(level) as pool:
            outcome = list(pool.map(read, range(len(images))))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        ordered = sorted(latencies)
        speed[f"concurrency_{level}"] = {
            "images_per_s": round(len(images) / wall, 3),
            "p50_ms": round(ordered[len(ordered) // 2] * 1000, 1),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1),
            "cpu_s_per_image": round(cpu / len(images), 3),
        }
        if not answers:
            answers = outcome
    hwm = next(
        line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:")
    )
    return {
        "speed": speed,
        "accuracy": score(images, answers),
        "peak_rss_mb": round(int(hwm.split()[1]) / 1024, 1),
        "engine": {str(k): v for k, v in engine.config.items()},
    }


def measure_peer(size: str, args: argparse.Namespace) -> dict[str, Any]:
    python_path = [
        str(REPO),
        *([str(args.peer_path)] if args.peer_path else []),
        os.environ.get("PYTHONPATH", ""),
    ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in python_path if p))
    command = [sys.executable, "-m", "bench.ocr_engines", "--peer-worker", size]
    command += ["--per-class", str(args.per_class), "--seed", str(args.seed), "--levels", args.levels]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"faster-paddle {size} failed: {done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def peer_available(peer_path: Path | None) -> bool:
    python_path = [str(peer_path)] if peer_path else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*python_path, os.environ.get("PYTHONPATH", "")]))
    probe = [sys.executable, "-c", "import faster_paddle"]
    return subprocess.run(probe, env=env, capture_output=True, check=False).returncode == 0


def markdown(engines: dict[str, Any], levels: list[int]) -> str:
    names = list(engines)
    out = [
        "| engine | 1−CER all | lines exact all | 1−CER Traditional | lines exact Traditional | "
        + " | ".join(f"images/s c{level} | CPU s/image c{level}" for level in levels)
        + " | peak RSS MB |"
    ]
    out.append("| --- | " + " | ".join("---:" for _ in range(4 + 2 * len(levels) + 1)) + " |")
    for name in names:
        accuracy, speed = engines[name]["accuracy"], engines[name]["speed"]
        cells = [
            f"{figures[key]:.4f}" if figures else "—"
            for figures in (accuracy["all"], accuracy.get(TRADITIONAL))
            for key in ("char_accuracy", "lines_exact")
        ]
        for level in levels:
            figures = speed[f"concurrency_{level}"]
            cells += [f"{figures['images_per_s']:g}", f"{figures['cpu_s_per_image']:g}"]
        cells.append(f"{engines[name]['peak_rss_mb']:g}")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("| class | " + " | ".join(f"{name} 1−CER / exact" for name in names) + " |")
    out.append("| --- | " + " | ".join("---:" for _ in names) + " |")
    for group in (*CLASSES, SIMPLIFIED, TRADITIONAL):
        if group not in engines[names[0]]["accuracy"]:
            continue
        figures = [engines[n]["accuracy"][group] for n in names]
        cells = [f"{f['char_accuracy']:.3f} / {f['lines_exact']:.3f}" for f in figures]
        out.append(f"| {group} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-class", type=int, default=12, help="corpus images per class")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--levels", default="1,4", help="concurrency levels, comma separated")
    parser.add_argument("--peer-path", type=Path, help="a folder holding faster-paddle, if not installed")
    parser.add_argument("--no-peer", action="store_true", help="measure ml_service alone")
    parser.add_argument("--json", type=Path, help="write the full result here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    parser.add_argument("--peer-worker", choices=PEER_SIZES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    if args.peer_worker:
        print(json.dumps(peer_worker(args.peer_worker, args.per_class, args.seed, levels)))
        return
    images = corpus(per_class=args.per_class, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="ocr-engines-") as scratch:
        engines = measure_ml_service(images, levels, Path(scratch) / "ml_service.log")
    if not args.no_peer and peer_available(args.peer_path):
        for size in PEER_SIZES:
            engines[f"faster-paddle {size}"] = measure_peer(size, args)
    elif not args.no_peer:
        print("faster-paddle is not importable: measuring ml_service alone", file=sys.stderr)
    result = {
        "benchmark": "ocr_engines",
        "corpus": {"images": len(images), "per_class": args.per_class, "seed": args.seed},
        **machine(),
        "engines": engines,
    }
    table = markdown(engines, levels)
    emit(result, table, args.json, args.markdown)


if __name__ == "__main__":
    main()
