"""Errors the patch engine raises: each carries a message a person can act on."""

from dataclasses import dataclass, field


class PatcherError(Exception):
    """Base class: `str(error)` is the full human-readable message."""

    exit_code = 1


class UsageError(PatcherError):
    """The request itself is wrong (unknown version, bad range, missing directory)."""

    exit_code = 2


class UnknownVersion(UsageError):
    def __init__(self, version: str, supported: list[str]) -> None:
        listing = ", ".join(supported) if supported else "(none)"
        super().__init__(f"Immich version {version!r} is not supported. Supported versions: {listing}")
        self.version = version
        self.supported = supported


class NotACheckout(UsageError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path} is not an Immich git checkout: {reason}")


class DirtyTree(PatcherError):
    def __init__(self, files: list[str]) -> None:
        shown = "\n".join(f"  {f}" for f in files[:50])
        more = f"\n  … and {len(files) - 50} more" if len(files) > 50 else ""
        super().__init__(
            f"the checkout has uncommitted changes; commit or stash them, or pass --force:\n{shown}{more}"
        )
        self.files = files


class GitError(PatcherError):
    def __init__(self, command: list[str], output: str) -> None:
        super().__init__(f"git {' '.join(command)} failed:\n{output.strip()}")
        self.command = command
        self.output = output


@dataclass
class HunkConflict:
    """One hunk that no longer fits: what the patch expected and what upstream has there now."""

    patch: str
    file: str
    hunk: str
    expected: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    found_at: int | None = None
    reason: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "patch": self.patch,
            "file": self.file,
            "hunk": self.hunk,
            "expected": self.expected,
            "found": self.found,
            "foundAt": self.found_at,
            "reason": self.reason,
        }

    def describe(self) -> str:
        lines = [f"{self.patch}: {self.file} hunk {self.hunk}"]
        if self.reason:
            lines.append(f"  {self.reason}")
        if self.expected:
            lines.append("  the patch expects:")
            lines += [f"    | {line}" for line in self.expected]
        if self.found:
            where = f" (near line {self.found_at})" if self.found_at else ""
            lines.append(f"  upstream now has{where}:")
            lines += [f"    | {line}" for line in self.found]
        return "\n".join(lines)


class PatchConflict(PatcherError):
    def __init__(self, patch: str, conflicts: list[HunkConflict], git_output: str = "") -> None:
        body = "\n".join(c.describe() for c in conflicts) or git_output.strip()
        super().__init__(f"patch {patch} does not apply; the checkout was left unchanged.\n{body}")
        self.patch = patch
        self.conflicts = conflicts
        self.git_output = git_output
