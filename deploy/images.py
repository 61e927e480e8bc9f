"""What each image is built from: Dockerfile, context, tag, build arguments, OCI labels (no building here)."""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Literal

import yaml

from patcher import placement
from patcher.manifest import Series

ImageName = Literal["server", "ml", "postgres"]
IMAGES: tuple[ImageName, ...] = ("server", "ml", "postgres")
DEFAULT_PREFIX = "immich-aio"
LABEL_PREFIX = "io.immich-aio"
UPSTREAM_SOURCE = "https://github.com/immich-app/immich"


class PlanError(RuntimeError):
    """An image cannot be planned: a missing Dockerfile, tree or source folder; the message says which."""


@dataclass(frozen=True)
class ImagePlan:
    """One image build: `docker build -f dockerfile [--target] --build-arg … --label … -t tag context`."""

    image: ImageName
    tag: str
    dockerfile: Path
    context: Path
    build_args: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "image": self.image,
            "tag": self.tag,
            "dockerfile": str(self.dockerfile),
            "context": str(self.context),
            "target": self.target,
            "buildArgs": self.build_args,
            "labels": self.labels,
        }


def product_version() -> str:
    return metadata.version("immich-aio")


def series_digest(series: Series, tag: str, root: Path) -> str:
    """A short hash of everything the series puts into the `tag` tree: its diffs and its placed files."""
    digest = hashlib.sha256()
    for patch in series.patches(tag):
        digest.update(patch.name.encode() + b"\0" + patch.path.read_bytes())
    placed = placement.digests(series.placements(root, tag), root, placement.template_context(tag, series))
    for dest, sha in sorted(placed.items()):
        digest.update(f"{dest}\0{sha}\0".encode())
    return digest.hexdigest()[:10]


def server_plan(tree: Path, tag: str, series: Series, root: Path, prefix: str, commit: str) -> ImagePlan:
    """The patched server, built by the release's own server/Dockerfile from the patched tree (web app in)."""
    dockerfile = tree / "server" / "Dockerfile"
    if not dockerfile.is_file():
        raise PlanError(f"{dockerfile} not found: is {tree} an Immich checkout of {tag}?")
    digest = series_digest(series, tag, root)
    image_tag = f"{prefix}/immich-server:{tag}-aio.{digest}"
    patches = ",".join(p.name for p in series.patches(tag))
    return ImagePlan(
        image="server",
        tag=image_tag,
        dockerfile=dockerfile,
        context=tree,
        build_args={
            "BUILD_ID": f"immich-aio-{digest}",
            "BUILD_IMAGE": image_tag,
            "BUILD_SOURCE_REF": tag,
            "BUILD_SOURCE_COMMIT": commit,
        },
        labels={
            "org.opencontainers.image.title": "immich-server (immich-aio)",
            "org.opencontainers.image.description": "Immich server patched by immich-aio for Chinese search",
            "org.opencontainers.image.version": f"{tag}-aio.{digest}",
            "org.opencontainers.image.source": UPSTREAM_SOURCE,
            "org.opencontainers.image.revision": commit,
            f"{LABEL_PREFIX}.upstream-release": tag,
            f"{LABEL_PREFIX}.series": series.name,
            f"{LABEL_PREFIX}.series-digest": digest,
            f"{LABEL_PREFIX}.patches": patches,
            f"{LABEL_PREFIX}.version": product_version(),
        },
    )


ML_BASES = {"cpu": "debian:bookworm-slim", "cuda": "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04"}
ML_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider,CPUExecutionProvider"}


def cn_clip_requirement() -> str:
    """The cn_clip pin of the `ml` extra (pyproject.toml is its one home)."""
    for requirement in metadata.requires("immich-aio") or []:
        name = re.split(r"[<>=!~;\s\[]", requirement, maxsplit=1)[0]
        if name.lower().replace("_", "-") == "cn-clip":
            return requirement.split(";", 1)[0].strip()
    raise PlanError("the immich-aio package names no cn_clip requirement (reinstall it from source)")


def ml_context_steps(
    source: Path, context: Path, models: list[str], graphs: Literal["served", "all"] = "served"
) -> list[list[str]]:
    """What the ML image's build context is made of: the product's wheel and the exported graphs."""
    if not (source / "pyproject.toml").is_file():
        raise PlanError(f"{source} is not the immich-aio source repository: the ML image is built from it")
    return [
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(context / "wheel"),
            str(source),
        ],
        [
            sys.executable,
            "-m",
            "immich_aio",
            "models",
            "export",
            *models,
            "--to",
            str(context / "models"),
            "--graphs",
            graphs,
        ],
    ]


def ml_plan(source: Path, prefix: str, context: Path, variant: Literal["cpu", "cuda"] = "cpu") -> ImagePlan:
    """The ML service: torch-free, serving graphs exported into its build context beforehand."""
    dockerfile = source / "ml_service" / "Dockerfile"
    if not dockerfile.is_file():
        raise PlanError(
            f"{dockerfile} not found: building the ML image needs the immich-aio source repository"
        )
    version = product_version()
    suffix = "" if variant == "cpu" else f"-{variant}"
    return ImagePlan(
        image="ml",
        tag=f"{prefix}/immich-aio-ml:{version}{suffix}",
        dockerfile=dockerfile,
        context=context,
        build_args={
            "BASE": ML_BASES[variant],
            "VARIANT": variant,
            "PROVIDERS": ML_PROVIDERS[variant],
            "CN_CLIP": cn_clip_requirement(),
        },
        labels={
            "org.opencontainers.image.title": "immich-aio-ml",
            "org.opencontainers.image.description": "Immich ML: Chinese-CLIP and RapidOCR on ONNX Runtime",
            "org.opencontainers.image.version": version,
            f"{LABEL_PREFIX}.variant": variant,
            f"{LABEL_PREFIX}.version": version,
        },
    )


def release_postgres_image(tree: Path) -> str:
    """The PostgreSQL image the release's own docker/docker-compose.yml pins for its database."""
    compose = tree / "docker" / "docker-compose.yml"
    try:
        services = yaml.safe_load(compose.read_text(encoding="utf-8"))["services"]
        return str(services["database"]["image"])
    except (OSError, KeyError, TypeError, yaml.YAMLError) as error:
        raise PlanError(f"cannot read the database image from {compose}: {error}") from None


def postgres_plan(source: Path, tree: Path, prefix: str) -> ImagePlan:
    """Immich's own PostgreSQL image of that release plus zhparser (db_extension/docker/Dockerfile)."""
    dockerfile = source / "db_extension" / "docker" / "Dockerfile"
    if not dockerfile.is_file():
        raise PlanError(f"{dockerfile} not found: building the database image needs the immich-aio source")
    base = release_postgres_image(tree)
    match = re.search(r":([\w.-]+)", base.split("/")[-1])
    flavour = match.group(1) if match else "latest"
    return ImagePlan(
        image="postgres",
        tag=f"{prefix}/immich-aio-postgres:{flavour}-zhparser",
        dockerfile=dockerfile,
        context=dockerfile.parent,
        build_args={"IMMICH_POSTGRES": base},
        labels={
            "org.opencontainers.image.title": "immich-aio-postgres",
            "org.opencontainers.image.description": "Immich's PostgreSQL image with zhparser for immich-aio",
            f"{LABEL_PREFIX}.base-image": base,
            f"{LABEL_PREFIX}.version": product_version(),
        },
    )
