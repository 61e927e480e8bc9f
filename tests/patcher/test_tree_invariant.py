"""The patch store's invariant: every served release patched is, byte for byte, the tree recorded for it.

Opt-in with IMMICH_SOURCE (a tagged Immich upstream). A CI-sized subset runs by default (the base of every
series); IMMICH_AIO_ALL_RELEASES=1 runs all served releases.
"""

import os
from pathlib import Path

import pytest

from patcher import manifest
from tests.patcher.tree_hashes import patched_tree, recorded

IMMICH_SOURCE = os.environ.get("IMMICH_SOURCE")
SHIPPED = manifest.load()
RELEASES = (
    SHIPPED.supported()
    if os.environ.get("IMMICH_AIO_ALL_RELEASES")
    else sorted({s.base for s in SHIPPED.series})
)


def test_every_served_release_has_a_recorded_tree() -> None:
    assert set(recorded()) == set(SHIPPED.supported())


@pytest.mark.skipif(not IMMICH_SOURCE, reason="set IMMICH_SOURCE to a local Immich upstream")
@pytest.mark.parametrize("tag", RELEASES)
def test_patched_tree_is_the_recorded_one(tag: str, tmp_path: Path) -> None:
    assert IMMICH_SOURCE
    assert patched_tree(IMMICH_SOURCE, tag, tmp_path) == recorded()[tag]
