"""A small Immich-shaped release tree (compose files, server Dockerfile) as a git checkout."""

import subprocess
from pathlib import Path

import pytest

COMPOSE = """\
name: immich

services:
  immich-server:
    container_name: immich_server
    image: ghcr.io/immich-app/immich-server:${IMMICH_VERSION:-release}
    volumes:
      - ${UPLOAD_LOCATION}:/data
    env_file:
      - .env
    ports:
      - '2283:2283'
    depends_on:
      - redis
      - database
    restart: always

  immich-machine-learning:
    container_name: immich_machine_learning
    image: ghcr.io/immich-app/immich-machine-learning:${IMMICH_VERSION:-release}
    volumes:
      - model-cache:/cache
    env_file:
      - .env
    restart: always

  redis:
    container_name: immich_redis
    image: docker.io/valkey/valkey:9
    restart: always

  database:
    container_name: immich_postgres
    image: ghcr.io/immich-app/postgres:14-vectorchord0.4.3-pgvectors0.2.0@sha256:0123
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD}
    volumes:
      - ${DB_DATA_LOCATION}:/var/lib/postgresql/data
    restart: always

volumes:
  model-cache:
"""
EXAMPLE_ENV = """\
# where uploads go
UPLOAD_LOCATION=./library
DB_DATA_LOCATION=./postgres
IMMICH_VERSION=v3
DB_PASSWORD=postgres
DB_USERNAME=postgres
DB_DATABASE_NAME=immich
"""


@pytest.fixture
def release_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "immich-v3.1.0"
    (tree / "docker").mkdir(parents=True)
    (tree / "server").mkdir()
    (tree / "docker" / "docker-compose.yml").write_text(COMPOSE)
    (tree / "docker" / "example.env").write_text(EXAMPLE_ENV)
    (tree / "server" / "Dockerfile").write_text("FROM scratch\n")
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "v3.1.0"]):
        subprocess.run(["git", *args], cwd=tree, env={**env, "PATH": "/usr/bin:/bin"}, check=True)
    return tree
