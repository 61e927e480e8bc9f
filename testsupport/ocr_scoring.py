"""Score OCR answers against gold lines: 1 − CER in reading order, lines read exactly, order as returned."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import opencc

_TO_SIMPLIFIED = opencc.OpenCC("t2s")
_VERTICAL = 1.5


def normalise(text: str, fold_script: bool = False) -> str:
    """NFKC (full-width ¥ and ： are the same characters as ¥ and :), no whitespace, optionally Simplified."""
    text = "".join(unicodedata.normalize("NFKC", text).split())
    return str(_TO_SIMPLIFIED.convert(text)) if fold_script else text


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def rebuilt_order(boxes: Sequence[float]) -> list[int]:
    """Reading order from the boxes alone (x1,y1,…,x4,y4 per line), whatever order a server returned.

    Horizontal lines top to bottom, grouped into one line when their centres are within half a line
    height, left to right inside; vertical columns (1.5× taller than wide) right to left.
    """
    count = len(boxes) // 8
    quads = [boxes[8 * i : 8 * i + 8] for i in range(count)]
    xs = [q[0::2] for q in quads]
    ys = [q[1::2] for q in quads]
    width = [max(x) - min(x) for x in xs]
    height = [max(y) - min(y) for y in ys]
    cx = [sum(x) / 4 for x in xs]
    cy = [sum(y) / 4 for y in ys]
    vertical = [i for i in range(count) if height[i] >= _VERTICAL * width[i]]
    horizontal = [i for i in range(count) if i not in vertical]
    rows: list[list[int]] = []
    for i in sorted(horizontal, key=lambda i: cy[i]):
        if rows:
            row = rows[-1]
            centre = sum(cy[j] for j in row) / len(row)
            size = min(height[i], sum(height[j] for j in row) / len(row))
            if abs(cy[i] - centre) < 0.5 * size:
                row.append(i)
                continue
        rows.append([i])
    ordered = [i for row in rows for i in sorted(row, key=lambda i: cx[i])]
    return ordered + sorted(vertical, key=lambda i: -cx[i])


@dataclass
class Tally:
    """Running totals of one class (or of all images)."""

    images: int = 0
    gold_chars: int = 0
    errors: int = 0
    folded_errors: int = 0
    gold_lines: int = 0
    exact_lines: int = 0
    in_order: int = 0

    def add(self, gold: Sequence[str], texts: Sequence[str], boxes: Sequence[float]) -> None:
        order = rebuilt_order(boxes)
        rebuilt = [texts[i] for i in order]
        truth, read = normalise("".join(gold)), normalise("".join(rebuilt))
        self.images += 1
        self.gold_chars += len(truth)
        self.errors += edit_distance(truth, read)
        self.folded_errors += edit_distance(normalise(truth, True), normalise(read, True))
        self.gold_lines += len(gold)
        found = Counter(normalise(t) for t in texts)
        for line in gold:
            if found[normalise(line)] > 0:
                found[normalise(line)] -= 1
                self.exact_lines += 1
        self.in_order += order == list(range(len(texts)))

    def figures(self) -> dict[str, float]:
        chars = max(1, self.gold_chars)
        return {
            "images": self.images,
            "char_accuracy": round(1 - self.errors / chars, 4),
            "char_accuracy_folded": round(1 - self.folded_errors / chars, 4),
            "lines_exact": round(self.exact_lines / max(1, self.gold_lines), 4),
            "in_reading_order": round(self.in_order / max(1, self.images), 4),
        }


@dataclass
class Scorecard:
    """Tallies per class, per script and overall."""

    tallies: dict[str, Tally] = field(default_factory=dict)

    def add(
        self, groups: Iterable[str], gold: Sequence[str], texts: Sequence[str], boxes: Sequence[float]
    ) -> None:
        for group in ("all", *groups):
            self.tallies.setdefault(group, Tally()).add(gold, texts, boxes)

    def figures(self) -> dict[str, dict[str, float]]:
        return {group: tally.figures() for group, tally in self.tallies.items()}
