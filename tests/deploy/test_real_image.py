"""A real build of the ML image with buildah, then the image itself serving OCR and CLIP over HTTP.

Opt-in (IMMICH_AIO_REAL_IMAGE=1): it debootstraps a Debian base once (no registry is reachable here, so
debian:bookworm-slim is a stand-in made from Debian's archive) and installs the product's wheel from PyPI
into the image, minutes of work. The figures it prints are recorded in docs/deploy.md.
"""

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw, ImageFont

from e2e.clip_weights import ensure_random_checkpoint
from patcher.node import cache_root
from testsupport.standin_base import ensure_standin_base

ROOT = Path(__file__).resolve().parents[2]
TAG = "localhost/immich-aio-test"
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")

pytestmark = [
    pytest.mark.real_image,
    pytest.mark.skipif(not os.environ.get("IMMICH_AIO_REAL_IMAGE"), reason="set IMMICH_AIO_REAL_IMAGE=1"),
]


def buildah_env() -> dict[str, str]:
    # Without a Docker engine or overlay mounts, buildah needs the vfs driver and chroot isolation here.
    env = dict(os.environ)
    env.setdefault("STORAGE_DRIVER", "vfs")
    env.setdefault("BUILDAH_ISOLATION", "chroot")
    return env


def buildah(*args: str) -> str:
    result = subprocess.run(["buildah", *args], capture_output=True, text=True, env=buildah_env(), check=True)
    return result.stdout.strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def built_image() -> str:
    if shutil.which("buildah") is None or shutil.which("debootstrap") is None:
        pytest.fail("the real image build needs buildah and debootstrap (apt install buildah debootstrap)")
    os.environ.update(
        {k: v for k, v in buildah_env().items() if k in ("STORAGE_DRIVER", "BUILDAH_ISOLATION")}
    )
    ensure_standin_base("docker.io/library/debian:bookworm-slim", cache_root() / "images" / "bases")
    weights = cache_root() / "e2e" / "cn-clip"
    ensure_random_checkpoint(weights)
    started = time.monotonic()
    command = [sys.executable, "-m", "immich_aio", "build", "--immich-version", "v3.1.0"]
    command += ["--images", "ml", "--builder", "buildah", "--tag", "localhost"]
    env = {**buildah_env(), "IMMICH_AIO_ML_CLIP_WEIGHTS_DIR": str(weights)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    tag = next(line.split()[-1] for line in result.stderr.splitlines() if line.startswith("built "))
    print(f"\nbuilt {tag} in {time.monotonic() - started:.0f} s; image size {image_size(tag)}")
    return tag


def image_size(tag: str) -> str:
    return buildah("images", "--format", "{{.Size}}", tag)


@pytest.fixture(scope="module")
def container(built_image: str) -> Iterator[str]:
    name = buildah("from", "--pull-never", built_image)
    yield name
    subprocess.run(["buildah", "rm", name], capture_output=True, env=buildah_env(), check=False)


@pytest.fixture(scope="module")
def served(container: str) -> Iterator[str]:
    port = free_port()
    command = [
        "buildah",
        "run",
        "--env",
        f"IMMICH_AIO_ML_PORT={port}",
        container,
        "--",
        "immich-aio",
        "serve",
    ]
    started = time.monotonic()
    process = subprocess.Popen(command, env=buildah_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            assert process.poll() is None, (process.stdout.read() if process.stdout else b"").decode()[-4000:]
            assert time.monotonic() - started < 180, "the image's service did not answer /ping in 3 minutes"
            try:
                if httpx.get(f"{url}/ping", timeout=2).text == "pong":
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        print(f"\nthe image answered /ping {time.monotonic() - started:.1f} s after `buildah run`")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def rendered(text: str) -> bytes:
    image = Image.new("RGB", (900, 240), "white")
    ImageDraw.Draw(image).text((40, 80), text, font=ImageFont.truetype(str(FONT), 64), fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_the_image_carries_no_torch_and_serves_the_exported_graphs(container: str) -> None:
    probe = "import importlib.util as u, sys; sys.exit(0 if u.find_spec('torch') is None else 1)"
    buildah("run", container, "--", "python3", "-c", probe)
    # OpenCV without libGL: the headless build, and it imports
    headless = "import cv2, importlib.metadata as m; print(m.version('opencv-python-headless'))"
    assert buildah("run", container, "--", "python3", "-c", headless)
    graphs = buildah("run", container, "--", "ls", "/models/cn-clip/onnx").split()
    assert "clip_cn_vit-b-16.shipped.json" in graphs and "clip_cn_vit-b-16.textual.int8.onnx" in graphs
    assert "clip_cn_vit-b-16.pt" not in buildah("run", container, "--", "ls", "-R", "/models/cn-clip")


def test_the_image_reads_chinese_text_and_encodes_a_query(served: str) -> None:
    ocr = {"detection": {"modelName": "PP-OCRv5_mobile"}, "recognition": {"modelName": "PP-OCRv5_mobile"}}
    started = time.monotonic()
    with httpx.Client(base_url=served, timeout=180) as client:
        response = client.post(
            "/predict",
            data={"entries": json.dumps({"ocr": ocr})},
            files={"image": ("blob", rendered("增值税专用发票"))},
        )
        assert response.status_code == 200, response.text
        assert "".join(response.json()["ocr"]["text"]) == "增值税专用发票"
        first_ocr = time.monotonic() - started
        started = time.monotonic()
        textual = {"clip": {"textual": {"modelName": "ViT-B-16__cn-clip"}}}
        response = client.post("/predict", data={"entries": json.dumps(textual), "text": "海边的日落"})
        assert response.status_code == 200, response.text
        embedding = json.loads(response.json()["clip"])
        assert len(embedding) == 512 and abs(sum(v * v for v in embedding) - 1) < 1e-3
        first_clip = time.monotonic() - started
        status = client.get("/").json()
        metrics = client.get("/metrics").text
    rss = next(
        line.split()[-1] for line in metrics.splitlines() if line.startswith("process_resident_memory_bytes")
    )
    print(
        f"\nfirst OCR {first_ocr:.1f} s, first CLIP text {first_clip:.1f} s, RSS {float(rss) / 2**20:.0f} MiB"
    )
    assert "onnx-int8" in json.dumps(status)
