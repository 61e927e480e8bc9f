"""The container builders `immich-aio build` drives (docker, podman, buildah): finding one, its commands."""

from __future__ import annotations

import shutil
from typing import Literal

from deploy.images import ImagePlan

Builder = Literal["docker", "podman", "buildah"]
BUILDERS: tuple[Builder, ...] = ("docker", "podman", "buildah")
INSTALL_HINTS: dict[Builder, str] = {
    "docker": "Docker Engine with BuildKit (https://docs.docker.com/engine/install/)",
    "podman": "Podman (Debian/Ubuntu: apt install podman)",
    "buildah": "Buildah (Debian/Ubuntu: apt install buildah); it needs no daemon",
}


class BuilderError(RuntimeError):
    """No usable builder; the message names what to install."""


def find_builder(wanted: Builder | None) -> tuple[Builder, str]:
    """The builder to use and its executable: the one asked for, else the first installed of BUILDERS."""
    for name in (wanted,) if wanted else BUILDERS:
        path = shutil.which(name)
        if path:
            return name, path
    if wanted:
        raise BuilderError(f"{wanted} is not installed (not on PATH); install {INSTALL_HINTS[wanted]}")
    hints = "; or ".join(INSTALL_HINTS[b] for b in BUILDERS)
    raise BuilderError(f"no container builder found (docker, podman or buildah); install one: {hints}")


def build_command(builder: Builder, executable: str, plan: ImagePlan, platform: str | None) -> list[str]:
    """The command that builds `plan`: docker (BuildKit), podman and buildah share these flags."""
    command = [executable, "build", "--file", str(plan.dockerfile), "--tag", plan.tag]
    if plan.target:
        command += ["--target", plan.target]
    if platform:
        command += ["--platform", platform]
    for key, value in plan.build_args.items():
        command += ["--build-arg", f"{key}={value}"]
    for key, value in plan.labels.items():
        command += ["--label", f"{key}={value}"]
    return [*command, str(plan.context)]


def push_command(executable: str, tag: str) -> list[str]:
    return [executable, "push", tag]
