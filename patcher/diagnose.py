"""Explains why a patch does not apply: which hunks no longer match and what upstream has instead."""

from pathlib import Path

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchedFile, PatchSet

from patcher.errors import HunkConflict


def strip_prefix(path: str) -> str:
    return path[2:] if path.startswith(("a/", "b/")) else path


def parse_patch(text: str) -> PatchSet:
    return PatchSet(text.splitlines(keepends=True))


def touched_paths(text: str) -> set[str]:
    """Every path a patch reads or writes (both sides of renames; not /dev/null)."""
    paths = set()
    for patched in parse_patch(text):
        for name in (patched.source_file, patched.target_file):
            if name and name != "/dev/null":
                paths.add(strip_prefix(name))
    return paths


def _best_window(current: list[str], expected: list[str], hint: int) -> tuple[int, list[str]]:
    """The window of `current` that shares the most lines with `expected` (ties: nearest to `hint`)."""
    size = max(len(expected), 1)
    wanted = {line.strip() for line in expected if line.strip()}
    best_start, best_score = max(0, min(hint, len(current) - size)), -1
    anchors = {i for i, line in enumerate(current) if line.strip() in wanted}
    for anchor in anchors:
        for start in range(max(0, anchor - size + 1), min(anchor, len(current) - 1) + 1):
            window = current[start : start + size]
            score = sum(1 for a, b in zip(window, expected, strict=False) if a == b)
            if score > best_score or (score == best_score and abs(start - hint) < abs(best_start - hint)):
                best_start, best_score = start, score
    return best_start, current[best_start : best_start + size]


def _file_conflicts(tree: Path, patch_name: str, patched: PatchedFile) -> list[HunkConflict]:
    path = strip_prefix(patched.source_file if not patched.is_added_file else patched.target_file)
    target = tree / path
    if patched.is_added_file:
        if target.exists():
            return [
                HunkConflict(patch_name, path, "(new file)", reason="the patch creates it, but it exists")
            ]
        return []
    if not target.is_file():
        return [HunkConflict(patch_name, path, "(whole file)", reason="the file no longer exists upstream")]
    current = target.read_text(encoding="utf-8", errors="replace").splitlines()
    found = []
    for hunk in patched:
        expected = [line.value.rstrip("\r\n") for line in hunk if line.is_context or line.is_removed]
        if _contains(current, expected):
            continue
        header = f"@@ -{hunk.source_start},{hunk.source_length} +{hunk.target_start},{hunk.target_length} @@"
        start, window = _best_window(current, expected, hunk.source_start - 1)
        found.append(
            HunkConflict(
                patch_name,
                path,
                header + (f" {hunk.section_header}" if hunk.section_header else ""),
                expected=expected,
                found=window,
                found_at=start + 1 if window else None,
                reason="these upstream lines no longer match",
            )
        )
    return found


def _contains(lines: list[str], block: list[str]) -> bool:
    if not block:
        return True
    first = block[0]
    return any(lines[i : i + len(block)] == block for i, line in enumerate(lines) if line == first)


def explain(tree: Path, patch_name: str, text: str) -> list[HunkConflict]:
    """Hunk-level reasons a patch fails against the tree as it is now."""
    try:
        patch_set = parse_patch(text)
    except UnidiffParseError as error:
        return [HunkConflict(patch_name, "-", "-", reason=f"the patch file does not parse: {error}")]
    conflicts: list[HunkConflict] = []
    for patched in patch_set:
        conflicts += _file_conflicts(tree, patch_name, patched)
    return conflicts
