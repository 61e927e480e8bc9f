"""Reads the output of Immich's checks (tsc, svelte-check, vitest's JSON report) into counts and failures."""

import json
import re
from dataclasses import dataclass
from pathlib import Path

_TSC_ERROR = re.compile(r"^(?P<file>[^\s(][^(]*)\((?P<line>\d+),\d+\): error (?P<code>TS\d+):", re.MULTILINE)
_SVELTE_SUMMARY = re.compile(r"svelte-check found (\d+) errors? and (\d+) warnings?")
_SVELTE_PROBLEM = re.compile(
    r"^(?P<file>/\S+|\S+\.svelte|\S+\.ts):\d+:\d+\s*\n(?P<kind>Error|Warn)", re.MULTILINE
)


def parse_tsc(output: str, tree: Path) -> tuple[int, list[str]]:
    """Number of TypeScript errors and one identifier per error (file + code, line numbers drift)."""
    failures = [f"{m['file'].strip()}: {m['code']}" for m in _TSC_ERROR.finditer(output)]
    return len(failures), failures


def parse_svelte_check(output: str, tree: Path) -> tuple[int, int, list[str]] | None:
    """(errors, warnings, identifiers) from svelte-check's summary; None when it printed none."""
    summary = _SVELTE_SUMMARY.search(output)
    if not summary:
        return None
    root = str(tree.resolve())
    problems = [f"{m['kind']}: {m['file'].replace(root + '/', '')}" for m in _SVELTE_PROBLEM.finditer(output)]
    return int(summary.group(1)), int(summary.group(2)), problems


@dataclass(frozen=True)
class VitestCounts:
    passed: int
    failed: int
    skipped: int
    failed_files: int
    failures: list[str]


def parse_vitest_json(path: Path, tree: Path) -> VitestCounts | None:
    """Counts from vitest's JSON report; a spec file that fails to load counts as one failure."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    root = str(tree.resolve())
    failures: list[str] = []
    failed_files = 0
    for suite in data.get("testResults", []):
        name = str(suite.get("name", "")).replace(root + "/", "")
        assertions = suite.get("assertionResults", [])
        if suite.get("status") == "failed":
            failed_files += 1
            if not assertions or all(a.get("status") != "failed" for a in assertions):
                failures.append(f"{name}: failed to run")
        failures.extend(f"{name} > {a.get('fullName')}" for a in assertions if a.get("status") == "failed")
    return VitestCounts(
        passed=int(data.get("numPassedTests", 0)),
        failed=int(data.get("numFailedTests", 0)),
        skipped=int(data.get("numPendingTests", 0)) + int(data.get("numTodoTests", 0)),
        failed_files=failed_files,
        failures=failures,
    )
