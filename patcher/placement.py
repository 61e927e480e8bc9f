"""Places a series' whole new files into the tree (jinja2 templates rendered) and merges its strings."""

import hashlib
from pathlib import Path

import jinja2
from packaging.version import Version

from patcher import strings
from patcher.errors import HunkConflict, PatchConflict
from patcher.manifest import Placement, Series


def render(placement: Placement, root: Path, context: dict[str, object]) -> bytes:
    """The bytes a placement writes: the source as is, or rendered with jinja2."""
    if not placement.render:
        return placement.source.read_bytes()
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(placement.source.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )

    environment.filters["release_names"] = release_names

    def read(path: str) -> str:
        return (root / path).read_text(encoding="utf-8")

    def render_file(path: str) -> str:
        """Another file of the repository rendered with the same variables (the SQL a template inlines)."""
        return environment.from_string(read(path)).render(read=read, render=render_file, **context)

    template = environment.get_template(placement.source.name)
    return template.render(read=read, render=render_file, **context).encode("utf-8")


def release_names(text: str, names: dict[str, str]) -> str:
    """`text` with each name the table maps replaced by the release's spelling of it (longer names first)."""
    for name in sorted(names, reverse=True):
        text = text.replace(name, names[name])
    return text


def template_context(tag: str, series: Series) -> dict[str, object]:
    """What a template sees for `tag`: the release, the series name and the series' variables (vars.toml)."""
    return {
        **series.variables(tag),
        "immich_version": tag,
        "version": Version(tag.lstrip("v")),
        "series": series.name,
    }


def conflicts(tree: Path, placements: list[Placement]) -> list[HunkConflict]:
    """Placements whose destination already exists in the tree; strings whose locale file does not."""
    clashes = []
    for p in placements:
        if p.strings and not (tree / p.dest).is_file():
            reason = "the series merges strings into this locale file, but the tree has no such file"
            clashes.append(HunkConflict(patch="place.toml", file=p.dest, hunk="(strings)", reason=reason))
        elif not p.strings and (tree / p.dest).exists():
            reason = "the series places this file, but the tree already has it"
            clashes.append(HunkConflict(patch="place.toml", file=p.dest, hunk="(whole file)", reason=reason))
    return clashes


def digests(placements: list[Placement], root: Path, context: dict[str, object]) -> dict[str, str]:
    """sha256 of what each placement writes now (for strings: the tables merged), by destination: tells a
    stale placed file apart."""
    return _by_destination([(p.dest, render(p, root, context)) for p in placements])


def _by_destination(bodies: list[tuple[str, bytes]]) -> dict[str, str]:
    # Several strings tables may merge into one locale file (a series' own beside the shared ones): one
    # digest over them in order; a destination with one placement keeps the sha256 of its body.
    hashes: dict[str, hashlib._Hash] = {}
    for dest, body in bodies:
        hashes.setdefault(dest, hashlib.sha256()).update(body)
    return {dest: digest.hexdigest() for dest, digest in hashes.items()}


def place(tree: Path, placements: list[Placement], root: Path, context: dict[str, object]) -> dict[str, str]:
    """Write every placement and merge every strings table; returns digests() of what was applied."""
    written: list[tuple[str, bytes]] = []
    for placement in placements:
        target = tree / placement.dest
        body = render(placement, root, context)
        if placement.strings:
            try:
                additions = strings.table(body.decode("utf-8"), str(placement.source.relative_to(root)))
                text = strings.merged(target.read_text(encoding="utf-8"), additions, placement.dest)
            except strings.StringsError as error:
                clash = HunkConflict("place.toml", placement.dest, "(strings)", reason=str(error))
                raise PatchConflict("place.toml", [clash]) from None
            target.write_text(text, encoding="utf-8")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
        written.append((placement.dest, body))
    return _by_destination(written)
