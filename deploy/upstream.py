"""Upstream releases that no series serves yet: what the follow-upstream workflow has to look at."""

from __future__ import annotations

from patcher import gitops
from patcher.manifest import Manifest
from patcher.versions import parse, sort_tags


def newest_served(manifest: Manifest, tags: list[str]) -> str | None:
    served = [tag for tag in sort_tags([*tags, *manifest.supported()]) if manifest.series_for(tag)]
    return served[-1] if served else None


def newer_releases(manifest: Manifest, source: str) -> tuple[str | None, list[str]]:
    """(the newest release a series serves, the source's releases newer than it, oldest first)."""
    tags = sort_tags(gitops.remote_release_tags(source))
    newest = newest_served(manifest, tags)
    if newest is None:
        return None, tags
    return newest, [tag for tag in tags if parse(tag) > parse(newest)]
