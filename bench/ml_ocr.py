"""Benchmark OCR: raw RapidOCR calls vs requests through the service at concurrency 1/4/16; prints JSON.

Two raw baselines: rapidocr's own call with its defaults (it keeps a 1440x1080 image at full size), and the
service's pipeline in-process with Immich's options (shorter side scaled to 736): the overhead of the
service is measured against the latter, which does the same work.

Run from the repository root: ``python -m bench.ml_ocr [--images 16] [--levels 1,4,16]``.
"""

import argparse
import asyncio
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from rapidocr import RapidOCR  # type: ignore[import-untyped]

from ml_service.imaging import decode_image
from ml_service.models.ocr import DEFAULT_OCR_MODEL, OcrModel, OcrOptions, shipped_models

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
LINES = [
    "增值税专用发票",
    "购买方名称：北京某某科技有限公司",
    "金额 ¥1,280.00  税率 13%",
    "开票日期：2024年06月07日",
]
ENTRIES = json.dumps(
    {
        "ocr": {
            "detection": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.5, "maxResolution": 736}},
            "recognition": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.8}},
        }
    }
)


def render_images(count: int) -> list[bytes]:
    """1440x1080 JPEGs (Immich's preview size) with a few Chinese lines at varying places."""
    font = ImageFont.truetype(str(FONT), 44)
    images = []
    for index in range(count):
        image = Image.new("RGB", (1440, 1080), (250, 250, 245))
        pen = ImageDraw.Draw(image)
        for line_no, line in enumerate(LINES):
            pen.text((80 + 20 * index, 120 + 200 * line_no + 7 * index), line, font=font, fill=(20, 20, 20))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        images.append(buffer.getvalue())
    return images


def stats(latencies: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "images_per_s": round(len(latencies) / wall, 3),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1),
    }


def process_cpu_s(pid: int) -> float:
    """User+system CPU seconds of a process (Linux /proc), robust to other load on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def library_engine() -> Any:
    """rapidocr's own pipeline on the very files the service serves as its default model.

    Every file is named: rapidocr downloads any graph it is not given (its PP-OCRv4 defaults included),
    and no download is possible offline.
    """
    files = shipped_models()[DEFAULT_OCR_MODEL]
    params: dict[str, Any] = {
        "Det.model_path": str(files.detection),
        "Rec.model_path": str(files.recognition),
        "Rec.rec_keys_path": str(files.dictionary),
        "Global.log_level": "warning",
    }
    if files.classification is not None:
        params["Cls.model_path"] = str(files.classification)
    return RapidOCR(params=params)


def raw_rapidocr(images: list[bytes], total: int) -> dict[str, float]:
    """The library call alone, sequential (ONNX Runtime already uses every core)."""
    engine = library_engine()
    arrays = [np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[:, :, ::-1].copy() for data in images]
    engine(arrays[0])
    latencies = []
    started, started_cpu = time.perf_counter(), time.process_time()
    for index in range(total):
        t0 = time.perf_counter()
        engine(arrays[index % len(arrays)])
        latencies.append(time.perf_counter() - t0)
    figures = stats(latencies, time.perf_counter() - started)
    figures["cpu_s_per_image"] = round((time.process_time() - started_cpu) / total, 3)
    return figures


def raw_service_pipeline(images: list[bytes], total: int) -> dict[str, float]:
    """The service's own OCR pipeline (same models and options) called in-process, without HTTP."""
    model = OcrModel(shipped_models()[DEFAULT_OCR_MODEL])
    model.load()
    model.predict(decode_image(images[0], 10**9), OcrOptions())
    latencies = []
    started, started_cpu = time.perf_counter(), time.process_time()
    for index in range(total):
        t0 = time.perf_counter()
        model.predict(decode_image(images[index % len(images)], 10**9), OcrOptions())
        latencies.append(time.perf_counter() - t0)
    figures = stats(latencies, time.perf_counter() - started)
    figures["cpu_s_per_image"] = round((time.process_time() - started_cpu) / total, 3)
    return figures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def through_service(url: str, images: list[bytes], total: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    queue = list(range(total))
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def worker() -> None:
            while queue:
                index = queue.pop()
                t0 = time.perf_counter()
                response = await client.post(
                    "/predict",
                    data={"entries": ENTRIES},
                    files={"image": ("blob", images[index % len(images)])},
                )
                response.raise_for_status()
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return stats(latencies, time.perf_counter() - started)


def start_service(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "ml_service.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).text == "pong":
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("service did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=16, help="requests per concurrency level")
    parser.add_argument("--levels", default="1,4,16")
    args = parser.parse_args()
    images = render_images(8)
    library = raw_rapidocr(images, args.images)
    raw = raw_service_pipeline(images, args.images)
    port = free_port()
    # The service child imports ml_service by name, from wherever the benchmark was started.
    repo = str(Path(__file__).resolve().parents[1])
    python_path = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=python_path, IMMICH_AIO_ML_PRELOAD="ocr")
    env["IMMICH_AIO_ML_LOG_LEVEL"] = "warning"
    env["IMMICH_AIO_ML_QUEUE_TIMEOUT"] = "600"  # measure throughput, not the busy answer
    process = start_service(port, env)
    service: dict[str, Any] = {}
    try:
        url = f"http://127.0.0.1:{port}"
        asyncio.run(through_service(url, images, 4, 2))  # warm-up
        for level in (int(v) for v in args.levels.split(",")):
            cpu_before = process_cpu_s(process.pid)
            figures = asyncio.run(through_service(url, images, args.images, level))
            figures["cpu_s_per_image"] = round((process_cpu_s(process.pid) - cpu_before) / args.images, 3)
            service[f"concurrency_{level}"] = figures
    finally:
        process.terminate()
        process.wait(timeout=30)
    best = max(v["images_per_s"] for v in service.values())
    cpu_overhead = min(v["cpu_s_per_image"] for v in service.values()) / raw["cpu_s_per_image"] - 1
    result = {
        "benchmark": "ml_ocr",
        "image": "1440x1080 JPEG, 4 Chinese text lines",
        "cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "rapidocr_library_call_defaults": library,
        "raw_pipeline_in_process": raw,
        "service": service,
        "service_overhead_vs_raw_pipeline_at_saturation_pct": round(
            (1 - best / raw["images_per_s"]) * 100, 1
        ),
        "service_cpu_overhead_vs_raw_pipeline_pct": round(cpu_overhead * 100, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
