"""Checks a build context before building: every path a Dockerfile copies or bind-mounts must exist in it."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

_INSTRUCTION = re.compile(r"^\s*(COPY|ADD|RUN)\s+(.*)$", re.IGNORECASE)
_BIND = re.compile(r"--mount=(?:[^\s]*,)?type=bind(?:,[^\s]*)?")


@dataclass(frozen=True)
class MissingSource:
    line: int
    instruction: str
    path: str


def logical_lines(text: str) -> list[tuple[int, str]]:
    """The Dockerfile's instructions with continuation lines joined, each with its first line number."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append((start, pending + stripped))
        pending = ""
    return lines


def sources(instruction: str, arguments: str) -> list[str]:
    """The context paths an instruction reads: COPY/ADD sources (not from a stage or URL), RUN bind mounts."""
    if instruction.upper() == "RUN":
        found = []
        for mount in _BIND.findall(arguments):
            parts = mount.removeprefix("--mount=").split(",")
            fields = dict(part.split("=", 1) for part in parts if "=" in part)
            if "from" not in fields and "source" in fields:
                found.append(fields["source"])
        return found
    words = shlex.split(arguments)
    if any(word.startswith("--from=") for word in words):
        return []
    paths = [word for word in words if not word.startswith("--")]
    return [path for path in paths[:-1] if "://" not in path]


def missing_sources(dockerfile: Path, context: Path) -> list[MissingSource]:
    """Every COPY/ADD source or RUN bind-mount source of `dockerfile` that `context` does not hold."""
    missing = []
    for number, line in logical_lines(dockerfile.read_text(encoding="utf-8")):
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        for path in sources(match.group(1), match.group(2)):
            relative = path[2:] if path.startswith("./") else path.lstrip("/")
            if not (context / relative).exists() and not any(context.glob(relative or ".")):
                missing.append(MissingSource(number, match.group(1).upper(), path))
    return missing
