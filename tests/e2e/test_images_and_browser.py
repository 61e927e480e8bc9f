"""Test images render real text; the browser driver's answer is parsed strictly."""

import io

import pytest
from PIL import Image

from e2e import browser, images


def test_every_scene_renders_a_jpeg_of_its_size() -> None:
    names = set()
    for scene in images.SCENES:
        data = images.render(scene)
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG"
            assert image.size == scene.size
        names.add(scene.name)
    assert len(names) == len(images.SCENES)


def test_renders_are_deterministic_and_distinct() -> None:
    first = [images.render(scene) for scene in images.SCENES[:3]]
    assert first == [images.render(scene) for scene in images.SCENES[:3]]
    assert len(set(first)) == 3  # Immich would reject identical files as duplicates


def test_scenes_cover_the_roles_the_checks_need() -> None:
    roles = {scene.role for scene in images.SCENES}
    assert {"timeline", "locked", "trash"} <= roles
    assert [s.name for s in images.scenes_containing("发票")] == [
        "receipt-invoice-title",
        "receipt-restaurant",
    ]
    hidden = images.scenes_containing("发票", roles=("locked", "trash"))
    assert {s.role for s in hidden} == {"locked", "trash"}


def test_browser_output_is_parsed() -> None:
    line = (
        '{"steps":[{"name":"browser: log in","ok":true,"seconds":1.5,'
        '"screenshot":"01-login.png","detail":"ok"}],'
        '"searchResultIds":["a","b"],"toastText":"Refreshing OCR"}'
    )
    result = browser.parse_output("noise from node\n" + line + "\n")
    assert result.steps[0] == browser.BrowserStep("browser: log in", True, 1.5, "01-login.png", "ok")
    assert result.search_result_ids == ["a", "b"]
    assert result.toast_text == "Refreshing OCR"


@pytest.mark.parametrize("stdout", ["", "\n\n", "not json at all"])
def test_bad_browser_output_is_an_error(stdout: str) -> None:
    with pytest.raises(browser.BrowserError):
        browser.parse_output(stdout)


def test_chromium_flags_keep_the_browser_offline_and_headless() -> None:
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-component-update",
    ):
        assert flag in browser.CHROMIUM_FLAGS
