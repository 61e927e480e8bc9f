"""Runs Immich's own checks (install, builds, type-checks, unit tests) in a tree and reports counts per check.

`run_verify(tree, compare_with, console)` is what `immich-aio verify` calls. With `compare_with` (an
unpatched checkout of the same release) the same checks run there too, and a failure that upstream has
as well is labelled `upstream` instead of counting against the patches. Upstream results are cached per
commit, so comparing costs one extra run per release.
"""

import json
import re
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

from rich.console import Console
from rich.table import Table

from patcher import gitops
from patcher.check_output import parse_svelte_check, parse_tsc, parse_vitest_json
from patcher.errors import PatcherError
from patcher.node import Toolchain, cache_root, prepare
from patcher.npm_lock import imports_any, reinstall_without_container_tests, settle_native_packages
from patcher.verify_plan import App, Step, plan_steps

Status = Literal["passed", "failed", "upstream", "error", "skipped"]
STEP_TIMEOUT = 45 * 60


@dataclass
class CheckResult:
    """One check: its outcome, counts, how long it took and where its full log is."""

    name: str
    status: Status
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    warnings: int = 0
    duration: float = 0.0
    log: str = ""
    command: str = ""
    detail: str = ""
    failures: list[str] = field(default_factory=list)
    upstream_failures: list[str] | None = None

    @property
    def new_failures(self) -> list[str]:
        """Failures the upstream tree does not have (all of them when there was no comparison)."""
        if self.upstream_failures is None:
            return list(self.failures)
        known = set(self.upstream_failures)
        return [f for f in self.failures if f not in known]

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status,
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
            "errors": self.errors,
            "warnings": self.warnings,
            "duration": self.duration,
            "log": self.log,
            "command": self.command,
            "detail": self.detail,
            "failures": self.failures,
            "upstreamFailures": self.upstream_failures,
            "newFailures": self.new_failures,
        }


@dataclass
class VerifyReport:
    tree: str
    compared_with: str | None
    toolchain: dict[str, str]
    checks: list[CheckResult]
    upstream: list[CheckResult] | None = None
    only: App | None = None

    @property
    def ok(self) -> bool:
        return all(c.status in ("passed", "upstream", "skipped") for c in self.checks)

    def to_json(self) -> dict[str, object]:
        return {
            "tree": self.tree,
            "comparedWith": self.compared_with,
            "only": self.only,
            "ok": self.ok,
            "toolchain": self.toolchain,
            "checks": [c.to_json() for c in self.checks],
            "upstream": [c.to_json() for c in self.upstream] if self.upstream is not None else None,
        }


# --- the checks ---------------------------------------------------------------------------------------


def _log_dir(tree: Path) -> Path:
    try:
        base = gitops.git_dir(tree) / "immich-aio" / "verify"
    except PatcherError:
        base = cache_root() / "verify-logs" / tree.resolve().name
    base.mkdir(parents=True, exist_ok=True)
    return base


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def run_step(tree: Path, step: Step, toolchain: Toolchain, logs: Path) -> CheckResult:
    log = logs / f"{_slug(step.name)}.log"
    command = list(step.command)
    report = logs / f"{_slug(step.name)}.json"
    if step.kind == "vitest":
        report.unlink(missing_ok=True)
        command += ["--reporter=default", "--reporter=json", f"--outputFile.json={report}"]
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as sink:
        sink.write(f"$ (cd {step.cwd} && {' '.join(command)})\n")
        sink.flush()
        try:
            completed = subprocess.run(
                command,
                cwd=tree / step.cwd,
                env=toolchain.env(),
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=STEP_TIMEOUT,
            )
            code: int | None = completed.returncode
        except subprocess.TimeoutExpired:
            code = None
        except OSError as error:
            sink.write(f"\ncould not start: {error}\n")
            code = -1
    duration = round(time.monotonic() - started, 1)
    output = log.read_text(encoding="utf-8", errors="replace")
    result = CheckResult(step.name, "passed", duration=duration, log=str(log), command=" ".join(command))
    if code is None:
        result.status, result.errors, result.detail = "error", 1, f"timed out after {STEP_TIMEOUT} s"
        result.failures = [f"{step.name}: timeout"]
        return result
    _interpret(result, step, code, output, report, tree)
    return result


_FETCH_404 = re.compile(r"ERR_PNPM_FETCH_404\s+GET\s+https?://[^/\s]+/(\S+?)/-/[^\s/]+?-(\d[^\s/]*)\.tgz")
_NPM_404 = re.compile(r"npm (?:ERR!|error) 404\s+'([^'@\s]*@?[^'@\s]+)@([^'\s]+)' is not in this registry")


def missing_packages(output: str) -> list[str]:
    """`name@version` of each package the registry answered 404 for, from a pnpm or npm install log."""
    found: list[str] = []
    for match in _FETCH_404.finditer(output):
        package = f"{unquote(match.group(1))}@{match.group(2)}"
        if package not in found:
            found.append(package)
    for match in _NPM_404.finditer(output):
        # npm 10 names a locked package by its tarball: .../@scope/name/-/name-1.2.3.tgz
        tarball = re.search(r"/-/[^/]+?-(\d[^/]*)\.tgz$", match.group(2))
        package = f"{match.group(1)}@{tarball.group(1) if tarball else match.group(2)}"
        if package not in found:
            found.append(package)
    return found


def _interpret(result: CheckResult, step: Step, code: int, output: str, report: Path, tree: Path) -> None:
    if step.kind == "tsc":
        result.errors, result.failures = parse_tsc(output, tree)
        if code != 0 and not result.errors:
            result.errors, result.failures = 1, [f"{step.name}: exit code {code}"]
    elif step.kind == "svelte-check":
        parsed = parse_svelte_check(output, tree)
        if parsed is None:
            result.errors, result.failures = 1, [f"{step.name}: no summary (exit code {code})"]
        else:
            result.errors, result.warnings, result.failures = parsed
            if (result.errors or result.warnings) and not result.failures:
                result.failures = [f"{step.name}: {result.errors} errors, {result.warnings} warnings"]
    elif step.kind == "vitest":
        counts = parse_vitest_json(report, tree)
        if counts is None:
            result.errors, result.failures = 1, [f"{step.name}: no test report (exit code {code})"]
        else:
            result.passed, result.failed, result.skipped = counts.passed, counts.failed, counts.skipped
            result.errors = len([f for f in counts.failures if f.endswith(": failed to run")])
            result.failures = counts.failures
            result.detail = f"{counts.failed_files} spec files failed" if counts.failed_files else ""
            if code != 0 and not counts.failures:
                result.errors, result.failures = 1, [f"{step.name}: exit code {code}"]
    elif code != 0:
        result.errors, result.failures = 1, [f"{step.name}: exit code {code}"]
        missing = missing_packages(output)
        if missing:
            result.detail = (
                f"the registry has no {', '.join(missing)} (404); "
                "`--only server` or `--only web` checks the app that does not need it"
            )
    if result.failures:
        result.status = "failed"
        result.detail = result.detail or result.failures[0]


def run_checks(
    tree: Path, console: Console, label: str = "", only: App | None = None
) -> tuple[Toolchain, list[CheckResult]]:
    """Every check of `tree` (of one app with `only`) in order; a failed install or build skips the rest."""
    tree = tree.resolve()
    if not (tree / "server").is_dir() or not (tree / "web").is_dir():
        raise PatcherError(f"{tree} does not look like an Immich checkout (no server/ and web/)")
    toolchain = prepare(tree)
    console.print(
        f"{label}{tree}: Node {toolchain.node_version}, {toolchain.package_manager} "
        f"{toolchain.package_manager_version}",
        highlight=False,
    )
    logs = _log_dir(tree)
    results: list[CheckResult] = []
    left_out: dict[str, list[str]] = {}
    blocked = False
    for step in plan_steps(tree, toolchain, only):
        if blocked:
            results.append(CheckResult(step.name, "skipped", detail="an install or build step failed"))
            continue
        console.print(f"{label}running {step.name} …", highlight=False)
        result = run_step(tree, step, toolchain, logs)
        if toolchain.package_manager == "npm" and step.name.startswith("install "):
            result = _npm_install_as_far_as_possible(tree, step, toolchain, logs, result, left_out)
        if step.kind == "tsc" and left_out.get(step.cwd):
            _set_aside_left_out_imports(result, tree / step.cwd, left_out[step.cwd])
        console.print(f"{label}{step.name}: {summary_line(result)}", highlight=False)
        results.append(result)
        if result.status != "passed" and step.kind == "plain":
            blocked = True
            if result.detail and "(404)" in result.detail:
                console.print(f"{label}{result.detail}", highlight=False)
    return toolchain, results


def _npm_install_as_far_as_possible(
    tree: Path,
    step: Step,
    toolchain: Toolchain,
    logs: Path,
    result: CheckResult,
    left_out: dict[str, list[str]],
) -> CheckResult:
    """Install again without the test containers when only they are missing; prune unbuilt bindings."""
    notes: list[str] = []
    if result.status != "passed":
        missing = missing_packages(Path(result.log).read_text(encoding="utf-8", errors="replace"))
        retried = reinstall_without_container_tests(
            tree / step.cwd, missing, lambda: run_step(tree, step, toolchain, logs)
        )
        if retried is not None:
            result, left_out[step.cwd], note = retried
            notes.append(note)
    if result.status == "passed":
        removed, rebuilt = settle_native(toolchain, tree / step.cwd, Path(result.log))
        if removed:
            notes.append(f"removed {', '.join(removed)}: optional, its native part not built (as npm does)")
        if rebuilt:
            notes.append(f"built {', '.join(rebuilt)} from source (install scripts are not run)")
    if notes:
        result.detail = "; ".join([*notes, result.detail] if result.detail else notes)
    return result


def settle_native(toolchain: Toolchain, folder: Path, log: Path) -> tuple[list[str], list[str]]:
    """After `npm ci --ignore-scripts` in `folder`: (removed, rebuilt) native packages, each rebuilt from
    source with its output appended to `log` (patcher.npm_lock.settle_native_packages decides which)."""

    def rebuild(name: str) -> bool:
        command = (*toolchain.command, "rebuild", name, "--build-from-source")
        with log.open("a", encoding="utf-8") as sink:
            sink.write(f"\n$ {' '.join(command)}\n")
            sink.flush()
            done = subprocess.run(command, cwd=folder, env=toolchain.env(), stdout=sink, stderr=sink)
        return done.returncode == 0 and node_loads(toolchain, folder, name)

    return settle_native_packages(folder, lambda name: node_loads(toolchain, folder, name), rebuild)


def node_loads(toolchain: Toolchain, folder: Path, name: str) -> bool:
    """Whether Node can `require()` the package `name` from `folder` (its native part, if any, included)."""
    probe = (str(toolchain.node), "-e", "require(process.argv[1])", name)
    done = subprocess.run(probe, cwd=folder, env=toolchain.env(), capture_output=True, timeout=120)
    return done.returncode == 0


def _set_aside_left_out_imports(result: CheckResult, app: Path, dropped: list[str]) -> None:
    """tsc's TS2307 in a file importing a package left out of the install is that install's, not a patch's."""
    code = ": TS2307"
    aside = [f for f in result.failures if f.endswith(code) and imports_any(app / f[: -len(code)], dropped)]
    if not aside:
        return
    result.failures = [f for f in result.failures if f not in aside]
    result.errors -= len(aside)
    result.detail = f"set aside {len(aside)} TS2307 of the left-out packages: {', '.join(aside)}"
    if not result.failures and result.status == "failed":
        result.status = "passed"


def _upstream_cache(tree: Path, toolchain: Toolchain, only: App | None = None) -> Path | None:
    try:
        head = gitops.run(gitops.open_checkout(tree), "rev-parse", "HEAD").stdout.strip()
        dirty = gitops.dirty_files(tree)
    except PatcherError:
        return None
    if dirty:
        return None
    manager = f"{toolchain.package_manager}{toolchain.package_manager_version}"
    key = f"{head}-node{toolchain.node_version}-{manager}" + (f"-{only}" if only else "")
    return cache_root() / "verify-upstream" / f"{key}.json"


def upstream_checks(tree: Path, console: Console, only: App | None = None) -> list[CheckResult]:
    """The checks of an unpatched tree, from the cache when this commit was verified before."""
    toolchain = prepare(tree.resolve())
    cached = _upstream_cache(tree.resolve(), toolchain, only)
    if cached and cached.is_file():
        console.print(f"upstream {tree}: using cached results {cached.name}", highlight=False)
        return [CheckResult(**c) for c in json.loads(cached.read_text(encoding="utf-8"))]
    _, results = run_checks(tree, console, label="upstream ", only=only)
    if cached and not any(r.status == "error" for r in results):
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps([asdict(r) for r in results], indent=1), encoding="utf-8")
    return results


def compare(checks: list[CheckResult], upstream: list[CheckResult]) -> None:
    """Label each failing check `upstream` when every one of its failures also happens upstream."""
    by_name = {c.name: c for c in upstream}
    for check in checks:
        base = by_name.get(check.name)
        if base is None:
            continue
        check.upstream_failures = list(base.failures)
        if check.status == "failed" and not check.new_failures:
            check.status = "upstream"
            check.detail = f"same failures as upstream ({len(check.failures)})"


def run_verify(
    tree: Path, compare_with: Path | None, console: Console, only: App | None = None
) -> VerifyReport:
    """Run Immich's checks in `tree` (and, to label upstream failures, in `compare_with`).

    `only` limits them to one app (see `plan_steps`).
    """
    toolchain, checks = run_checks(tree, console, only=only)
    upstream = None
    if compare_with is not None:
        upstream = upstream_checks(compare_with, console, only)
        compare(checks, upstream)
    return VerifyReport(
        tree=str(tree),
        compared_with=str(compare_with) if compare_with else None,
        toolchain=toolchain.to_json(),
        checks=checks,
        upstream=upstream,
        only=only,
    )


def summary_line(check: CheckResult) -> str:
    parts: list[str] = [check.status]
    if check.passed or check.failed:
        parts.append(f"{check.passed} passed, {check.failed} failed, {check.skipped} skipped")
    if check.errors or check.warnings:
        parts.append(f"{check.errors} errors, {check.warnings} warnings")
    parts.append(f"{check.duration:.0f} s")
    return "; ".join(parts)


_STYLE: dict[str, str] = {
    "passed": "green",
    "failed": "bold red",
    "upstream": "yellow",
    "error": "bold red",
    "skipped": "dim",
}


def render_summary(report: VerifyReport) -> Table:
    """A table with one row per check; failures that upstream shares are marked as such."""
    title = (
        f"immich-aio verify {report.tree}"
        + (f" ({report.only} only)" if report.only else "")
        + (f" (compared with {report.compared_with})" if report.compared_with else "")
    )
    table = Table(
        "check", "status", "passed", "failed", "skipped", "errors", "warnings", "time", "details", title=title
    )
    for c in report.checks:
        table.add_row(
            c.name,
            f"[{_STYLE[c.status]}]{c.status}[/]",
            str(c.passed),
            str(c.failed),
            str(c.skipped),
            str(c.errors),
            str(c.warnings),
            f"{c.duration:.0f} s",
            c.detail.splitlines()[0][:80] if c.detail else "",
        )
    table.caption = "OK" if report.ok else "FAILED: see the logs named in --json output"
    return table
