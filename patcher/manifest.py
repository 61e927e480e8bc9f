"""The patch manifest: which series serves which Immich releases, and what each series contains."""

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from patcher.errors import PatcherError, UnknownVersion
from patcher.releases import KNOWN_RELEASES
from patcher.versions import normalize, parse


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
class PatchHeader:
    description: str
    versions: str
    fields: dict[str, str]


@dataclass(frozen=True)
class PatchFile:
    name: str
    path: Path

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def header(self) -> PatchHeader:
        return parse_header(self.name, self.text())


@dataclass(frozen=True)
class Placement:
    source: Path
    dest: str
    render: bool
    #: Merge the source's strings into the tree's locale file at dest instead of writing a new file.
    strings: bool = False


#: Names every template sees; a series' vars.toml may not redefine them.
CONTEXT_NAMES = frozenset({"immich_version", "version", "series", "read", "render"})


@dataclass(frozen=True)
class Series:
    name: str
    versions: SpecifierSet
    base: str
    description: str
    folder: Path

    def serves(self, tag: str) -> bool:
        return self.versions.contains(parse(tag), prereleases=False)

    def patches(self, tag: str | None = None) -> list[PatchFile]:
        """The patches in `series` order; with `tag`, only those that apply to that release (a line may
        end with a version specifier, e.g. `0012-x.patch >=2.3.0`, for an edit some releases lack)."""
        series_file = self.folder / "series"
        if not series_file.is_file():
            return []
        result = []
        for raw in series_file.read_text(encoding="utf-8").splitlines():
            name, _, condition = raw.split("#", 1)[0].strip().partition(" ")
            if not name:
                continue
            try:
                applies = SpecifierSet(condition.strip())
            except InvalidSpecifier:
                message = f"series {self.name}: {condition.strip()!r} is not a version specifier"
                raise ManifestError(message) from None
            if tag is not None and not applies.contains(parse(tag), prereleases=False):
                continue
            path = self.folder / name
            if not path.is_file():
                raise ManifestError(f"series {self.name}: {name} is listed in 'series' but does not exist")
            result.append(PatchFile(name, path))
        return result

    def variables(self, tag: str) -> dict[str, object]:
        """The jinja2 variables of `tag` from vars.toml: entries in file order, later ones winning.

        An entry without `versions` applies to every release of the series.
        """
        vars_file = self.folder / "vars.toml"
        if not vars_file.is_file():
            return {}
        try:
            entries = tomllib.loads(vars_file.read_text(encoding="utf-8")).get("vars", [])
        except tomllib.TOMLDecodeError as error:
            raise ManifestError(f"series {self.name}: vars.toml: {error}") from None
        result: dict[str, object] = {}
        for entry in entries:
            values = dict(entry)
            try:
                applies = SpecifierSet(str(values.pop("versions", "")))
            except InvalidSpecifier as error:
                raise ManifestError(f"series {self.name}: vars.toml: {error}") from None
            clash = CONTEXT_NAMES & values.keys()
            if clash:
                raise ManifestError(
                    f"series {self.name}: vars.toml may not redefine {', '.join(sorted(clash))}"
                )
            if applies.contains(parse(tag), prereleases=False):
                result.update(values)
        return result

    def placements(self, root: Path) -> list[Placement]:
        place_file = self.folder / "place.toml"
        if not place_file.is_file():
            return []
        entries = tomllib.loads(place_file.read_text(encoding="utf-8")).get("place", [])
        result = []
        for entry in entries:
            try:
                source, dest = str(entry["source"]), str(entry["dest"])
            except KeyError as missing:
                raise ManifestError(f"series {self.name}: place.toml entry lacks {missing}") from None
            if dest.startswith("/") or ".." in Path(dest).parts:
                raise ManifestError(f"series {self.name}: place.toml dest {dest!r} must stay inside the tree")
            path = root / source
            if not path.is_file():
                raise ManifestError(f"series {self.name}: place.toml source {source} does not exist")
            merge = entry.get("merge")
            if merge not in (None, "strings"):
                known = "only 'strings' is known"
                raise ManifestError(f"series {self.name}: place.toml merge {merge!r}: {known}")
            result.append(Placement(path, dest, bool(entry.get("render", False)), strings=merge == "strings"))
        return result


def parse_header(name: str, text: str) -> PatchHeader:
    """Read the DEP-3-like header above the first `diff --git` line."""
    fields: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith(("diff --git ", "---")):
            break
        if line.startswith((" ", "\t")) and current:
            fields[current] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            current = key.strip()
            fields[current] = value.strip()
    missing = [k for k in ("Description", "Versions") if not fields.get(k)]
    if missing:
        raise ManifestError(f"{name}: header lacks {', '.join(missing)}")
    return PatchHeader(fields["Description"], fields["Versions"], fields)


@dataclass(frozen=True)
class Manifest:
    series: tuple[Series, ...]
    root: Path

    def series_for(self, tag: str) -> Series | None:
        return next((s for s in self.series if s.serves(tag)), None)

    def supported(self, releases: tuple[str, ...] = KNOWN_RELEASES) -> list[str]:
        return [tag for tag in releases if self.series_for(tag)]

    def resolve(self, version: str) -> tuple[str, Series]:
        """Map a requested version to (release tag, series), or raise UnknownVersion."""
        try:
            tag = normalize(version)
        except PatcherError:
            raise UnknownVersion(version, self.supported()) from None
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
    series = []
    for entry in data.get("series", []):
        try:
            name = str(entry["name"])
            spec = SpecifierSet(str(entry["versions"]))
            base = normalize(str(entry["base"]))
        except KeyError as missing:
            raise ManifestError(f"{path}: a [[series]] entry lacks {missing}") from None
        except InvalidSpecifier as error:
            raise ManifestError(f"{path}: series {entry.get('name')}: {error}") from None
        folder = root / "patches" / name
        if not folder.is_dir():
            raise ManifestError(f"{path}: series {name} has no folder patches/{name}")
        series.append(Series(name, spec, base, str(entry.get("description", "")), folder))
    return Manifest(tuple(series), root)
