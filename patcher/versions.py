"""Immich release versions: normalising tags, ordering them, and expanding ranges like v3.0.0..v3.1.0."""

import re

from packaging.version import InvalidVersion, Version

from patcher.errors import UnknownVersion, UsageError

RELEASE_TAG = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


def normalize(version: str) -> str:
    """Return the release tag ("v3.1.0") for "3.1.0" or "v3.1.0"; raise UsageError otherwise."""
    match = RELEASE_TAG.match(version.strip())
    if not match:
        raise UsageError(f"{version!r} is not an Immich release number (expected something like v3.1.0)")
    return "v" + ".".join(match.groups())


def parse(tag: str) -> Version:
    try:
        return Version(normalize(tag)[1:])
    except InvalidVersion as error:  # pragma: no cover - normalize already validated the shape
        raise UsageError(str(error)) from error


def sort_tags(tags: list[str]) -> list[str]:
    """Release tags only, oldest first, without duplicates."""
    releases = {normalize(t) for t in tags if RELEASE_TAG.match(t.strip())}
    return sorted(releases, key=parse)


def expand(expression: str, available: list[str]) -> list[str]:
    """Expand "v3.0.0..v3.1.0" (inclusive), "v3.0.0,v3.0.2" or a single tag against the available tags.

    Ranges enumerate the available releases between the bounds; listed versions are taken as given,
    so a release the source lacks is reported by the caller rather than dropped silently.
    """
    ordered = sort_tags(available)
    result: list[str] = []
    for part in (p.strip() for p in expression.split(",")):
        if not part:
            continue
        if ".." in part:
            low_text, _, high_text = part.partition("..")
            low = parse(low_text) if low_text.strip() else None
            high = parse(high_text) if high_text.strip() else None
            if low and high and low > high:
                raise UsageError(f"empty range {part!r}: {low_text} is newer than {high_text}")
            result += [
                t for t in ordered if (low is None or parse(t) >= low) and (high is None or parse(t) <= high)
            ]
        else:
            result.append(normalize(part))
    if not result:
        raise UsageError(f"{expression!r} names no release")
    return sort_tags(result)


SPELLING = re.compile(r"^v?(\d+)(?:\.(\d+|x))?(?:\.x)?$")


def resolve_release(spelling: str, served: list[str]) -> str:
    """The release a person means: "v3.1.0" / "3.1.0" as given, "latest" the newest served, "v2" or "v1.x"
    the newest served of that major line, "v2.7" the newest served of that minor."""
    text = spelling.strip().lower()
    if RELEASE_TAG.match(text):
        return normalize(text)
    ordered = sort_tags(served)
    if text == "latest":
        candidates = ordered
    else:
        match = SPELLING.match(text)
        if not match:
            raise UnknownVersion(spelling, ordered)
        major, minor = match.group(1), match.group(2)
        prefix = f"v{major}." if minor in (None, "x") else f"v{major}.{minor}."
        candidates = [t for t in ordered if t.startswith(prefix)]
    if not candidates:
        raise UnknownVersion(spelling, ordered)
    return candidates[-1]
