"""Fits a diff made on one release to another: a hunk's outer context is trimmed where that release differs.

A generated edit is made on its line's base, but every release of the line takes it. Where a release's file
differs from the base's only in a context line at the edge of a hunk (v1.140's `SmartSearchDto` declares
`query: string`, v1.142's `query?: string`), dropping that line lets the hunk apply to both; a hunk that
still does not apply with one line of context at each end is a real difference and an error. Hunks that
need no trimming keep their text byte for byte.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from patcher.errors import PatcherError
from patcher.store import split_patch

HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$")


@dataclass(frozen=True)
class Hunk:
    header: str
    lines: tuple[str, ...]

    def text(self) -> str:
        return self.header + "".join(self.lines)

    def outer_context(self) -> tuple[int, int]:
        """How many context lines lead and trail the hunk's changes."""
        changes = [i for i, line in enumerate(self.lines) if not line.startswith(" ")]
        return changes[0], len(self.lines) - 1 - changes[-1]

    def trimmed(self, leading: int, trailing: int) -> "Hunk":
        """The hunk without its first `leading` and last `trailing` lines (both context)."""
        match = HUNK_HEADER.match(self.header.rstrip("\n"))
        if match is None:
            raise PatcherError(f"not a hunk header: {self.header.strip()}")
        lines = self.lines[leading : len(self.lines) - trailing]
        old = sum(1 for line in lines if line.startswith((" ", "-")))
        new = sum(1 for line in lines if line.startswith((" ", "+")))
        old_start, new_start = int(match.group(1)) + leading, int(match.group(2)) + leading
        return Hunk(f"@@ -{old_start},{old} +{new_start},{new} @@{match.group(3)}\n", lines)


def split_section(text: str) -> tuple[str, list[Hunk]]:
    """A file's section of a diff: its head (`diff --git` … `+++`) and its hunks."""
    head: list[str] = []
    hunks: list[tuple[str, list[str]]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("@@"):
            hunks.append((line, []))
        elif hunks:
            hunks[-1][1].append(line)
        else:
            head.append(line)
    return "".join(head), [Hunk(header, tuple(lines)) for header, lines in hunks]


def trims(hunk: Hunk) -> list[tuple[int, int]]:
    """The (leading, trailing) trims to try, fewest lines first, the trailing end first on a tie; at least
    one context line stays at each end."""
    leading, trailing = hunk.outer_context()
    options = [(lead, trail) for lead in range(max(leading, 1)) for trail in range(max(trailing, 1))]
    return sorted(options, key=lambda option: (option[0] + option[1], option[0]))


def fit(diff: str, applies: Callable[[str], bool], where: str) -> str:
    """`diff` with each hunk that `applies` (a patch text -> whether the release takes it) refuses trimmed
    to the least outer context it takes."""
    parsed = split_patch(diff)
    sections = []
    for section in parsed.sections:
        head, hunks = split_section(section.text)
        fitted = []
        for number, hunk in enumerate(hunks, start=1):
            for leading, trailing in trims(hunk):
                candidate = hunk.trimmed(leading, trailing) if leading or trailing else hunk
                if applies(head + candidate.text()):
                    fitted.append(candidate)
                    break
            else:
                raise PatcherError(
                    f"{where}: hunk {number} of {section.path} ({hunk.header.strip()}) does not apply even "
                    "with one line of context at each end: the release differs inside it"
                )
        sections.append(head + "".join(h.text() for h in fitted))
    return parsed.header + "".join(sections)
