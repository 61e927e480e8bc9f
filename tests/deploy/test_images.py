"""Image plans and builder commands: tags, labels and contexts readable, a missing builder a clear error."""

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy import builders
from deploy.images import PlanError, ml_context_steps, ml_plan, postgres_plan, series_digest, server_plan
from immich_aio.cli import app
from patcher import manifest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = manifest.load(ROOT)
V3 = SHIPPED.by_name("v3")


def test_the_server_image_names_its_release_series_and_patches(release_tree: Path) -> None:
    plan = server_plan(release_tree, "v3.1.0", V3, SHIPPED.root, "ghcr.io/me", "abc123")
    digest = series_digest(V3, "v3.1.0", SHIPPED.root)
    assert plan.tag == f"ghcr.io/me/immich-server:v3.1.0-aio.{digest}"
    assert plan.dockerfile == release_tree / "server" / "Dockerfile" and plan.context == release_tree
    assert plan.labels["io.immich-aio.upstream-release"] == "v3.1.0"
    assert plan.labels["io.immich-aio.series"] == "v3"
    assert plan.labels["io.immich-aio.patches"].split(",") == [p.name for p in V3.patches()]
    assert plan.build_args["BUILD_SOURCE_COMMIT"] == "abc123"


def test_the_series_digest_follows_the_series_content() -> None:
    first, again = series_digest(V3, "v3.1.0", SHIPPED.root), series_digest(V3, "v3.1.0", SHIPPED.root)
    assert first == again and len(first) == 10
    assert series_digest(V3, "v3.0.0", SHIPPED.root) != first  # v3.0 renders the ranking template differently


def test_the_database_image_starts_from_the_releases_own_postgres(release_tree: Path) -> None:
    plan = postgres_plan(ROOT, release_tree, "me")
    assert plan.build_args["IMMICH_POSTGRES"].startswith("ghcr.io/immich-app/postgres:14-vectorchord0.4.3")
    assert plan.tag == "me/immich-aio-postgres:14-vectorchord0.4.3-pgvectors0.2.0-zhparser"
    assert plan.dockerfile == ROOT / "db_extension" / "docker" / "Dockerfile"


def test_every_builder_gets_the_same_flags(tmp_path: Path) -> None:
    plan = ml_plan(ROOT, "me", tmp_path, "cuda")
    for builder in builders.BUILDERS:
        command = builders.build_command(builder, f"/usr/bin/{builder}", plan, "linux/arm64")
        assert command[:2] == [f"/usr/bin/{builder}", "build"]
        assert command[command.index("--tag") : command.index("--tag") + 2] == [
            "--tag",
            "me/immich-aio-ml:0.1.0-cuda",
        ]
        assert "VARIANT=cuda" in command and "linux/arm64" in command and command[-1] == str(tmp_path)
        assert "PROVIDERS=CUDAExecutionProvider,CPUExecutionProvider" in command
        assert any(arg.startswith("BASE=nvidia/cuda:") for arg in command)


def test_the_ml_image_carries_the_pinned_tokenizer_and_is_built_from_a_prepared_context(
    tmp_path: Path,
) -> None:
    plan = ml_plan(ROOT, "me", tmp_path)
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["ml"]
    pin = next(line for line in extra if line.startswith("cn_clip"))
    assert plan.build_args["CN_CLIP"].replace("-", "_") == pin
    assert plan.build_args["BASE"] == "debian:bookworm-slim" and plan.context == tmp_path
    wheel, export = ml_context_steps(ROOT, tmp_path, ["ViT-B-16"])
    assert wheel[-1] == str(ROOT) and wheel[wheel.index("--wheel-dir") + 1] == str(tmp_path / "wheel")
    assert export[-6:] == ["export", "ViT-B-16", "--to", str(tmp_path / "models"), "--graphs", "served"]
    assert ml_context_steps(ROOT, tmp_path, ["ViT-B-16"], "all")[1][-1] == "all"
    with pytest.raises(PlanError, match="not the immich-aio source"):
        ml_context_steps(tmp_path, tmp_path, ["ViT-B-16"])


def test_a_missing_builder_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(builders.BuilderError, match="apt install buildah"):
        builders.find_builder(None)
    with pytest.raises(builders.BuilderError, match="podman is not installed"):
        builders.find_builder("podman")
    result = CliRunner().invoke(
        app, ["build", "--immich-version", "v3.1.0", "--builder", "podman", "--images", "ml"]
    )
    assert result.exit_code == 1 and "podman is not installed" in result.stderr


def test_the_dry_run_prints_the_plan_and_changes_nothing(release_tree: Path) -> None:
    before = sorted(p.name for p in release_tree.iterdir())
    result = CliRunner().invoke(
        app,
        ["build", "--immich-version", "v3.1.0", "--tree", str(release_tree), "--dry-run", "--json", "--push"],
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [p["image"] for p in data["plans"]] == ["server", "ml", "postgres"]
    verbs = [c[1] if c[0] != "rm" else "rm" for c in data["commands"]]
    assert verbs == ["rm", "-m", "-m", "build", "build", "build", "push", "push", "push"]
    assert data["commands"][2][3:5] == ["models", "export"]
    assert sorted(p.name for p in release_tree.iterdir()) == before


def test_bad_requests_are_usage_errors() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["build", "--immich-version", "v3.1.0", "--images", "web"]).exit_code == 2
    assert runner.invoke(app, ["build", "--immich-version", "v3.1.0", "--builder", "kaniko"]).exit_code == 2
    assert runner.invoke(app, ["build", "--immich-version", "v9.9.9", "--dry-run"]).exit_code == 2


def test_the_ml_image_alone_needs_no_immich_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMMICH_AIO_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(
        app, ["build", "--immich-version", "v3.1.0", "--images", "ml", "--dry-run", "--json"]
    )
    assert result.exit_code == 0, result.stderr
    commands = json.loads(result.stdout)["commands"]
    assert commands[0] == ["rm", "-rf", str(tmp_path / "cache" / "images" / "ml-context")]
    assert not any("patch" in command for command in commands)
    assert commands[-1][-1] == str(tmp_path / "cache" / "images" / "ml-context")
    assert list(tmp_path.iterdir()) == []
