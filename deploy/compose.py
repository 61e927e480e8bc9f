"""The compose stack of one release: its own docker-compose.yml and example.env, with immich-aio in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy.images import ImagePlan

HEADER = "# Written by `immich-aio compose` for Immich {tag}. Settings belong in .env; running the command\n"
HEADER += "# again rewrites this file (a file it did not write is kept as docker-compose.yml.orig).\n"
ML_SERVICE = "immich-aio-ml"
GATEWAY_SERVICE = "immich-aio-gateway"
UPSTREAM_ML_SERVICE = "immich-machine-learning"
ENV_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
# Values every run sets, and values a first run adds that the user may edit afterwards.
OWNED = ("IMMICH_VERSION",)
ADDED = {
    "IMMICH_MACHINE_LEARNING_URL": f"http://{ML_SERVICE}:3003",
    "IMMICH_AIO_ML_CLIP_MIRROR_URL": "",
}


class ComposeError(RuntimeError):
    """The release's compose files cannot be read or turned into the stack."""


@dataclass(frozen=True)
class ComposeResult:
    compose: Path
    env: Path
    services: list[str]
    kept_env: list[str]
    backup: Path | None

    def to_json(self) -> dict[str, object]:
        return {
            "compose": str(self.compose),
            "env": str(self.env),
            "services": self.services,
            "keptEnv": self.kept_env,
            "backup": str(self.backup) if self.backup else None,
        }


def _services(upstream: dict[str, Any]) -> dict[str, Any]:
    services = upstream.get("services")
    if (
        not isinstance(services, dict)
        or not {"immich-server", UPSTREAM_ML_SERVICE, "database"} <= services.keys()
    ):
        raise ComposeError(
            "the release's docker-compose.yml lacks immich-server, immich-machine-learning or database"
        )
    return services


def _depend(service: dict[str, Any], *names: str) -> None:
    service.setdefault("depends_on", [])
    if isinstance(service["depends_on"], list):
        service["depends_on"].extend(names)


def stack(upstream: dict[str, Any], tag: str, images: dict[str, ImagePlan]) -> dict[str, Any]:
    """Immich's compose document with the patched server, ml_service in front of upstream ML, zhparser DB."""
    services = _services(upstream)
    services["immich-server"]["image"] = images["server"].tag
    services["database"]["image"] = images["postgres"].tag
    return _with_ml_service(upstream, tag, images["ml"])


def gateway_stack(upstream: dict[str, Any], tag: str, ml: ImagePlan) -> dict[str, Any]:
    """Immich's compose document with the official images untouched, ml_service in front of upstream ML, and
    the gateway (the ML image, which carries the whole toolkit) publishing the server's port."""
    services = _services(upstream)
    server = services["immich-server"]
    ports = server.pop("ports", ["2283:2283"])
    # the gateway's settings page decides how Traditional queries are read; the ML service takes them as sent
    ml_environment = {"IMMICH_AIO_ML_CLIP_TEXT_CONVERSION": "off"}
    services[GATEWAY_SERVICE] = {
        "container_name": "immich_aio_gateway",
        "image": ml.tag,
        "command": ["immich-aio", "gateway"],
        "env_file": [".env"],
        "environment": {
            "IMMICH_AIO_GATEWAY_IMMICH_URL": "http://immich-server:2283",
            "IMMICH_AIO_GATEWAY_DB_URL": "postgresql://${DB_USERNAME}:${DB_PASSWORD}@database:5432/${DB_DATABASE_NAME}",
        },
        "ports": ports,
        "depends_on": ["immich-server", "database"],
        "restart": "always",
        "healthcheck": {
            "test": [
                "CMD",
                "python3",
                "-c",
                "import urllib.request,sys; "
                "sys.exit(b'pong' not in urllib.request.urlopen('http://127.0.0.1:2283/api/server/ping').read())",
            ],
            "interval": "30s",
            "timeout": "5s",
            "start_period": "60s",
        },
    }
    return _with_ml_service(upstream, tag, ml, ml_environment)


def _with_ml_service(
    upstream: dict[str, Any], tag: str, ml: ImagePlan, environment: dict[str, str] | None = None
) -> dict[str, Any]:
    services = upstream["services"]
    _depend(services["immich-server"], ML_SERVICE)
    # the upstream ML server keeps serving faces and every non-Chinese model, pinned to the release
    upstream_ml = services[UPSTREAM_ML_SERVICE]
    upstream_ml["image"] = re.sub(r":\$\{IMMICH_VERSION[^}]*\}", f":{tag}", str(upstream_ml["image"]))
    services[ML_SERVICE] = {
        "container_name": "immich_aio_ml",
        "image": ml.tag,
        # No volume: the image carries its models (graphs and OCR), so a new image brings new ones.
        "env_file": [".env"],
        "environment": {
            "IMMICH_AIO_ML_UPSTREAM_URL": f"http://{UPSTREAM_ML_SERVICE}:3003",
            **(environment or {}),
        },
        "depends_on": [UPSTREAM_ML_SERVICE],
        "restart": "always",
        "healthcheck": {"disable": False},
    }
    return upstream


def merged_env(example: str, existing: str | None, tag: str) -> tuple[str, list[str]]:
    """The release's example.env with immich-aio's keys, keeping every value the user set before.

    Returns the text and the names of the keys whose value came from the existing file.
    """
    previous = _values(existing or "")
    kept: list[str] = []
    lines: list[str] = []
    seen: set[str] = set()
    for line in example.splitlines():
        match = ENV_LINE.match(line)
        if not match:
            lines.append(line)
            continue
        key = match.group(1)
        seen.add(key)
        if key in OWNED:
            lines.append(f"{key}={tag}  # set by immich-aio compose: the release of every Immich image")
        elif key in previous:
            lines.append(f"{key}={previous[key]}")
            kept.append(key)
        else:
            lines.append(line)
    lines += [
        "",
        "# immich-aio: Immich talks to immich-aio's ML service, which passes the rest to Immich's own",
    ]
    for key, value in ADDED.items():
        seen.add(key)
        if key in previous:
            kept.append(key)
        lines.append(f"{key}={previous.get(key, value)}")
    extra = [key for key in previous if key not in seen]
    if extra:
        lines += ["", "# kept from the earlier .env"]
        lines += [f"{key}={previous[key]}" for key in extra]
        kept += extra
    return "\n".join(lines) + "\n", kept


def _values(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        match = ENV_LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            value = match.group(2).split("  #", 1)[0].strip()
            values[match.group(1)] = value
    return values


def write_stack(
    tree: Path, tag: str, images: dict[str, ImagePlan], dest: Path, *, gateway: bool = False
) -> ComposeResult:
    """Write DEST/docker-compose.yml and DEST/.env for `tag` from the release's own files in `tree`: the
    patched stack, or with `gateway` the official images behind the gateway (only `images["ml"]` is used)."""
    source_compose, source_env = tree / "docker" / "docker-compose.yml", tree / "docker" / "example.env"
    try:
        upstream = yaml.safe_load(source_compose.read_text(encoding="utf-8"))
        example = source_env.read_text(encoding="utf-8")
    except (OSError, yaml.YAMLError) as error:
        raise ComposeError(f"cannot read the release's compose files in {tree / 'docker'}: {error}") from None
    document = gateway_stack(upstream, tag, images["ml"]) if gateway else stack(upstream, tag, images)
    dest.mkdir(parents=True, exist_ok=True)
    compose, env = dest / "docker-compose.yml", dest / ".env"
    backup = None
    if compose.exists() and not compose.read_text(encoding="utf-8").startswith(HEADER.format(tag="")[:30]):
        backup = compose.with_name("docker-compose.yml.orig")
        compose.replace(backup)
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
    compose.write_text(HEADER.format(tag=tag) + "\n" + body, encoding="utf-8")
    text, kept = merged_env(example, env.read_text(encoding="utf-8") if env.exists() else None, tag)
    env.write_text(text, encoding="utf-8")
    return ComposeResult(compose, env, list(document["services"]), kept, backup)
