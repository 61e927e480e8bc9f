"""Records and recomputes the git tree of every served release after `patch`: the patch store's invariant.

Run as `python -m tests.patcher.tree_hashes SOURCE [VERSIONS]` to (re)write
tests/patcher/data/patched-trees.toml; do that only when a change to what the series put into a tree is meant
(the file is the reference the store's refactorings are held to).
"""

import sys
import tempfile
import tomllib
from pathlib import Path

from patcher import engine, gitops, manifest
from patcher.versions import expand

RECORD = Path(__file__).parent / "data" / "patched-trees.toml"


def patched_tree(source: str, tag: str, workdir: Path) -> str:
    """`git add -A && git write-tree` of `tag` cloned from `source` and patched by this checkout's store."""
    shipped = manifest.load()
    tag, series = shipped.resolve(tag)
    tree = gitops.clone_release(source, tag, workdir / tag)
    engine.apply_series(tree, series, tag, shipped.root, source=source)
    gitops.run(tree, "add", "-A")
    return gitops.run(tree, "write-tree").stdout.strip()


def recorded() -> dict[str, str]:
    return dict(tomllib.loads(RECORD.read_text(encoding="utf-8"))["trees"])


def main(argv: list[str]) -> None:
    source = argv[0]
    shipped = manifest.load()
    tags = expand(argv[1], shipped.supported()) if len(argv) > 1 else shipped.supported()
    trees = recorded() if RECORD.is_file() else {}
    for tag in tags:
        with tempfile.TemporaryDirectory(prefix="immich-aio-tree-") as workdir:
            trees[tag] = patched_tree(source, tag, Path(workdir))
        print(tag, trees[tag], flush=True)
    ordered = sorted(trees, key=lambda t: tuple(int(n) for n in t[1:].split(".")))
    lines = [
        "# The git tree (`git add -A && git write-tree`) of each served release after `immich-aio patch`.",
        "# Written by `python -m tests.patcher.tree_hashes SOURCE`;",
        "# tests/patcher/test_tree_invariant.py holds the patch store to it.",
        "[trees]",
        *(f'"{tag}" = "{trees[tag]}"' for tag in ordered),
    ]
    RECORD.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
