"""The run report: each check's outcome, timings, screenshots; written as summary.json and summary.md."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not-run"


@dataclass
class CheckResult:
    """One named step or assertion of the run."""

    name: str
    outcome: Outcome
    seconds: float
    detail: str = ""


@dataclass
class Report:
    """Everything a run learned; `ok` only when at least one check ran and none failed or was left out."""

    directory: Path
    meta: dict[str, Any] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    screenshots: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.outcome == Outcome.PASSED for check in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def record(self, name: str, outcome: Outcome, seconds: float = 0.0, detail: str = "") -> CheckResult:
        result = CheckResult(name, outcome, round(seconds, 3), detail)
        self.checks.append(result)
        return result

    def not_run(self, name: str, reason: str) -> None:
        """A step that could not run (a missing prerequisite); it makes the run fail, never pass."""
        self.record(name, Outcome.NOT_RUN, detail=reason)

    @contextmanager
    def check(self, name: str, fatal: bool = True) -> Iterator[CheckResult]:
        """Time a block as one check: passed if it returns, failed (with the error) if it raises.

        With fatal=False the error is recorded and swallowed so later independent checks still run.
        The yielded result's `detail` may be filled in by the block.
        """
        result = CheckResult(name, Outcome.PASSED, 0.0)
        started = time.monotonic()
        try:
            yield result
        except Exception as error:
            result.outcome = Outcome.FAILED
            summary = f"{type(error).__name__}: {error}"
            result.detail = f"{result.detail}\n{summary}".strip() if result.detail else summary
            with (self.directory / "errors.log").open("a", encoding="utf-8") as log:
                log.write(f"=== {name}\n{traceback.format_exc()}\n")
            if fatal:
                raise
        finally:
            result.seconds = round(time.monotonic() - started, 3)
            self.checks.append(result)
            self.write()

    def timing(self, name: str, seconds: float) -> None:
        self.timings[name] = round(seconds, 3)

    def add_screenshot(self, file_name: str) -> None:
        if file_name not in self.screenshots:
            self.screenshots.append(file_name)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "meta": self.meta,
            "checks": [{**asdict(check), "outcome": str(check.outcome)} for check in self.checks],
            "timings": self.timings,
            "figures": self.figures,
            "screenshots": self.screenshots,
        }

    def to_markdown(self) -> str:
        data = self.to_json()
        lines = [
            f"# immich-aio e2e: {'PASSED' if self.ok else 'FAILED'}",
            "",
            f"Started {data['started']}, {data['seconds']} s.",
            "",
        ]
        if self.meta:
            lines += [f"- {key}: {value}" for key, value in self.meta.items()]
            lines.append("")
        lines += ["| check | outcome | seconds | detail |", "|---|---|---|---|"]
        for check in self.checks:
            detail = check.detail.replace("|", "\\|").replace("\n", " ")[:300]
            lines.append(f"| {check.name} | {check.outcome} | {check.seconds:.2f} | {detail} |")
        if self.timings:
            lines += ["", "## Timings (s)", ""]
            lines += [f"- {name}: {value:.3f}" for name, value in self.timings.items()]
        if self.figures:
            lines += ["", "## Figures", ""]
            lines += [
                f"- {name}: {json.dumps(value, ensure_ascii=False)}" for name, value in self.figures.items()
            ]
        if self.screenshots:
            lines += ["", "## Screenshots", ""]
            lines += [f"- {name}" for name in self.screenshots]
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        """Write summary.json and summary.md into the report directory (safe to call repeatedly)."""
        (self.directory / "summary.json").write_text(
            json.dumps(self.to_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        (self.directory / "summary.md").write_text(self.to_markdown(), encoding="utf-8")
