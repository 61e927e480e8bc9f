"""Routing to a real upstream HTTP server on loopback: byte-identical forwarding, failures, mixed requests."""

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from ml_service.config import Settings
from tests.ml.conftest import CLIP_NAME, Upstream, encode, free_port

FACES = json.dumps(
    {
        "facial-recognition": {
            "detection": {"modelName": "buffalo_l", "options": {"minScore": 0.7}},
            "recognition": {"modelName": "buffalo_l"},
        }
    }
)


def multipart(entries: str, image: bytes | None = None, text: str | None = None) -> tuple[bytes, str]:
    """Build a multipart body ourselves so the exact bytes sent are known."""
    boundary = "----immichaio7MA4YWxkTrZu0gW"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="entries"\r\n\r\n{entries}\r\n'.encode()]
    if image is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="blob"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + image
            + b"\r\n"
        )
    if text is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\n{text}\r\n'.encode()
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def photo() -> bytes:
    rng = np.random.default_rng(3)
    return encode(Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)))


def test_forwarding_is_byte_identical(
    serve: Callable[[Settings], AbstractContextManager[str]],
    make_settings: Callable[..., Settings],
    upstream: Upstream,
) -> None:
    upstream.body = b'{"facial-recognition":[{"score":0.9}],"imageHeight":64,"imageWidth":80}'
    with (
        serve(make_settings(upstream_url=upstream.url)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        body, content_type = multipart(FACES, image=photo())
        response = client.post("/predict", content=body, headers={"content-type": content_type})
        assert response.status_code == 200
        assert response.content == upstream.body
        assert upstream.received[-1] == {"path": "/predict", "body": body, "content-type": content_type}

        # a non-Chinese CLIP model goes upstream too, text payload included
        clip = json.dumps(
            {"clip": {"textual": {"modelName": "ViT-B-32__openai", "options": {"language": "en"}}}}
        )
        body, content_type = multipart(clip, text="a dog on the beach")
        upstream.body = b'{"clip":"[0.5,0.25]"}'
        response = client.post("/predict", content=body, headers={"content-type": content_type})
        assert response.content == upstream.body
        assert upstream.received[-1]["body"] == body

        # upstream errors are relayed as they are (Immich treats any non-2xx as failure)
        upstream.status, upstream.body = 500, b'{"detail":"boom"}'
        response = client.post("/predict", content=body, headers={"content-type": content_type})
        assert response.status_code == 500 and response.content == b'{"detail":"boom"}'
        assert client.get("/ping").text == "pong"


def test_upstream_down_gives_502_quickly(
    serve: Callable[[Settings], AbstractContextManager[str]], make_settings: Callable[..., Settings]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(upstream_url=dead, upstream_timeout_s=3.0, upstream_connect_timeout_s=2.0)
    with serve(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        body, content_type = multipart(FACES, image=photo())
        started = time.monotonic()
        response = client.post("/predict", content=body, headers={"content-type": content_type})
        assert response.status_code == 502
        assert time.monotonic() - started < 3.0
        assert dead in response.json()["error"]


def test_slow_upstream_gives_504_within_timeout(
    serve: Callable[[Settings], AbstractContextManager[str]],
    make_settings: Callable[..., Settings],
    upstream: Upstream,
) -> None:
    upstream.delay_s = 3.0
    with (
        serve(make_settings(upstream_url=upstream.url, upstream_timeout_s=0.5)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        body, content_type = multipart(FACES, image=photo())
        started = time.monotonic()
        response = client.post("/predict", content=body, headers={"content-type": content_type})
        assert response.status_code == 504
        assert time.monotonic() - started < 2.5


def test_mixed_request_serves_clip_locally_and_faces_upstream(
    serve: Callable[[Settings], AbstractContextManager[str]],
    make_settings: Callable[..., Settings],
    upstream: Upstream,
    clip_weights_dir: Path,
) -> None:
    upstream.body = b'{"facial-recognition":[],"imageHeight":64,"imageWidth":80}'
    entries = json.loads(FACES) | {"clip": {"visual": {"modelName": CLIP_NAME}}}
    settings = make_settings(upstream_url=upstream.url, clip_weights_dir=clip_weights_dir)
    with serve(settings) as url, httpx.Client(base_url=url, timeout=120) as client:
        image = photo()
        response = client.post(
            "/predict", data={"entries": json.dumps(entries)}, files={"image": ("blob", image)}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["facial-recognition"] == [] and body["imageWidth"] == 80 and body["imageHeight"] == 64
        assert len(json.loads(body["clip"])) == 512
        forwarded = upstream.received[-1]["body"]
        assert b"facial-recognition" in forwarded and b'"clip"' not in forwarded and image in forwarded


def test_no_upstream_names_what_is_missing(
    serve: Callable[[Settings], AbstractContextManager[str]], make_settings: Callable[..., Settings]
) -> None:
    with serve(make_settings()) as url, httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/predict", data={"entries": FACES}, files={"image": ("blob", photo())})
        assert response.status_code == 422
        assert "IMMICH_AIO_ML_UPSTREAM_URL" in response.json()["error"]
        clip = json.dumps({"clip": {"textual": {"modelName": "ViT-B-32__openai"}}})
        response = client.post("/predict", data={"entries": clip, "text": "dog"})
        assert response.status_code == 422
        assert "ViT-B-32__openai" in response.json()["error"]
