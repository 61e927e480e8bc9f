"""`immich-aio verify`: toolchain detection, step planning, output parsing, upstream comparison, reports.

The runner is exercised on small synthetic workspaces with a stand-in package manager (a Python script
that prints what tsc, svelte-check and vitest print), because installing Immich's dependencies needs
minutes and the network; the real run against Immich is recorded in docs/v3-series.md.
"""

import io
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from rich.console import Console

from patcher import check_output, node, verify, verify_plan
from patcher.node import Requirements, Toolchain, ToolchainError, read_requirements
from patcher.verify import CheckResult, VerifyReport
from patcher.verify_plan import Step


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def pnpm_workspace(root: Path, manager: str = "pnpm@11.13.1") -> Path:
    """A tree shaped like Immich v3: server and web depend on two workspace packages, one on the other."""
    write_json(root / "package.json", {"name": "immich-monorepo", "packageManager": manager})
    (root / ".nvmrc").write_text("24.15.0\n", encoding="utf-8")
    (root / "pnpm-lock.yaml").write_text("lockfileVersion: '9.0'\n", encoding="utf-8")
    write_json(root / "packages/sdk/package.json", {"name": "@immich/sdk", "scripts": {"build": "tsc"}})
    write_json(
        root / "packages/plugin-sdk/package.json",
        {
            "name": "@immich/plugin-sdk",
            "scripts": {"build": "x"},
            "dependencies": {"@immich/sdk": "workspace:*"},
        },
    )
    write_json(root / "packages/cli/package.json", {"name": "@immich/cli", "scripts": {"build": "x"}})
    write_json(
        root / "server/package.json",
        {
            "scripts": {"test": "vitest --config test/vitest.config.mjs"},
            "dependencies": {"@immich/plugin-sdk": "workspace:*", "kysely": "^0.28"},
        },
    )
    write_json(
        root / "web/package.json",
        {
            "scripts": {"test": "vitest", "check:svelte": "svelte-check --no-tsconfig --fail-on-warnings"},
            "devDependencies": {"@immich/sdk": "workspace:*"},
        },
    )
    return root


def toolchain(command: tuple[str, ...], manager: node.PackageManager = "pnpm") -> Toolchain:
    return Toolchain(Path(sys.executable), "24.0.0", manager, "11.13.1", command)


class TestRequirements:
    def test_reads_pnpm_version_and_node_major(self, tmp_path: Path) -> None:
        tree = pnpm_workspace(tmp_path, "pnpm@11.13.1+sha512.abc")
        assert read_requirements(tree) == Requirements(24, "pnpm", "11.13.1")

    def test_falls_back_to_engines_and_the_npm_lockfiles(self, tmp_path: Path) -> None:
        write_json(tmp_path / "server/package.json", {"engines": {"node": ">=20.0.0"}})
        (tmp_path / "server/package-lock.json").write_text("{}", encoding="utf-8")
        assert read_requirements(tmp_path) == Requirements(20, "npm", None)

    def test_a_tree_without_any_package_manager_is_a_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(ToolchainError, match="neither a packageManager field nor"):
            read_requirements(tmp_path)

    def test_rejects_an_unsupported_package_manager(self, tmp_path: Path) -> None:
        write_json(tmp_path / "package.json", {"packageManager": "yarn@4.1.0"})
        with pytest.raises(ToolchainError, match="yarn"):
            read_requirements(tmp_path)

    def test_malformed_package_json_names_the_file(self, tmp_path: Path) -> None:
        (tmp_path / "package.json").write_text("{", encoding="utf-8")
        with pytest.raises(ToolchainError, match=r"package\.json is not valid JSON"):
            read_requirements(tmp_path)


def test_finds_an_installed_node_of_the_wanted_major(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "node"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho v22.17.1\n", encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(fake.parent))
    monkeypatch.setenv("IMMICH_AIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(node, "_candidate_nodes", lambda major: [fake])
    assert node.find_node(22, install=False) == (fake, "22.17.1")
    with pytest.raises(ToolchainError, match=r"Node\.js 24 is not installed"):
        node.find_node(24, install=False)


def test_the_toolchain_environment_puts_its_executables_first() -> None:
    chain = Toolchain(Path("/opt/n/bin/node"), "24.1.0", "pnpm", "11.1.0", ("pnpm",), (Path("/opt/n/bin"),))
    env = chain.env({"PATH": "/usr/bin"})
    assert env["PATH"].split(os.pathsep) == ["/opt/n/bin", "/usr/bin"]
    assert env["CI"] == "1" and env["NO_COLOR"] == "1"
    assert "npm_config_nodedir" not in env, "/opt/n has no headers"


def test_a_node_with_its_headers_builds_addons_without_downloading_them(tmp_path: Path) -> None:
    (tmp_path / "include/node").mkdir(parents=True)
    (tmp_path / "include/node/common.gypi").write_text("{}", encoding="utf-8")
    chain = Toolchain(tmp_path / "bin/node", "22.20.0", "npm", "10.9.3", ("npm",))
    assert chain.env({"PATH": ""})["npm_config_nodedir"] == str(tmp_path)
    assert chain.env({"PATH": "", "npm_config_nodedir": "/x"})["npm_config_nodedir"] == "/x"


def test_builds_the_workspace_packages_server_and_web_need_dependencies_first(tmp_path: Path) -> None:
    tree = pnpm_workspace(tmp_path)
    assert verify_plan.workspace_packages_to_build(tree) == ["packages/sdk", "packages/plugin-sdk"]


def test_a_v2_tree_pins_node_in_server_and_lists_its_sdk_in_the_workspace_file(tmp_path: Path) -> None:
    write_json(tmp_path / "package.json", {"packageManager": "pnpm@10.32.1"})
    (tmp_path / "server").mkdir()
    (tmp_path / "server/.nvmrc").write_text("24.14.1\n", encoding="utf-8")
    (tmp_path / "pnpm-workspace.yaml").write_text(
        "packages:\n  - open-api/typescript-sdk\n  - server\n  - web\n  - docs\n", encoding="utf-8"
    )
    write_json(
        tmp_path / "open-api/typescript-sdk/package.json",
        {"name": "@immich/sdk", "scripts": {"build": "tsc"}},
    )
    write_json(
        tmp_path / "docs/package.json", {"name": "documentation", "scripts": {"build": "docusaurus build"}}
    )
    write_json(tmp_path / "server/package.json", {"name": "immich", "scripts": {"build": "nest build"}})
    write_json(tmp_path / "web/package.json", {"name": "web", "dependencies": {"@immich/sdk": "workspace:*"}})
    assert read_requirements(tmp_path) == Requirements(24, "pnpm", "10.32.1")
    # docs is in the workspace but neither app depends on it; server and web are the apps themselves
    assert verify_plan.workspace_packages_to_build(tmp_path) == ["open-api/typescript-sdk"]


def test_plans_immichs_own_checks_from_the_trees_scripts(tmp_path: Path) -> None:
    tree = pnpm_workspace(tmp_path)
    steps = verify_plan.plan_steps(tree, toolchain(("pnpm",)))
    commands = {s.name: (s.cwd, " ".join(s.command), s.kind) for s in steps}
    assert list(commands) == [
        "install",
        "build packages/sdk",
        "build packages/plugin-sdk",
        "server tsc",
        "web svelte-kit sync",
        "web svelte-check",
        "server unit tests",
        "web unit tests",
    ]
    assert commands["install"] == (".", "pnpm install --frozen-lockfile --ignore-scripts", "plain")
    assert commands["server tsc"] == ("server", "pnpm exec tsc --noEmit", "tsc")
    assert commands["web svelte-check"] == ("web", "pnpm run check:svelte", "svelte-check")
    assert commands["server unit tests"][1] == "pnpm exec vitest run --config test/vitest.config.mjs"
    assert commands["web unit tests"][1] == "pnpm exec vitest run"


def test_plans_npm_installs_per_folder_for_npm_trees(tmp_path: Path) -> None:
    for folder in ("server", "web", "open-api/typescript-sdk"):
        write_json(tmp_path / folder / "package.json", {"scripts": {"build": "tsc"}})
        (tmp_path / folder / "package-lock.json").write_text("{}", encoding="utf-8")
    steps = verify_plan.plan_steps(tmp_path, toolchain(("node", "npm-cli.js"), "npm"))
    names = [s.name for s in steps]
    assert names[:4] == [
        "install server",
        "install web",
        "install open-api/typescript-sdk",
        "build open-api/typescript-sdk",
    ]
    assert steps[0].command == ("node", "npm-cli.js", "ci", "--ignore-scripts")
    assert " ".join(steps[4].command) == "node npm-cli.js exec -- tsc --noEmit"
    assert [s.command[-1] for s in steps[-2:]] == ["run", "run"]


TSC_OUTPUT = """\
src/services/search.service.ts(12,3): error TS2322: Type 'string' is not assignable to type 'number'.
src/utils/ocr-ranking.ts(40,1): error TS2304: Cannot find name 'foo'.
"""

SVELTE_OUTPUT = """\
Getting Svelte diagnostics...

{root}/web/src/lib/components/immich-aio/RefreshSearchMenuItems.svelte:18:29
Warn: This reference only captures the initial value of `assetId`.

{root}/web/src/routes/+page.svelte:3:1
Error: Cannot find module '$lib/missing'

====================================
svelte-check found 1 error and 1 warning in 2 files
"""


def test_parses_tsc_errors() -> None:
    count, failures = check_output.parse_tsc(TSC_OUTPUT, Path("/x"))
    assert count == 2
    assert failures == ["src/services/search.service.ts: TS2322", "src/utils/ocr-ranking.ts: TS2304"]
    assert check_output.parse_tsc("", Path("/x")) == (0, [])


def test_parses_the_svelte_check_summary_and_problems(tmp_path: Path) -> None:
    parsed = check_output.parse_svelte_check(SVELTE_OUTPUT.format(root=tmp_path.resolve()), tmp_path)
    assert parsed == (
        1,
        1,
        [
            "Warn: web/src/lib/components/immich-aio/RefreshSearchMenuItems.svelte",
            "Error: web/src/routes/+page.svelte",
        ],
    )
    assert check_output.parse_svelte_check("svelte-check found 0 errors and 0 warnings", tmp_path) == (
        0,
        0,
        [],
    )
    assert check_output.parse_svelte_check("crashed", tmp_path) is None


def vitest_report(root: Path) -> dict[str, object]:
    return {
        "numPassedTests": 3,
        "numFailedTests": 1,
        "numPendingTests": 1,
        "numTodoTests": 0,
        "testResults": [
            {
                "name": f"{root}/src/a.spec.ts",
                "status": "failed",
                "assertionResults": [
                    {"fullName": "A works", "status": "passed"},
                    {"fullName": "A breaks", "status": "failed"},
                ],
            },
            {"name": f"{root}/src/b.spec.ts", "status": "passed", "assertionResults": [{"status": "passed"}]},
            {"name": f"{root}/src/album-card.spec.ts", "status": "failed", "assertionResults": []},
        ],
    }


def test_parses_vitest_json_counting_spec_files_that_fail_to_load(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    write_json(report, vitest_report(tmp_path.resolve()))
    counts = check_output.parse_vitest_json(report, tmp_path)
    assert counts is not None
    assert (counts.passed, counts.failed, counts.skipped, counts.failed_files) == (3, 1, 1, 2)
    assert counts.failures == ["src/a.spec.ts > A breaks", "src/album-card.spec.ts: failed to run"]
    assert check_output.parse_vitest_json(tmp_path / "absent.json", tmp_path) is None


FAKE_PM = r"""
import json, sys
args = sys.argv[1:]
if args[:2] == ["exec", "tsc"]:
    print("src/x.ts(1,1): error TS1005: ';' expected.")
    sys.exit(2)
if args[:2] == ["exec", "vitest"]:
    out = next(a.split("=", 1)[1] for a in args if a.startswith("--outputFile.json="))
    report = {"numPassedTests": 7, "numFailedTests": 0, "numPendingTests": 2, "testResults": []}
    json.dump(report, open(out, "w"))
    print(" Tests  7 passed (7)")
    sys.exit(0)
if args[:2] == ["run", "check:svelte"]:
    print("svelte-check found 0 errors and 0 warnings")
    sys.exit(0)
if args and args[0] == "install" and "--fail-install" in open("package.json").read():
    print("ERR_PNPM_OUTDATED_LOCKFILE")
    sys.exit(1)
print("ok", *args)
"""


@pytest.fixture
def fake_toolchain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Toolchain:
    script = tmp_path / "fake_pm.py"
    script.write_text(FAKE_PM, encoding="utf-8")
    chain = toolchain((sys.executable, str(script)))
    monkeypatch.setattr(verify, "prepare", lambda tree, install=True: chain)
    monkeypatch.setenv("IMMICH_AIO_CACHE", str(tmp_path / "cache"))
    return chain


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def test_runs_every_step_and_reports_counts_with_logs(tmp_path: Path, fake_toolchain: Toolchain) -> None:
    tree = pnpm_workspace(tmp_path / "immich")
    report = verify.run_verify(tree, None, quiet())
    by_name = {c.name: c for c in report.checks}
    assert by_name["install"].status == "passed"
    assert by_name["server tsc"].status == "failed"
    assert by_name["server tsc"].errors == 1
    assert by_name["server tsc"].failures == ["src/x.ts: TS1005"]
    assert by_name["web svelte-check"].status == "passed"
    unit = by_name["server unit tests"]
    assert (unit.status, unit.passed, unit.skipped) == ("passed", 7, 2)
    assert not report.ok
    log = Path(by_name["server tsc"].log)
    assert log.is_file() and "error TS1005" in log.read_text(encoding="utf-8")
    assert json.loads(json.dumps(report.to_json()))["checks"][3]["newFailures"] == ["src/x.ts: TS1005"]


def test_a_failed_install_skips_the_checks_after_it(tmp_path: Path, fake_toolchain: Toolchain) -> None:
    tree = pnpm_workspace(tmp_path / "immich", manager="pnpm@11.13.1")
    data = json.loads((tree / "package.json").read_text(encoding="utf-8"))
    write_json(tree / "package.json", {**data, "description": "--fail-install"})
    report = verify.run_verify(tree, None, quiet())
    assert [c.status for c in report.checks][:2] == ["failed", "skipped"]
    assert {c.status for c in report.checks[1:]} == {"skipped"}
    assert "exit code 1" in report.checks[0].detail


def test_failures_that_upstream_shares_are_labelled_not_hidden() -> None:
    upstream = [
        CheckResult("web unit tests", "failed", passed=505, failures=["AlbumCard.spec.ts: failed to run"]),
        CheckResult("server tsc", "passed"),
    ]
    checks = [
        CheckResult("web unit tests", "failed", passed=510, failures=["AlbumCard.spec.ts: failed to run"]),
        CheckResult("server tsc", "failed", errors=1, failures=["src/a.ts: TS2322"]),
    ]
    verify.compare(checks, upstream)
    assert checks[0].status == "upstream" and checks[0].new_failures == []
    assert checks[1].status == "failed" and checks[1].new_failures == ["src/a.ts: TS2322"]
    report = VerifyReport("t", "u", {}, checks, upstream)
    assert not report.ok
    verify.compare(checks[:1], upstream)
    assert VerifyReport("t", "u", {}, checks[:1], upstream).ok


def test_upstream_results_are_reused_for_the_same_commit(
    tmp_path: Path, fake_toolchain: Toolchain, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "upstream"
    cache = tmp_path / "cache" / "verify-upstream" / "abc.json"
    monkeypatch.setattr(verify, "_upstream_cache", lambda tree, chain, only=None: cache)
    runs = []

    def fake_run_checks(
        tree: Path, console: Console, label: str = "", only: verify.App | None = None
    ) -> tuple[Toolchain, list[CheckResult]]:
        runs.append(tree)
        return fake_toolchain, [CheckResult("server tsc", "passed", duration=1.0)]

    monkeypatch.setattr(verify, "run_checks", fake_run_checks)
    first = verify.upstream_checks(tree, quiet())
    second = verify.upstream_checks(tree, quiet())
    assert runs == [tree]
    assert first == second == [CheckResult("server tsc", "passed", duration=1.0)]


def test_the_summary_table_lists_every_check(tmp_path: Path) -> None:
    report = VerifyReport(
        "immich",
        None,
        {},
        [
            CheckResult("server unit tests", "passed", passed=2268, duration=301.0),
            CheckResult("web svelte-check", "failed", errors=2, detail="Error: web/src/x.svelte"),
        ],
    )
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(verify.render_summary(report))
    text = console.export_text()
    assert "server unit tests" in text and "2268" in text
    assert "Error: web/src/x.svelte" in text and "FAILED" in text


def test_a_step_that_cannot_start_is_an_error_not_a_crash(tmp_path: Path) -> None:
    chain = toolchain((str(tmp_path / "missing-pnpm"),))
    logs = tmp_path / "logs"
    logs.mkdir()
    result = verify.run_step(tmp_path, Step("install", ".", chain.command, "plain"), chain, logs)
    assert result.status == "failed"
    assert "could not start" in Path(result.log).read_text(encoding="utf-8")


def v2_workspace(root: Path) -> Path:
    """A tree shaped like Immich v2.2-v2.5: web names the SDK by folder (`file:`), not `workspace:*`."""
    write_json(root / "package.json", {"name": "immich-monorepo", "packageManager": "pnpm@10.19.0"})
    (root / "pnpm-workspace.yaml").write_text(
        "packages:\n  - open-api/typescript-sdk\n  - server\n  - web\n  - e2e\n", encoding="utf-8"
    )
    write_json(
        root / "open-api/typescript-sdk/package.json", {"name": "@immich/sdk", "scripts": {"build": "tsc"}}
    )
    write_json(
        root / "e2e/package.json",
        {"name": "immich-e2e", "scripts": {"build": "x"}, "devDependencies": {"@immich/sdk": "file:../x"}},
    )
    write_json(
        root / "server/package.json",
        {"name": "immich", "scripts": {"test": "vitest --config test/vitest.config.mjs"}},
    )
    write_json(
        root / "web/package.json",
        {
            "name": "immich-web",
            "scripts": {"test": "vitest", "check:svelte": "svelte-check"},
            "dependencies": {"@immich/sdk": "file:../open-api/typescript-sdk", "@immich/ui": "^0.40.2"},
        },
    )
    return root


def test_a_file_dependency_on_a_workspace_folder_is_built_first(tmp_path: Path) -> None:
    tree = v2_workspace(tmp_path)
    assert verify_plan.workspace_packages_to_build(tree) == ["open-api/typescript-sdk"]
    # the server needs no workspace package; a `file:` path to elsewhere is not the workspace's package
    assert verify_plan.workspace_packages_to_build(tree, ("server",)) == []
    write_json(
        tree / "web/package.json", {"name": "web", "dependencies": {"@immich/sdk": "file:../vendor/sdk"}}
    )
    assert verify_plan.workspace_packages_to_build(tree) == []


def test_only_server_plans_a_filtered_install_and_the_server_checks(tmp_path: Path) -> None:
    tree = v2_workspace(tmp_path)
    steps = verify_plan.plan_steps(tree, toolchain(("pnpm",)), only="server")
    assert [s.name for s in steps] == ["install", "server tsc", "server unit tests"]
    assert (
        " ".join(steps[0].command) == "pnpm install --frozen-lockfile --ignore-scripts --filter ./server..."
    )
    web = verify_plan.plan_steps(tree, toolchain(("pnpm",)), only="web")
    assert [s.name for s in web] == [
        "install",
        "build open-api/typescript-sdk",
        "web svelte-kit sync",
        "web svelte-check",
        "web unit tests",
    ]
    # the SDK a `file:` path names is built, so it is installed too (v2.7.5's web-only install left it out)
    assert web[0].command[-4:] == ("--filter", "./web...", "--filter", "./open-api/typescript-sdk")


PNPM_404_LOG = """\
Lockfile is up to date, resolution step is skipped
 ERR_PNPM_FETCH_404  GET https://registry.npmjs.org/@immich/ui/-/ui-0.40.2.tgz: Not Found - 404

This error happened while installing a direct dependency of /immich/web
 ERR_PNPM_FETCH_404  GET https://registry.npmjs.org/@immich%2fui/-/ui-0.40.2.tgz: Not Found - 404
 ERR_PNPM_FETCH_404  GET https://mirror.example/left-pad/-/left-pad-1.3.0-rc.1.tgz: Not Found - 404
"""


def test_names_the_packages_the_registry_lacks() -> None:
    assert verify.missing_packages(PNPM_404_LOG) == ["@immich/ui@0.40.2", "left-pad@1.3.0-rc.1"]
    assert verify.missing_packages("npm error 404  '@immich/ui@0.40.2' is not in this registry.") == [
        "@immich/ui@0.40.2"
    ]
    url = "https://registry.npmjs.org/@testcontainers/redis/-/redis-10.27.0.tgz"
    tarball = f"npm error 404  '@testcontainers/redis@{url}' is not in this registry."
    assert verify.missing_packages(tarball) == ["@testcontainers/redis@10.27.0"]
    assert verify.missing_packages("Done in 9.4s") == []


def test_a_failed_install_names_the_missing_package_and_the_way_round(tmp_path: Path) -> None:
    step = Step("install", ".", ("pnpm", "install"), "plain")
    result = CheckResult("install", "passed")
    verify._interpret(result, step, 1, PNPM_404_LOG, tmp_path / "r.json", tmp_path)
    assert result.status == "failed"
    assert result.detail.startswith("the registry has no @immich/ui@0.40.2, left-pad@1.3.0-rc.1 (404)")
    assert "--only server" in result.detail


def test_only_is_passed_through_and_reported(tmp_path: Path, fake_toolchain: Toolchain) -> None:
    tree = pnpm_workspace(tmp_path / "immich")
    report = verify.run_verify(tree, None, quiet(), only="server")
    assert [c.name for c in report.checks] == [
        "install",
        "build packages/sdk",
        "build packages/plugin-sdk",
        "server tsc",
        "server unit tests",
    ]
    assert report.to_json()["only"] == "server"
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(verify.render_summary(report))
    assert "(server only)" in console.export_text()


FAKE_NPM = r"""
import json, os, sys
args = sys.argv[1:]
if args[0] == "ci":
    if "@testcontainers/redis" in open("package.json").read():
        print("npm error 404  '@testcontainers/redis@10.27.0' is not in this registry.")
        sys.exit(1)
    for path in json.load(open("package-lock.json"))["packages"]:
        if path:
            os.makedirs(path, exist_ok=True)
    sys.exit(0)
if args[:3] == ["exec", "--", "tsc"]:
    print("test/medium/globalSetup.ts(1,29): error TS2307: Cannot find module '@testcontainers/redis'.")
    if os.environ.get("FAKE_TSC_ERROR"):
        print("src/x.ts(1,1): error TS2307: Cannot find module './gone'.")
    sys.exit(2)
if args[:3] == ["exec", "--", "vitest"]:
    out = next(a.split("=", 1)[1] for a in args if a.startswith("--outputFile.json="))
    report = {"numPassedTests": 3, "numFailedTests": 0, "numPendingTests": 0, "testResults": []}
    json.dump(report, open(out, "w"))
    sys.exit(0)
if args[0] == "rebuild":
    open(os.path.join("node_modules", args[1], "built"), "w").close()
if "svelte-check" in args:
    print("svelte-check found 0 errors and 0 warnings")
print("ok", *args)
"""


def npm_tree(root: Path) -> Path:
    """A tree shaped like Immich v1.134: npm per folder, test containers locked, canvas optional in web."""
    server = {"name": "immich", "devDependencies": {"@testcontainers/redis": "^10.18.0", "vitest": "^3"}}
    write_json(root / "server/package.json", server)
    write_json(
        root / "server/package-lock.json",
        {
            "packages": {
                "": server,
                "node_modules/@testcontainers/redis": {"version": "10.27.0", "dev": True},
                "node_modules/vitest": {"version": "3.1.0", "dev": True},
                "node_modules/bcrypt": {"version": "5.1.1", "hasInstallScript": True},
            }
        },
    )
    (root / "server/node_modules/bcrypt").mkdir(parents=True)
    (root / "server/node_modules/bcrypt/binding.gyp").write_text("{}", encoding="utf-8")
    medium = root / "server/test/medium/globalSetup.ts"
    medium.parent.mkdir(parents=True)
    medium.write_text("import { RedisContainer } from '@testcontainers/redis';\n", encoding="utf-8")
    (root / "server/src").mkdir()
    (root / "server/src/x.ts").write_text("import { y } from './gone';\n", encoding="utf-8")
    web = {"name": "immich-web", "scripts": {"test": "vitest"}}
    write_json(root / "web/package.json", web)
    packages = {
        "": web,
        "node_modules/canvas": {"version": "2.11.2", "optional": True, "hasInstallScript": True},
        "node_modules/sharp": {"version": "0.34.2", "hasInstallScript": True},
    }
    write_json(root / "web/package-lock.json", {"packages": packages})
    return root


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Toolchain:
    script = tmp_path / "fake_npm.py"
    script.write_text(FAKE_NPM, encoding="utf-8")
    chain = toolchain((sys.executable, str(script)), "npm")
    monkeypatch.setattr(verify, "prepare", lambda tree, install=True: chain)
    monkeypatch.setenv("IMMICH_AIO_CACHE", str(tmp_path / "cache"))
    # what `require()` finds: a package loads once built, and sharp's binary ships beside it
    monkeypatch.setattr(
        verify,
        "node_loads",
        lambda chain, folder, name: name == "sharp" or (folder / "node_modules" / name / "built").exists(),
    )
    return chain


def test_an_npm_tree_installs_without_the_missing_test_containers(
    tmp_path: Path, fake_npm: Toolchain
) -> None:
    tree = npm_tree(tmp_path / "immich")
    before = {name: (tree / "server" / name).read_bytes() for name in ("package.json", "package-lock.json")}
    report = verify.run_verify(tree, None, quiet(), only="server")
    checks = {c.name: c for c in report.checks}
    install = checks["install server"]
    assert install.status == "passed"
    assert "installed without @testcontainers/redis" in install.detail
    assert "@testcontainers/redis@10.27.0" in install.detail
    assert "built bcrypt from source" in install.detail
    assert (tree / "server/node_modules/bcrypt/built").is_file()
    assert {name: (tree / "server" / name).read_bytes() for name in before} == before
    tsc = checks["server tsc"]
    assert (tsc.status, tsc.errors, tsc.failures) == ("passed", 0, [])
    assert "test/medium/globalSetup.ts: TS2307" in tsc.detail
    assert report.ok


def test_only_the_left_out_packages_errors_are_set_aside(
    tmp_path: Path, fake_npm: Toolchain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TSC_ERROR", "1")
    report = verify.run_verify(npm_tree(tmp_path / "immich"), None, quiet(), only="server")
    tsc = {c.name: c for c in report.checks}["server tsc"]
    assert (tsc.status, tsc.errors, tsc.failures) == ("failed", 1, ["src/x.ts: TS2307"])
    assert not report.ok


def test_unbuilt_optional_bindings_are_removed_as_npm_would(tmp_path: Path, fake_npm: Toolchain) -> None:
    tree = npm_tree(tmp_path / "immich")
    report = verify.run_verify(tree, None, quiet(), only="web")
    install = {c.name: c for c in report.checks}["install web"]
    assert install.status == "passed"
    assert "removed canvas" in install.detail
    assert not (tree / "web/node_modules/canvas").exists()
    assert (tree / "web/node_modules/sharp").is_dir(), "a required package is never removed"
