"""The running stack: PostgreSQL, Redis, ml_service and Immich server, each a supervised loopback process."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from e2e.ports import LOOPBACK, PortAllocator
from e2e.postgres import EmbeddedPostgres
from e2e.supervisor import ProcessSpec, Supervisor, http_probe, tcp_probe
from gateway.proxy_config import render as proxy_snippet

IMMICH_DATABASE = "immich"
REDIS_SERVER = "redis-server"


class ServiceError(RuntimeError):
    """A service of the stack cannot be provided (missing program, module or configuration)."""


@dataclass(frozen=True)
class StackOptions:
    """What to run: the built Immich tree, where the run keeps its data, and optional external parts."""

    tree: Path
    node: Path
    run_dir: Path
    build_data: Path
    database_url: str | None = None
    ml_env: Mapping[str, str] = field(default_factory=dict)
    immich_ready_timeout: float = 600.0
    front: Front = "none"


#: What stands in front of the Immich server: nothing, the gateway, or nginx in front of the gateway.
Front = Literal["none", "gateway", "nginx"]


@dataclass
class Stack:
    """Where each running service can be reached; `immich_url` is what clients use (the front, if any)."""

    supervisor: Supervisor
    immich_url: str
    ml_url: str
    database_url: str
    redis_port: int
    media_dir: Path
    server_url: str = ""


def redis_spec(port: int, directory: Path) -> ProcessSpec:
    """Debian's redis-server on loopback only, with its own working dir and no persistence."""
    program = shutil.which(REDIS_SERVER)
    if program is None:
        raise ServiceError("redis-server not found; install Debian's redis-server package")
    directory.mkdir(parents=True, exist_ok=True)
    argv = [
        program, "--bind", LOOPBACK, "--port", str(port), "--dir", str(directory), "--save", "",
        "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no", "--logfile", "",
    ]  # fmt: skip
    return ProcessSpec(
        name="redis",
        argv=argv,
        ready=tcp_probe(LOOPBACK, port, send=b"PING\r\n", expect=b"+PONG"),
        ready_timeout=30,
        stop_timeout=10,
    )


def ml_spec(port: int, env: Mapping[str, str], cli: list[str]) -> ProcessSpec:
    """`immich-aio serve` on loopback; model settings come from `env` (ml_service's own variables)."""
    return ProcessSpec(
        name="ml",
        argv=[*cli, "serve", "--host", LOOPBACK, "--port", str(port)],
        env=dict(env),
        ready=http_probe(f"http://{LOOPBACK}:{port}/ping", contains="pong"),
        ready_timeout=900,  # the first start exports Chinese-CLIP to ONNX (cached afterwards)
        stop_timeout=15,
    )


def immich_env(
    port: int,
    database_url: str,
    redis_port: int,
    ml_url: str,
    media_dir: Path,
    build_data: Path,
    metrics: list[int],
) -> dict[str, str]:
    """The environment Immich's image would get, pointed at our loopback services and directories."""
    return {
        "IMMICH_ENV": "production",
        "NODE_ENV": "production",
        "IMMICH_HOST": LOOPBACK,
        "IMMICH_PORT": str(port),
        "DB_URL": database_url,
        "DB_VECTOR_EXTENSION": "pgvector",
        "REDIS_HOSTNAME": LOOPBACK,
        "REDIS_PORT": str(redis_port),
        "IMMICH_MACHINE_LEARNING_URL": ml_url,
        "IMMICH_MEDIA_LOCATION": str(media_dir),
        "IMMICH_BUILD_DATA": str(build_data),
        "IMMICH_API_METRICS_PORT": str(metrics[0]),
        "IMMICH_MICROSERVICES_METRICS_PORT": str(metrics[1]),
        "IMMICH_LOG_LEVEL": "log",
        "IMMICH_TRUSTED_PROXIES": LOOPBACK,
        "NO_COLOR": "1",
        "TZ": "UTC",
    }


def immich_spec(tree: Path, node: Path, env: Mapping[str, str], ready_timeout: float) -> ProcessSpec:
    """The Immich server (API + microservices workers) as the image starts it: node dist/main.js."""
    main = tree / "server" / "dist" / "main.js"
    if not main.exists():
        raise ServiceError(f"{main} is missing; build the tree first")
    port = env["IMMICH_PORT"]
    return ProcessSpec(
        name="immich",
        argv=[str(node), str(main)],
        cwd=tree / "server",
        env=dict(env),
        ready=http_probe(f"http://{LOOPBACK}:{port}/api/server/ping", contains="pong"),
        ready_timeout=ready_timeout,
        stop_timeout=30,
    )


def start_postgres(supervisor: Supervisor, port: int) -> str:
    """A throwaway PostgreSQL 15 + pgvector cluster (e2e.postgres); returns Immich's DSN.

    The cluster (server and directory) is removed by the supervisor's cleanup, also on failure.
    """
    cluster = EmbeddedPostgres(database=IMMICH_DATABASE, port=port)
    supervisor.add_cleanup("postgres", cluster.stop)
    cluster.start()
    return str(cluster.dsn)


def ensure_database(database_url: str) -> None:
    """Create the database named in database_url when it does not exist (connecting to `postgres`)."""
    params = conninfo_to_dict(database_url)
    name = str(params.get("dbname") or IMMICH_DATABASE)
    admin = make_conninfo(database_url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@dataclass
class Support:
    """The services Immich needs, started once and kept across Immich restarts: database, queue, ML."""

    database_url: str
    redis_port: int
    ml_url: str
    media_dir: Path


def start_support(
    supervisor: Supervisor, ports: PortAllocator, run_dir: Path, ml_env: Mapping[str, str], cli: list[str],
    database_url: str | None = None,
) -> Support:  # fmt: skip
    """PostgreSQL (a throwaway cluster unless `database_url`), Redis and ml_service, each ready in turn."""
    postgres, redis, ml = ports.take_many(3)
    database_url = database_url or start_postgres(supervisor, postgres)
    ensure_database(database_url)
    supervisor.start(redis_spec(redis, run_dir / "redis"))
    supervisor.start(ml_spec(ml, ml_env, cli))
    media = run_dir / "media"
    media.mkdir(parents=True, exist_ok=True)
    return Support(database_url, redis, f"http://{LOOPBACK}:{ml}", media)


def start_immich(
    supervisor: Supervisor, ports: PortAllocator, support: Support, tree: Path, node: Path, build_data: Path,
    ready_timeout: float = 600.0,
) -> str:  # fmt: skip
    """Start the Immich server of `tree` on the support services; returns its URL once it answers."""
    port, metrics_api, metrics_ms = ports.take_many(3)
    env = immich_env(
        port, support.database_url, support.redis_port, support.ml_url, support.media_dir, build_data,
        [metrics_api, metrics_ms],
    )  # fmt: skip
    supervisor.start(immich_spec(tree, node, env, ready_timeout))
    return f"http://{LOOPBACK}:{port}"


def gateway_spec(port: int, immich_url: str, database_url: str, cli: list[str]) -> ProcessSpec:
    """`immich-aio gateway` on loopback in front of the unmodified server."""
    where = ["--immich-url", immich_url, "--db-url", database_url, "--host", LOOPBACK, "--port", str(port)]
    return ProcessSpec(
        name="gateway",
        argv=[*cli, "gateway", *where],
        ready=http_probe(f"http://{LOOPBACK}:{port}/api/server/ping", contains="pong"),
        ready_timeout=60,
        stop_timeout=15,
    )


def write_nginx_conf(directory: Path, snippet: str) -> Path:
    """A self-contained nginx.conf in `directory` (no root paths, logs to stderr) including `snippet`."""
    (directory / "gateway.conf").write_text(snippet, encoding="utf-8")
    conf = directory / "nginx.conf"
    conf.write_text(
        f"daemon off; pid {directory}/nginx.pid; error_log stderr;\n"
        "events {}\n"
        f"http {{ access_log off; client_body_temp_path {directory}/body; proxy_temp_path {directory}/p;\n"
        f"  include {directory}/gateway.conf; }}\n",
        encoding="utf-8",
    )
    return conf


def nginx_spec(port: int, gateway_url: str, directory: Path) -> ProcessSpec:
    """Debian's nginx running `immich-aio gateway config nginx`'s snippet, in front of the gateway."""
    program = shutil.which("nginx") or "/usr/sbin/nginx"
    directory.mkdir(parents=True, exist_ok=True)
    snippet = proxy_snippet("nginx", gateway=gateway_url.removeprefix("http://"), listen=f"{LOOPBACK}:{port}")
    write_nginx_conf(directory, snippet)
    return ProcessSpec(
        name="nginx",
        argv=[program, "-c", str(directory / "nginx.conf")],
        ready=http_probe(f"http://{LOOPBACK}:{port}/api/server/ping", contains="pong"),
        ready_timeout=30,
        stop_timeout=10,
    )


def start_front(
    supervisor: Supervisor, ports: PortAllocator, front: Front, server_url: str, database_url: str,
    cli: list[str], run_dir: Path,
) -> str:  # fmt: skip
    """Start what stands in front of the server; returns the URL clients use."""
    if front == "none":
        return server_url
    gateway_port = ports.take()
    supervisor.start(gateway_spec(gateway_port, server_url, database_url, cli))
    gateway_url = f"http://{LOOPBACK}:{gateway_port}"
    if front == "gateway":
        return gateway_url
    nginx_port = ports.take()
    supervisor.start(nginx_spec(nginx_port, gateway_url, run_dir / "nginx"))
    return f"http://{LOOPBACK}:{nginx_port}"


def start_stack(options: StackOptions, supervisor: Supervisor, ports: PortAllocator, cli: list[str]) -> Stack:
    """Start every service in dependency order; each waits for readiness before the next starts."""
    support = start_support(supervisor, ports, options.run_dir, options.ml_env, cli, options.database_url)
    immich_url = start_immich(
        supervisor,
        ports,
        support,
        options.tree,
        options.node,
        options.build_data,
        options.immich_ready_timeout,
    )
    client_url = start_front(
        supervisor, ports, options.front, immich_url, support.database_url, cli, options.run_dir
    )
    return Stack(
        supervisor=supervisor,
        immich_url=client_url,
        ml_url=support.ml_url,
        database_url=support.database_url,
        redis_port=support.redis_port,
        media_dir=support.media_dir,
        server_url=immich_url,
    )
