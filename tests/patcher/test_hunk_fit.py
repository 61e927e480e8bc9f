"""A diff made on a line's base fitted to another release: outer context trimmed only where it differs."""

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from patcher import hunk_fit
from patcher.errors import PatcherError

BASE = [f"line {n}\n" for n in range(1, 21)]


def repo(tmp_path: Path, name: str, lines: list[str]) -> Path:
    tree = tmp_path / name
    tree.mkdir()
    (tree / "sdk.ts").write_text("".join(lines))
    subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
    return tree


def takes(tree: Path) -> Callable[[str], bool]:
    def applies(text: str) -> bool:
        done = subprocess.run(
            ["git", "apply", "--check", "-"], cwd=tree, input=text, text=True, capture_output=True
        )
        return done.returncode == 0

    return applies


def base_diff(tmp_path: Path) -> str:
    """Two hunks made on the base: an insertion after line 5 and one after line 15."""
    tree = repo(tmp_path, "made", BASE)
    subprocess.run(["git", "add", "-A"], cwd=tree, check=True)
    edited = [*BASE[:5], "ocr 1\n", *BASE[5:15], "ocr 2\n", *BASE[15:]]
    (tree / "sdk.ts").write_text("".join(edited))
    diff = subprocess.run(["git", "diff"], cwd=tree, capture_output=True, text=True, check=True).stdout
    return "Description: generated\n---\n" + diff


def test_a_release_differing_at_a_hunks_edge_gets_that_context_trimmed(tmp_path: Path) -> None:
    diff = base_diff(tmp_path)
    older = BASE.copy()
    older[7] = "line 8 as the older release has it\n"  # the third trailing context line of the first hunk
    fitted = hunk_fit.fit(diff, takes(repo(tmp_path, "older", older)), "v1.140.0")
    first, second = fitted.split("@@ -")[1:]
    assert first.startswith("3,5 +3,6 @@") and "line 8" not in first and "line 7\n" in first
    assert "@@ -" + second in diff, "the hunk the release takes keeps its text byte for byte"
    assert takes(repo(tmp_path, "base", BASE))(fitted), "the base still takes it"
    assert hunk_fit.fit(diff, takes(repo(tmp_path, "same", BASE)), "v1.142.1") == diff


def test_a_release_differing_next_to_the_change_is_an_error(tmp_path: Path) -> None:
    diff = base_diff(tmp_path)
    older = BASE.copy()
    older[4] = "line 5 rewritten\n"  # the context line right above the first insertion
    with pytest.raises(PatcherError, match=r"v1\.140\.0: hunk 1 of sdk\.ts .* one line of context"):
        hunk_fit.fit(diff, takes(repo(tmp_path, "older", older)), "v1.140.0")
