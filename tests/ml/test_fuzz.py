"""Fuzz: hundreds of malformed requests over a real socket never produce a 5xx and leave /ping healthy."""

import json
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx
from PIL import Image

from ml_service.config import Settings
from tests.ml.conftest import encode

TEMPLATES: list[dict[str, Any]] = [
    {
        "ocr": {
            "detection": {"modelName": "m", "options": {"minScore": 0.5, "maxResolution": 736}},
            "recognition": {"modelName": "m", "options": {"minScore": 0.8}},
        }
    },
    {"clip": {"visual": {"modelName": "ViT-B-16__cn-clip"}}},
    {"clip": {"textual": {"modelName": "ViT-B-32__openai", "options": {"language": "en"}}}},
    {
        "facial-recognition": {
            "detection": {"modelName": "buffalo_l", "options": {"minScore": 0.7}},
            "recognition": {"modelName": "buffalo_l"},
        }
    },
]
ODD_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    1e309,
    2**70,
    "",
    "☃",
    [],
    {},
    [1, "a"],
    {"modelName": None},
    "NaN",
    -0.0,
]


def mutate(value: Any, rng: random.Random) -> Any:
    """Replace, drop or retype one random node of a JSON structure."""
    if isinstance(value, dict) and value:
        key = rng.choice(list(value))
        copy = dict(value)
        action = rng.random()
        if action < 0.25:
            del copy[key]
        elif action < 0.4:
            copy[key + rng.choice(["_", "X", ""])] = rng.choice(ODD_VALUES)
        elif action < 0.7:
            copy[key] = mutate(copy[key], rng)
        else:
            copy[key] = rng.choice(ODD_VALUES)
        return copy
    return rng.choice(ODD_VALUES)


def broken_json(text: str, rng: random.Random) -> str:
    cut = rng.randrange(len(text))
    choice = rng.random()
    if choice < 0.4:
        return text[:cut]
    if choice < 0.7:
        return text[:cut] + rng.choice(['"', "{", "]", "\\", "\x00", "💥", "\ud800"]) + text[cut:]
    return "[" * rng.randrange(1, 5000)


def request_case(rng: random.Random, image: bytes) -> dict[str, Any]:
    entries_obj = mutate(rng.choice(TEMPLATES), rng)
    entries = (
        json.dumps(entries_obj) if rng.random() < 0.6 else broken_json(json.dumps(rng.choice(TEMPLATES)), rng)
    )
    kind = rng.random()
    if kind < 0.35:
        garbage = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 2000)))
        prefix = rng.choice([b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\0\0\0\0WEBP"])
        return {"data": {"entries": entries}, "files": {"image": ("b", prefix + garbage)}}
    if kind < 0.5:
        return {
            "data": {"entries": entries},
            "files": {"image": ("b", image[: rng.randrange(1, len(image))])},
        }
    if kind < 0.65:
        return {"data": {"entries": entries, "text": rng.choice(["", "猫", "x" * 5000, "\u0000"])}}
    if kind < 0.8:
        body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 3000)))
        content_type = rng.choice(
            ["multipart/form-data; boundary=abc", "multipart/form-data", "application/json", "text/plain", ""]
        )
        return {"content": body, "headers": {"content-type": content_type}}
    if kind < 0.9:
        return {"data": {"entries": entries, "image": "text-instead-of-file"}}
    return {
        "files": {"entries": ("e.json", entries.encode("utf-8", "surrogatepass")), "text": ("t", b"\xff\xfe")}
    }


def test_fuzz_predict_never_5xx(
    serve: Callable[[Settings], AbstractContextManager[str]], make_settings: Callable[..., Settings]
) -> None:
    rng = random.Random(1234)
    image = encode(Image.new("RGB", (64, 64), "white"))
    statuses: dict[int, int] = {}
    with serve(make_settings()) as url, httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(400):
            response = client.post("/predict", **request_case(rng, image))
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (response.status_code, response.text)
            assert "error" in response.json() or response.status_code == 200
        for path in ("/predict", "/nope", "/clip/txt", "/ocr"):
            assert client.get(path).status_code < 500
        assert client.post("/clip/txt", content=b"{not json").status_code == 400
        assert client.post("/clip/txt", json={"text": 5}).status_code == 422
        assert (
            client.post(
                "/ocr", content=b"x", headers={"content-type": "multipart/form-data; boundary=q"}
            ).status_code
            < 500
        )
        assert client.get("/ping").text == "pong"
    assert sum(v for k, v in statuses.items() if 400 <= k < 500) >= 300
