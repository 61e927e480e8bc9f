"""The build context holds every path the Dockerfile copies or bind-mounts; on a real patched tree too."""

import os
from pathlib import Path

import pytest

from deploy.context import logical_lines, missing_sources
from patcher import engine, gitops, manifest

DOCKERFILE = """\
FROM base AS builder
COPY ./server ./server/
COPY --from=builder /out /out
RUN --mount=type=cache,id=x,target=/cache \\
  --mount=type=bind,source=package.json,target=package.json \\
  --mount=type=bind,source=.pnpmfile.cjs,target=.pnpmfile.cjs \\
  echo build
ADD https://example.com/file /file
COPY LICENSE missing.txt /licenses/
"""


def test_every_source_is_found_or_reported(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    for name in ("package.json", ".pnpmfile.cjs", "LICENSE"):
        (tmp_path / name).write_text("x")
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    missing = missing_sources(tmp_path / "Dockerfile", tmp_path)
    assert [(m.line, m.instruction, m.path) for m in missing] == [(9, "COPY", "missing.txt")]
    assert [number for number, _ in logical_lines(DOCKERFILE)] == [1, 2, 3, 4, 8, 9]


IMMICH_SOURCE = os.environ.get("IMMICH_SOURCE")


@pytest.mark.immich_source
@pytest.mark.skipif(not IMMICH_SOURCE, reason="set IMMICH_SOURCE to a local Immich upstream")
def test_the_patched_tree_is_a_complete_context_for_the_releases_server_image(tmp_path: Path) -> None:
    assert IMMICH_SOURCE
    shipped = manifest.load(Path(__file__).resolve().parents[2])
    tag, series = shipped.resolve(shipped.series[-1].base)
    tree = gitops.clone_release(IMMICH_SOURCE, tag, tmp_path / "immich")
    engine.apply_series(tree, series, tag, shipped.root, source=IMMICH_SOURCE)
    assert missing_sources(tree / "server" / "Dockerfile", tree) == []
