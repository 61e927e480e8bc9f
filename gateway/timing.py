"""How long each phase of one search answer took, sent to the caller as a `Server-Timing` header.

The phases (identity, SQL ranking, Immich's read-back in bulk and one by one, the reply, its encoding, and
the total from the request's arrival) are what bench/gateway_vs_patched.py reads to show where an answer's
time goes; a browser's developer tools show them too. Only durations and counts are sent, never what was
searched.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

HEADER = "server-timing"


@dataclass
class Timings:
    """Milliseconds per named phase (a phase run twice adds up) and a count per phase where one helps."""

    phases: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, 1000 * (time.perf_counter() - started))

    def add(self, name: str, milliseconds: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + milliseconds

    def count(self, name: str, n: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def header(self) -> str:
        """`name;dur=ms` per phase, with `desc` holding the phase's count where there is one."""
        parts = []
        for name, milliseconds in self.phases.items():
            described = f';desc="{self.counts[name]}"' if name in self.counts else ""
            parts.append(f"{name};dur={milliseconds:.1f}{described}")
        return ", ".join(parts)


def parse(header: str) -> dict[str, tuple[float, int | None]]:
    """A `Server-Timing` header of `Timings.header` read back: name -> (milliseconds, count or None)."""
    parsed: dict[str, tuple[float, int | None]] = {}
    for part in header.split(","):
        name, *params = (piece.strip() for piece in part.split(";"))
        if not name:
            continue
        values = dict(param.split("=", 1) for param in params if "=" in param)
        try:
            milliseconds = float(values.get("dur", "nan"))
            count = int(values["desc"].strip('"')) if "desc" in values else None
        except ValueError:
            continue
        parsed[name] = (milliseconds, count)
    return parsed
