"""Placed templates name Immich's enum members as each release spells them."""

from pathlib import Path

from patcher import manifest, placement


def test_longer_names_are_replaced_before_the_names_they_start_with() -> None:
    names = {"JobName.Ocr": "JobName.OCR", "JobName.OcrQueueAll": "JobName.QUEUE_OCR"}
    text = "JobName.OcrQueueAll, JobName.Ocr, JobName.OcrX"
    assert placement.release_names(text, names) == "JobName.QUEUE_OCR, JobName.OCR, JobName.OCRX"
    assert placement.release_names(text, {}) == text


def test_the_refresh_job_spec_follows_the_release(tmp_path: Path) -> None:
    root = manifest.repository_root()
    loaded = manifest.load()
    rendered = {}
    for tag in ("v1.134.0", "v3.1.0"):
        series = loaded.series_for(tag)
        assert series is not None
        (spec,) = [p for p in series.placements(root) if p.dest.endswith("refresh-jobs.service.spec.ts")]
        rendered[tag] = placement.render(spec, root, placement.template_context(tag, series)).decode()
    old = rendered["v1.134.0"]
    assert "JobName.SMART_SEARCH" in old and "JobName.SmartSearch" not in old
    assert "JobName.SmartSearch" in rendered["v3.1.0"]
    assert rendered["v3.1.0"].startswith("import { BadRequestException }")
    assert rendered["v3.1.0"].endswith("});\n") and "{%" not in rendered["v3.1.0"]
