"""Report writing: outcomes, failure capture, JSON and markdown files."""

import json
from pathlib import Path

import pytest

from e2e.report import Outcome, Report


def test_empty_report_is_not_ok(tmp_path: Path) -> None:
    report = Report(tmp_path / "r")
    assert not report.ok
    assert report.exit_code == 1


def test_passing_and_failing_checks_are_recorded_and_written(tmp_path: Path) -> None:
    report = Report(tmp_path)
    with report.check("first") as result:
        result.detail = "3 assets"
    with pytest.raises(ValueError), report.check("second"):
        raise ValueError("boom 发票")
    with report.check("third", fatal=False):
        raise RuntimeError("kept going")
    report.timing("upload", 1.23456)
    report.add_screenshot("01-login.png")
    report.add_screenshot("01-login.png")
    report.write()

    assert [c.outcome for c in report.checks] == [Outcome.PASSED, Outcome.FAILED, Outcome.FAILED]
    assert report.exit_code == 1
    data = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert data["ok"] is False
    assert data["checks"][0] == {
        "name": "first",
        "outcome": "passed",
        "seconds": data["checks"][0]["seconds"],
        "detail": "3 assets",
    }
    assert "ValueError: boom 发票" in data["checks"][1]["detail"]
    assert data["timings"] == {"upload": 1.235}
    assert data["screenshots"] == ["01-login.png"]
    markdown = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert markdown.startswith("# immich-aio e2e: FAILED")
    assert "| second | failed |" in markdown
    assert "01-login.png" in markdown
    assert "boom 发票" in (tmp_path / "errors.log").read_text(encoding="utf-8")


def test_not_run_step_fails_the_run(tmp_path: Path) -> None:
    report = Report(tmp_path)
    with report.check("ok"):
        pass
    assert report.ok
    report.not_run("browser", "chromium missing")
    assert not report.ok
    assert "| browser | not-run |" in report.to_markdown()


def test_markdown_escapes_table_breakers(tmp_path: Path) -> None:
    report = Report(tmp_path)
    report.record("pipes", Outcome.FAILED, detail="a|b\nc")
    assert "a\\|b c" in report.to_markdown()
