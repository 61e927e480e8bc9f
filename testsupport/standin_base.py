"""Stand-in base images for real image builds where no registry can be reached: a debootstrapped Debian.

Only the ML image's base (debian:bookworm-slim) has a stand-in: Debian's own archive builds it. Immich's
server and PostgreSQL bases are Immich's own images, which nothing here can stand in for.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

DEBIAN_MIRROR = "http://deb.debian.org/debian"
STANDIN_BASES = {"docker.io/library/debian:bookworm-slim": "bookworm"}
SHELL_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# This machine reaches PyPI through a TLS-inspecting proxy whose CA lives here; the image's
# ca-certificates package adds what it finds in the folder when the Dockerfile installs it.
LOCAL_CAS = Path("/usr/local/share/ca-certificates")


class StandinError(RuntimeError):
    """The stand-in base could not be made; the message says which step failed."""


def buildah(*args: str, capture: bool = True) -> str:
    result = subprocess.run(["buildah", *args], capture_output=capture, text=True, check=False)
    if result.returncode != 0:
        raise StandinError(f"buildah {' '.join(args)} failed: {(result.stderr or '').strip()}")
    return (result.stdout or "").strip()


def has_image(name: str) -> bool:
    result = subprocess.run(["buildah", "inspect", "--type", "image", name], capture_output=True, check=False)
    return result.returncode == 0


def debootstrapped(suite: str, cache: Path) -> Path:
    """A minbase root file system of `suite`, made once and kept under `cache`."""
    root = cache / suite
    if (root / "etc" / "debian_version").is_file():
        return root
    partial = cache / f"{suite}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    command = ["debootstrap", "--variant=minbase", suite, str(partial), DEBIAN_MIRROR]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StandinError(f"debootstrap {suite} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    partial.replace(root)
    return root


def ensure_standin_base(name: str, cache: Path) -> None:
    """Make `name` resolvable by buildah from a debootstrapped root, unless an image of that name exists."""
    if has_image(name):
        return
    if name not in STANDIN_BASES:
        raise StandinError(f"no stand-in for {name}: only {', '.join(STANDIN_BASES)}")
    root = debootstrapped(STANDIN_BASES[name], cache)
    container = buildah("from", "scratch")
    try:
        mount = Path(buildah("mount", container))
        copied = subprocess.run(["cp", "-a", f"{root}{os.sep}.", str(mount)], capture_output=True, text=True)
        if copied.returncode != 0:
            raise StandinError(f"copying {root} into the image failed: {copied.stderr.strip()}")
        # like the slim image: no package cache, lists, documentation or translations
        for folder in (
            "var/cache/apt/archives",
            "var/lib/apt/lists",
            "usr/share/doc",
            "usr/share/man",
            "usr/share/locale",
        ):
            for child in (mount / folder).glob("*"):
                if child.is_file() or child.is_symlink():
                    child.unlink()
                elif child.is_dir() and child.name != "partial":
                    shutil.rmtree(child)
        if LOCAL_CAS.is_dir():
            target = mount / LOCAL_CAS.relative_to("/")
            target.mkdir(parents=True, exist_ok=True)
            for certificate in LOCAL_CAS.glob("*.crt"):
                shutil.copy2(certificate, target / certificate.name)
        buildah("umount", container)
        buildah("config", "--env", SHELL_PATH, "--cmd", "bash", container)
        buildah("commit", "--quiet", container, name)
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
