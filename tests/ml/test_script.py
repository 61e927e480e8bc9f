"""Traditional CLIP queries read as Simplified: one embedding for either script, unless turned off."""

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from ml_service.config import Settings
from ml_service.models.clip.script import to_simplified
from tests.ml.conftest import CLIP_NAME


@pytest.mark.parametrize(
    ("query", "conversion", "expected"),
    [
        ("臺北車站", "t2s", "台北车站"),
        ("發票", "t2s", "发票"),
        ("裏面的綫", "t2s", "里面的线"),
        ("計程車", "t2s", "计程车"),
        ("計程車", "tw2sp", "出租车"),
        ("海边的日落", "t2s", "海边的日落"),
        ("臺北車站", "off", "臺北車站"),
        ("Peking Duck ¥35", "t2s", "Peking Duck ¥35"),
        ("", "t2s", ""),
    ],
)
def test_queries_are_converted_as_the_setting_says(query: str, conversion: str, expected: str) -> None:
    assert to_simplified(query, conversion) == expected  # type: ignore[arg-type]


def test_odd_text_never_raises() -> None:
    for text in (
        "\x00臺",
        "𠀀𪚥",
        "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
        "👍臺",
    ):
        assert isinstance(to_simplified(text, "tw2sp"), str)


def embeddings(
    client_of: Callable[[Settings], httpx.AsyncClient],
    settings: Settings,
    *texts: str,
    conversion: str | None = None,
) -> list[np.ndarray]:
    options = {} if conversion is None else {"options": {"textConversion": conversion}}
    entries = json.dumps({"clip": {"textual": {"modelName": CLIP_NAME, **options}}})

    async def ask() -> list[np.ndarray]:
        async with client_of(settings) as client:
            vectors = []
            for text in texts:
                response = await client.post("/predict", data={"entries": entries, "text": text})
                assert response.status_code == 200, response.text
                vectors.append(np.asarray(json.loads(response.json()["clip"])))
            return vectors

    return asyncio.run(ask())


def test_a_traditional_query_encodes_as_its_simplified_form(
    make_settings: Callable[..., Settings],
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    clip_weights_dir: Path,
) -> None:
    on = make_settings(clip_weights_dir=clip_weights_dir)
    traditional, simplified = embeddings(asgi_client, on, "臺北車站的發票", "台北车站的发票")
    assert float(traditional @ simplified) > 0.99999
    off = make_settings(clip_weights_dir=clip_weights_dir, clip_text_conversion="off")
    traditional, simplified = embeddings(asgi_client, off, "臺北車站的發票", "台北车站的发票")
    assert float(traditional @ simplified) < 0.999, "without the conversion the scripts encode differently"


def test_the_request_option_overrides_the_setting(
    make_settings: Callable[..., Settings],
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    clip_weights_dir: Path,
) -> None:
    on = make_settings(clip_weights_dir=clip_weights_dir)
    pair = ("臺北車站的發票", "台北车站的发票")
    traditional, simplified = embeddings(asgi_client, on, *pair, conversion="off")
    assert float(traditional @ simplified) < 0.999, "the request turned the conversion off"
    off = make_settings(clip_weights_dir=clip_weights_dir, clip_text_conversion="off")
    traditional, simplified = embeddings(asgi_client, off, *pair, conversion="tw2sp")
    assert float(traditional @ simplified) > 0.99999, "the request turned the conversion on"


def test_an_unknown_request_conversion_is_a_422_naming_the_choices(
    make_settings: Callable[..., Settings],
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    clip_weights_dir: Path,
) -> None:
    settings = make_settings(clip_weights_dir=clip_weights_dir)

    async def ask(conversion: object) -> httpx.Response:
        entries = {"clip": {"textual": {"modelName": CLIP_NAME, "options": {"textConversion": conversion}}}}
        async with asgi_client(settings) as client:
            return await client.post("/predict", data={"entries": json.dumps(entries), "text": "發票"})

    for bad in ("s2t", 1, True, ["t2s"]):
        response = asyncio.run(ask(bad))
        assert response.status_code == 422, response.text
        assert "t2s, tw2sp, hk2s, off" in response.json()["error"]


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMMICH_AIO_ML_CLIP_TEXT_CONVERSION", " TW2SP ")
    assert Settings().clip_text_conversion == "tw2sp"
    monkeypatch.setenv("IMMICH_AIO_ML_CLIP_TEXT_CONVERSION", "s2t")
    with pytest.raises(ValueError, match="t2s"):
        Settings()


def test_metrics_count_each_conversion_and_where_it_came_from(
    make_settings: Callable[..., Settings],
    asgi_client: Callable[[Settings], httpx.AsyncClient],
    clip_weights_dir: Path,
) -> None:
    settings = make_settings(clip_weights_dir=clip_weights_dir, clip_text_conversion="hk2s")

    async def ask() -> str:
        async with asgi_client(settings) as client:
            for options in ({"textConversion": "off"}, {"textConversion": "off"}, {}):
                entries = {"clip": {"textual": {"modelName": CLIP_NAME, "options": options}}}
                form = {"entries": json.dumps(entries), "text": "發票"}
                response = await client.post("/predict", data=form)
                assert response.status_code == 200, response.text
            return (await client.get("/metrics")).text

    text = asyncio.run(ask())
    assert 'immich_aio_ml_text_conversions_total{conversion="off",source="request"} 2.0' in text
    assert 'immich_aio_ml_text_conversions_total{conversion="hk2s",source="setting"} 1.0' in text
    assert 'conversion="t2s"' not in text
