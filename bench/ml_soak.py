"""Soak: ml_service under mixed OCR, CLIP and malformed requests for a long run; prints JSON figures.

Usage: python -m bench.ml_soak [--minutes 30] [--concurrency 16] [--weights-dir DIR]

Starts `immich-aio serve` (Chinese-CLIP of the real architecture with random weights unless DIR holds a
checkpoint), then `concurrency` clients send, for `minutes`: CLIP text (Immich's textual request), CLIP
image, OCR (Immich's v2.2+ OCR request), and malformed requests (bad entries JSON, unknown task, truncated
image, no image, an image too large to decode). Valid requests must answer 200, malformed ones 4xx; no 5xx,
no crash. The service's RSS is sampled every 10 s: the figures give its start, end and peak.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw, ImageFont

from e2e.clip_weights import ensure_random_checkpoint
from e2e.ports import PortAllocator
from ml_service.models.clip.names import DEFAULT_CN_CLIP_MODEL

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
OCR = {
    "ocr": {
        "detection": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.5, "maxResolution": 736}},
        "recognition": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.8}},
    }
}
CLIP_TEXT = {"clip": {"textual": {"modelName": DEFAULT_CN_CLIP_MODEL, "options": {"language": "zh"}}}}
CLIP_IMAGE = {"clip": {"visual": {"modelName": DEFAULT_CN_CLIP_MODEL}}}
QUERIES = ("海边日落", "发票", "一只猫在沙发上", "停车场入口", "红色的汽车", "生日蛋糕", "地铁站", "雪山")


def photo(seed: int) -> bytes:
    """A 1440x1080 JPEG with a few Chinese lines, as Immich sends its preview."""
    rng = random.Random(seed)
    image = Image.new(
        "RGB", (1440, 1080), (rng.randint(200, 255), rng.randint(200, 255), rng.randint(200, 255))
    )
    pen = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 48)
    for line in range(3):
        pen.text(
            (100 + 30 * line, 150 + 250 * line),
            rng.choice(QUERIES) + f" {seed}",
            font=font,
            fill=(20, 20, 20),
        )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def malformed(kind: int, image: bytes) -> dict[str, Any]:
    """One of five malformed requests; each must be answered 4xx."""
    if kind == 0:
        return {"data": {"entries": "{not json"}, "files": {"image": ("blob", image)}}
    if kind == 1:
        return {"data": {"entries": json.dumps({"no-such-task": {}})}, "files": {"image": ("blob", image)}}
    if kind == 2:
        return {"data": {"entries": json.dumps(OCR)}, "files": {"image": ("blob", image[: len(image) // 3])}}
    if kind == 3:
        return {"data": {"entries": json.dumps(CLIP_IMAGE)}}
    return {"data": {"entries": json.dumps(OCR)}, "files": {"image": ("blob", b"GIF89a" + os.urandom(64))}}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def soak(url: str, pid: int, seconds: float, concurrency: int, images: list[bytes]) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    latencies: dict[str, list[float]] = {"clip-text": [], "clip-image": [], "ocr": []}
    rss: list[tuple[float, int]] = []
    deadline = time.monotonic() + seconds
    rng = random.Random(7)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            pick = rng.random()
            image = rng.choice(images)
            request: dict[str, Any]
            if pick < 0.4:
                kind, request = (
                    "clip-text",
                    {"data": {"entries": json.dumps(CLIP_TEXT), "text": rng.choice(QUERIES)}},
                )
            elif pick < 0.6:
                kind, request = (
                    "clip-image",
                    {"data": {"entries": json.dumps(CLIP_IMAGE)}, "files": {"image": ("b", image)}},
                )
            elif pick < 0.9:
                kind, request = (
                    "ocr",
                    {"data": {"entries": json.dumps(OCR)}, "files": {"image": ("b", image)}},
                )
            else:
                kind, request = "malformed", malformed(rng.randrange(5), image)
            started = time.perf_counter()
            try:
                response = await client.post("/predict", **request)
            except httpx.HTTPError as error:
                outcomes[f"{kind}: {type(error).__name__}"] += 1
                continue
            status = response.status_code
            if kind == "malformed":
                outcomes["malformed 4xx" if 400 <= status < 500 else f"malformed answered {status}"] += 1
            elif status == 200:
                outcomes[f"{kind} 200"] += 1
                latencies[kind].append(time.perf_counter() - started)
            else:
                outcomes[f"{kind} answered {status}"] += 1

    async def sample_rss() -> None:
        started = time.monotonic()
        while time.monotonic() < deadline:
            rss.append((round(time.monotonic() - started), rss_kib(pid)))
            await asyncio.sleep(10)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        await asyncio.gather(sample_rss(), *(client_loop(client) for _ in range(concurrency)))
    rss.append((round(seconds), rss_kib(pid)))

    def percentile(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else 0.0

    return {
        "outcomes": dict(sorted(outcomes.items())),
        "latency_ms": {
            kind: {
                "count": len(v),
                "p50": round(1000 * statistics.median(v), 1) if v else 0.0,
                "p95": percentile(v, 0.95),
            }
            for kind, v in latencies.items()
        },
        "rss_mib": {
            "start": round(rss[0][1] / 1024, 1),
            "end": round(rss[-1][1] / 1024, 1),
            "peak": round(max(v for _, v in rss) / 1024, 1),
            "curve": [(t, round(v / 1024, 1)) for t, v in rss[:: max(1, len(rss) // 12)]],
        },
        "five_xx": sum(n for key, n in outcomes.items() if " 5" in key),
        "service_alive": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--weights-dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        weights = args.weights_dir or Path(scratch) / "cn-clip"
        ensure_random_checkpoint(weights)
        figures = run_soak(weights, args.minutes, args.concurrency, Path(scratch) / "service.log")
    print(json.dumps(figures, ensure_ascii=False, indent=1))


def run_soak(weights: Path, minutes: float, concurrency: int, log: Path) -> dict[str, Any]:
    """Start the service on the checkpoints in `weights`, soak it, stop it; its log goes to `log`."""
    (port,) = PortAllocator().take_many(1)
    env = dict(
        os.environ,
        IMMICH_AIO_ML_CLIP_WEIGHTS_DIR=str(weights),
        IMMICH_AIO_ML_PRELOAD=f"ocr,{DEFAULT_CN_CLIP_MODEL}",
        IMMICH_AIO_ML_LOG_LEVEL="warning",
    )
    command = [sys.executable, "-m", "immich_aio", "serve", "--host", "127.0.0.1", "--port", str(port)]
    # A file, not a pipe nobody reads: a long run's log would fill the pipe and stall the service.
    with log.open("wb") as sink:
        service = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while True:
            if service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start: {log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{url}/ping", timeout=2).text == "pong":
                    break
            except httpx.HTTPError:
                time.sleep(1)
        images = [photo(seed) for seed in range(12)]
        figures = asyncio.run(soak(url, service.pid, minutes * 60, concurrency, images))
        figures["service_alive"] = service.poll() is None
        figures.update({"minutes": minutes, "concurrency": concurrency})
        return figures
    finally:
        service.terminate()
        service.wait(timeout=30)


if __name__ == "__main__":
    main()
