"""The browser steps: Debian's Chromium driven by playwright-core (from npm) via e2e/browser_steps.cjs."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patcher.node import npm_cli

PLAYWRIGHT_CORE = "1.65.1"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
STEPS_SCRIPT = Path(__file__).with_name("browser_steps.cjs")


class BrowserError(RuntimeError):
    """The browser driver could not be installed or run at all."""


@dataclass(frozen=True)
class BrowserStep:
    name: str
    ok: bool
    seconds: float
    screenshot: str | None
    detail: str


@dataclass
class BrowserResult:
    steps: list[BrowserStep] = field(default_factory=list)
    search_result_ids: list[str] = field(default_factory=list)
    toast_text: str | None = None
    selection_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BrowserPlan:
    """What the browser does: who logs in, which asset it refreshes, what it searches for."""

    base_url: str
    email: str
    password: str
    asset_id: str
    search_query: str
    #: The viewer menu item to click and the toast it shows; None leaves the menu alone.
    menu_item: str | None
    toast_text: str | None
    #: The gateway's add-on labels (e2e.gateway_checks.addon_labels) to drive; None where there is no add-on.
    addon: dict[str, str] | None = None


def menu_labels(tree: Path) -> tuple[str, str] | None:
    """The English "Refresh OCR" menu label and its toast text from the tree's i18n, if the tree has them."""
    strings = json.loads((tree / "i18n" / "en.json").read_text(encoding="utf-8"))
    label, toast = strings.get("refresh_ocr"), strings.get("refreshing_ocr")
    if isinstance(label, str) and isinstance(toast, str):
        return label, toast
    return None


def ensure_playwright_core(node: Path, cache: Path) -> Path:
    """Install playwright-core (a driver; it downloads no browser) into the cache; returns node_modules."""
    prefix = cache / "browser"
    modules = prefix / "node_modules"
    if (modules / "playwright-core" / "package.json").exists():
        return modules
    argv = [
        str(node),
        str(npm_cli(node)),
        "install",
        "--prefix",
        str(prefix),
        f"playwright-core@{PLAYWRIGHT_CORE}",
        "--no-audit",
        "--no-fund",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrowserError(f"npm install playwright-core failed:\n{result.stderr[-2000:]}")
    return modules


def run_steps(
    plan: BrowserPlan, node: Path, cache: Path, report_dir: Path, timeout: float = 900
) -> BrowserResult:
    """Run the scripted browser session; screenshots land in report_dir, the driver log in report_dir/logs."""
    if not CHROMIUM.exists():
        raise BrowserError(f"{CHROMIUM} not found; install Debian's chromium package")
    modules = ensure_playwright_core(node, cache)
    (report_dir / "logs").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        request: dict[str, Any] = {
            "baseUrl": plan.base_url,
            "email": plan.email,
            "password": plan.password,
            "assetId": plan.asset_id,
            "searchQuery": plan.search_query,
            "menuItem": plan.menu_item,
            "toastText": plan.toast_text,
            "addon": plan.addon,
            "screenshotDir": str(report_dir),
            "userDataDir": profile,
            "executablePath": str(CHROMIUM),
            "args": list(CHROMIUM_FLAGS),
        }
        request_file = Path(profile).parent / f"{Path(profile).name}.json"
        request_file.write_text(json.dumps(request, ensure_ascii=False), encoding="utf-8")
        env = {**os.environ, "NODE_PATH": str(modules), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
        try:
            completed = subprocess.run(
                [str(node), str(STEPS_SCRIPT), str(request_file)],
                capture_output=True,
                text=True,
                env=env,
                timeout=timeout,
                check=False,
            )
        finally:
            request_file.unlink(missing_ok=True)
    (report_dir / "logs" / "browser.log").write_text(completed.stderr, encoding="utf-8")
    return parse_output(completed.stdout)


def parse_output(stdout: str) -> BrowserResult:
    """Read the driver's one-line JSON answer (the last non-empty stdout line)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise BrowserError("the browser driver printed nothing")
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError as error:
        raise BrowserError(f"the browser driver's answer is not JSON: {lines[-1][:500]}") from error
    steps = [
        BrowserStep(
            name=str(s["name"]),
            ok=bool(s["ok"]),
            seconds=float(s["seconds"]),
            screenshot=s.get("screenshot"),
            detail=str(s.get("detail", "")),
        )
        for s in data.get("steps", [])
    ]
    return BrowserResult(
        steps=steps,
        search_result_ids=[str(i) for i in data.get("searchResultIds", [])],
        toast_text=data.get("toastText"),
        selection_ids=[str(i) for i in data.get("selectionIds", [])],
    )
