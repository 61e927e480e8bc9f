"""The patch store: each edit kept once (pool), its overrides per release line, composed for one release.

Layout under `patches/`:

- `series` lists the edits in the order they apply; a name may be followed by a PEP 440 specifier
  naming the releases that take it (`0015-ocr-pipeline-server.patch <2.2.0`).
- `pool/NAME` is the edit, as it lands on most releases.
- `overrides/STEM/*.patch` carry the same edit for the releases (header `Versions:`) whose upstream code
  differs where it lands: a section replaces the pool's section for the same file, `Drops:` names pool
  files those releases do not touch. Where several overrides match a release, the one naming fewer
  releases decides for the files it names.
- `generated/SERIES/NAME` or `generated/NAME`: an edit made by `immich-aio patches generate`, not by hand.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from patcher.errors import PatcherError, UsageError
from patcher.versions import parse

#: The parts of the store, relative to `patches/`.
POOL = "pool"
OVERRIDES = "overrides"
GENERATED = "generated"
SERIES_LIST = "series"


class StoreError(PatcherError):
    """The patch store is malformed."""


@dataclass(frozen=True)
class PatchFile:
    """One edit as a release takes it: its name, the composed patch text, and the files it came from."""

    name: str
    body: str
    sources: tuple[Path, ...]

    def text(self) -> str:
        return self.body

    @property
    def path(self) -> Path:
        """The file the edit is kept in (its pool or generated copy): what messages name."""
        return self.sources[0]


@dataclass(frozen=True)
class Section:
    path: str
    text: str


@dataclass(frozen=True)
class ParsedPatch:
    header: str
    sections: tuple[Section, ...]

    def fields(self) -> dict[str, str]:
        return header_fields(self.header)


def split_patch(text: str) -> ParsedPatch:
    """The header (everything above the first `diff --git`) and one section per file."""
    header: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("diff --git "):
            path = line.split()[2].removeprefix("a/")
            sections.append((path, [line]))
        elif sections:
            sections[-1][1].append(line)
        else:
            header.append(line)
    return ParsedPatch("".join(header), tuple(Section(p, "".join(lines)) for p, lines in sections))


def header_fields(header: str) -> dict[str, str]:
    """DEP-3 fields of a header; continuation lines (starting with a space) join the field above."""
    fields: dict[str, str] = {}
    current = ""
    for line in header.splitlines():
        if line.startswith("---"):
            break
        if line.startswith((" ", "\t")) and current:
            fields[current] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            current = key.strip()
            fields[current] = value.strip()
    return fields


RANGE = re.compile(r"^v?\d+\.\d+\.\d+(\.\.v?\d+\.\d+\.\d+)?$")


def in_range(expression: str, tag: str) -> bool:
    """Whether `tag` is in "v1.133.0..v1.135.3, v1.140.0" (inclusive ranges and single releases)."""
    version = parse(tag)
    for part in (p.strip() for p in expression.split(",")):
        if not RANGE.match(part):
            raise UsageError(f"{part!r} is not a release or a range like v1.133.0..v1.135.3")
        low, _, high = part.partition("..")
        if parse(low) <= version <= parse(high or low):
            return True
    return False


def release_count(expression: str, served: tuple[str, ...]) -> int:
    return sum(in_range(expression, tag) for tag in served)


@dataclass(frozen=True)
class Override:
    path: Path
    versions: str
    drops: frozenset[str]
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Store:
    """The edits of `patches/` and the releases the store serves (for ranking overrides by width)."""

    folder: Path
    served: tuple[str, ...]

    def edits(self, tag: str) -> list[str]:
        """The names of the edits `tag` takes, in `series` order."""
        listing = self.folder / SERIES_LIST
        if not listing.is_file():
            raise StoreError(f"no {listing}")
        names = []
        for raw in listing.read_text(encoding="utf-8").splitlines():
            name, _, condition = raw.split("#", 1)[0].strip().partition(" ")
            if not name:
                continue
            try:
                applies = SpecifierSet(condition.strip())
            except InvalidSpecifier:
                raise StoreError(
                    f"patches/series: {condition.strip()!r} is not a version specifier"
                ) from None
            if applies.contains(parse(tag), prereleases=False):
                names.append(name)
        return names

    def kept_in(self, name: str, series: str) -> Path:
        """Where edit `name` is kept for `series`: the pool, else its generated copy."""
        for candidate in (
            self.folder / POOL / name,
            self.folder / GENERATED / series / name,
            self.folder / GENERATED / name,
        ):
            if candidate.is_file():
                return candidate
        raise StoreError(f"patches/series names {name}, but neither pool/ nor generated/ holds it")

    def overrides(self, name: str) -> list[Override]:
        folder = self.folder / OVERRIDES / name.removesuffix(".patch")
        found = []
        for path in sorted(folder.glob("*.patch")) if folder.is_dir() else []:
            parsed = split_patch(path.read_text(encoding="utf-8"))
            fields = parsed.fields()
            versions = fields.get("Versions", "")
            if not versions:
                raise StoreError(f"{path.relative_to(self.folder)}: an override needs a Versions: header")
            drops = frozenset(
                d.strip() for d in fields.get("Drops", "").replace("\n", ",").split(",") if d.strip()
            )
            found.append(Override(path, versions, drops, parsed.sections))
        return found

    def compose(self, name: str, series: str, tag: str) -> PatchFile:
        """Edit `name` as `tag` takes it: the pool's sections, each replaced or dropped by the narrowest
        override of that release that names its file."""
        kept = self.kept_in(name, series)
        text = kept.read_text(encoding="utf-8")
        matching = [o for o in self.overrides(name) if in_range(o.versions, tag)]
        if not matching:
            return PatchFile(name, text, (kept,))
        base = split_patch(text)
        matching.sort(key=lambda o: release_count(o.versions, self.served), reverse=True)
        chosen: dict[str, Section | None] = {s.path: s for s in base.sections}
        for override in matching:  # widest first: a narrower one overwrites what it names
            for dropped in override.drops:
                chosen[dropped] = None
            for section in override.sections:
                chosen[section.path] = section
        body = "".join(s.text for s in chosen.values() if s is not None)
        return PatchFile(name, base.header + body, (kept, *(o.path for o in matching)))

    def patches(self, series: str, tag: str) -> list[PatchFile]:
        """Every edit `tag` takes, composed for it, in `series` order."""
        return [self.compose(name, series, tag) for name in self.edits(tag)]
