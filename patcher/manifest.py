"""The patch manifest: which series serves which Immich releases, and what each series contains."""

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from patcher.errors import PatcherError, UnknownVersion
from patcher.store import PatchFile, Store
from patcher.versions import normalize, parse, resolve_release, sort_tags


def repository_root() -> Path:
    """The folder holding patches/ and ui_snippets/: the source tree, or the installed data copy.

    IMMICH_AIO_ROOT points elsewhere, e.g. at a fork carrying its own patch series.
    """
    override = os.environ.get("IMMICH_AIO_ROOT")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
    installed = here / "_data"
    return installed if (installed / "patches").is_dir() else here.parent


class ManifestError(PatcherError):
    """The manifest or a series in it is malformed."""


@dataclass(frozen=True)
class Placement:
    source: Path
    dest: str
    render: bool
    #: Merge the source's strings into the tree's locale file at dest instead of writing a new file.
    strings: bool = False


#: Names every template sees; a series' vars.toml may not redefine them.
CONTEXT_NAMES = frozenset({"immich_version", "version", "series", "read", "render"})


def applies(entry: dict[str, object], tag: str, where: str) -> bool:
    """Whether a place.toml / vars.toml entry applies to `tag`: `versions` is a PEP 440 specifier, or a list
    of them (any one matching); none means every release."""
    condition = entry.get("versions", "")
    specifiers = [str(c) for c in condition] if isinstance(condition, list) else [str(condition)]
    try:
        return any(SpecifierSet(s).contains(parse(tag), prereleases=False) for s in specifiers)
    except InvalidSpecifier as error:
        raise ManifestError(f"{where}: {error}") from None


def _entries(path: Path, key: str) -> list[dict[str, object]]:
    if not path.is_file():
        return []
    try:
        return [dict(e) for e in tomllib.loads(path.read_text(encoding="utf-8")).get(key, [])]
    except tomllib.TOMLDecodeError as error:
        raise ManifestError(f"{path.name}: {error}") from None


@dataclass(frozen=True)
class Series:
    """A release line: the releases it serves and the base its overrides and 3-way merges are made against."""

    name: str
    releases: tuple[str, ...]
    base: str
    description: str
    store: Store
    #: The oazapfts that made the release's own SDK, where the release does not pin one (patcher.generate).
    oazapfts: str | None = None

    def serves(self, tag: str) -> bool:
        return normalize(tag) in self.releases

    @property
    def folder(self) -> Path:
        return self.store.folder

    def patches(self, tag: str | None = None) -> list[PatchFile]:
        """The edits `tag` (default: the base) takes, in `series` order, each composed for it."""
        return self.store.patches(self.name, tag or self.base)

    def variables(self, tag: str) -> dict[str, object]:
        """The jinja2 variables of `tag` from vars.toml: entries in file order, later ones winning."""
        result: dict[str, object] = {}
        for values in _entries(self.folder / "vars.toml", "vars"):
            if not applies(values, tag, "vars.toml"):
                continue
            values.pop("versions", None)
            clash = CONTEXT_NAMES & values.keys()
            if clash:
                raise ManifestError(f"vars.toml may not redefine {', '.join(sorted(clash))}")
            result.update(values)
        return result

    def placements(self, root: Path, tag: str | None = None) -> list[Placement]:
        """The files place.toml puts into `tag`'s tree (default: the base's), in file order. A `source` and
        `dest` ending in `/` place every file of a folder, each named `prefix` + its name (less `.j2`)."""
        result = []
        for entry in _entries(self.folder / "place.toml", "place"):
            if not applies(entry, tag or self.base, "place.toml"):
                continue
            try:
                source, dest = str(entry["source"]), str(entry["dest"])
            except KeyError as missing:
                raise ManifestError(f"place.toml entry lacks {missing}") from None
            if dest.startswith("/") or ".." in Path(dest).parts:
                raise ManifestError(f"place.toml dest {dest!r} must stay inside the tree")
            merge = entry.get("merge")
            if merge not in (None, "strings"):
                raise ManifestError(f"place.toml merge {merge!r}: only 'strings' is known")
            render = bool(entry.get("render", False))
            for path, target in _expand(root, source, dest, str(entry.get("prefix", ""))):
                result.append(Placement(path, target, render, strings=merge == "strings"))
        return result


def _expand(root: Path, source: str, dest: str, prefix: str) -> list[tuple[Path, str]]:
    """(source file, destination) pairs of one place.toml entry: one file, or each file of a folder."""
    path = root / source
    if source.endswith("/") != dest.endswith("/"):
        raise ManifestError(f"place.toml: {source} and {dest} must both name a folder (end in /) or a file")
    if not source.endswith("/"):
        if not path.is_file():
            raise ManifestError(f"place.toml source {source} does not exist")
        return [(path, dest)]
    files = sorted(f for f in path.iterdir() if f.is_file()) if path.is_dir() else []
    if not files:
        raise ManifestError(f"place.toml source {source} is not a folder holding files")
    return [(f, dest + prefix + f.name.removesuffix(".j2")) for f in files]


#: What a Series holds until the store (which needs every series' releases) exists.
PENDING = Store(Path(), ())


@dataclass(frozen=True)
class Manifest:
    series: tuple[Series, ...]
    root: Path

    def series_for(self, tag: str) -> Series | None:
        return next((s for s in self.series if s.serves(tag)), None)

    def supported(self) -> list[str]:
        """Every release the manifest serves, oldest first: the one list of served releases."""
        return sort_tags([tag for s in self.series for tag in s.releases])

    def resolve(self, version: str) -> tuple[str, Series]:
        """Map a requested version (any spelling `resolve_release` takes) to (release tag, series)."""
        tag = resolve_release(version, self.supported())
        series = self.series_for(tag)
        if series is None:
            raise UnknownVersion(version, self.supported())
        return tag, series

    def by_name(self, name: str) -> Series:
        for series in self.series:
            if series.name == name:
                return series
        raise ManifestError(f"no series named {name!r} in the manifest")


def load(root: Path | None = None) -> Manifest:
    """Load patches/manifest.toml under `root` (default: this installation)."""
    root = root or repository_root()
    path = root / "patches" / "manifest.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"no manifest at {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ManifestError(f"{path}: {error}") from None
    entries = []
    for entry in data.get("series", []):
        try:
            name = str(entry["name"])
            releases = tuple(sort_tags([normalize(str(t)) for t in entry["releases"]]))
            base = normalize(str(entry["base"]))
        except KeyError as missing:
            raise ManifestError(f"{path}: a [[series]] entry lacks {missing}") from None
        except PatcherError as error:
            raise ManifestError(f"{path}: series {entry.get('name')}: {error}") from None
        if base not in releases:
            raise ManifestError(f"{path}: series {name}: its base {base} is not one of its releases")
        pin = entry.get("oazapfts")
        description = str(entry.get("description", ""))
        entries.append(Series(name, releases, base, description, PENDING, str(pin) if pin else None))
    served = tuple(sort_tags([tag for entry in entries for tag in entry.releases]))
    if len(served) != sum(len(entry.releases) for entry in entries):
        raise ManifestError(f"{path}: a release is listed by two series")
    store = Store(root / "patches", served)
    series = tuple(dataclasses.replace(entry, store=store) for entry in entries)
    return Manifest(series, root)
