"""The compose stack: valid against the Compose specification, every service named, the user's .env kept."""

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from deploy import compose
from deploy.images import ml_plan, postgres_plan, server_plan
from patcher import manifest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = manifest.load(ROOT)


def compose_schema() -> dict[str, Any]:
    text = (
        resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


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
