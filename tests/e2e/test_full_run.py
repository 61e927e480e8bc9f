"""The full end-to-end run against a real Immich source (opt-in: set IMMICH_SOURCE; slow; Node + Chromium).

IMMICH_SOURCE is a git URL or path holding Immich release tags; IMMICH_AIO_E2E_VERSION picks the release
(default v3.1.0) and IMMICH_AIO_E2E_CACHE where builds are cached between runs.
"""

import json
import os
from pathlib import Path

import pytest

from e2e.cli import default_cache
from e2e.run import RunOptions, run

SOURCE = os.environ.get("IMMICH_SOURCE")


@pytest.mark.immich_source
@pytest.mark.slow
@pytest.mark.timeout(7200)
@pytest.mark.skipif(
    not SOURCE, reason="set IMMICH_SOURCE to an Immich git source to run the end-to-end proof"
)
def test_full_end_to_end_run(tmp_path: Path) -> None:
    assert SOURCE is not None
    cache = Path(os.environ.get("IMMICH_AIO_E2E_CACHE") or default_cache())
    report = run(
        RunOptions(
            version=os.environ.get("IMMICH_AIO_E2E_VERSION", "v3.1.0"),
            source=SOURCE,
            report_dir=tmp_path / "report",
            cache=cache,
        )
    )
    summary = json.loads((tmp_path / "report" / "summary.json").read_text(encoding="utf-8"))
    failed = [c for c in summary["checks"] if c["outcome"] != "passed"]
    assert report.ok, f"end-to-end checks not passed: {json.dumps(failed, ensure_ascii=False, indent=1)}"
    assert {
        "01-login.png",
        "02-asset-viewer.png",
        "03-refresh-ocr-toast.png",
        "04-search-results.png",
    } <= set(summary["screenshots"])
    for name in summary["screenshots"]:
        assert (tmp_path / "report" / name).stat().st_size > 1000
