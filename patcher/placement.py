"""Places a series' whole new files into the tree, rendering jinja2 templates where asked."""

import hashlib
from pathlib import Path

import jinja2
from packaging.version import Version

from patcher.errors import HunkConflict
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

    def read(path: str) -> str:
        return (root / path).read_text(encoding="utf-8")

    template = environment.get_template(placement.source.name)
    return template.render(read=read, **context).encode("utf-8")


def template_context(tag: str, series: Series) -> dict[str, object]:
    """What a template sees for `tag`: the release, the series name and the series' variables (vars.toml)."""
    return {
        **series.variables(tag),
        "immich_version": tag,
        "version": Version(tag.lstrip("v")),
        "series": series.name,
    }


def conflicts(tree: Path, placements: list[Placement]) -> list[HunkConflict]:
    """Placements whose destination already exists in the tree."""
    return [
        HunkConflict(
            patch="place.toml",
            file=p.dest,
            hunk="(whole file)",
            reason="the series places this file, but the tree already has it",
        )
        for p in placements
        if (tree / p.dest).exists()
    ]


def digests(placements: list[Placement], root: Path, context: dict[str, object]) -> dict[str, str]:
    """sha256 of what each placement writes now, by destination: tells a stale placed file apart."""
    return {p.dest: hashlib.sha256(render(p, root, context)).hexdigest() for p in placements}


def place(tree: Path, placements: list[Placement], root: Path, context: dict[str, object]) -> dict[str, str]:
    """Write every placement; returns the sha256 of each written file by destination."""
    written = {}
    for placement in placements:
        target = tree / placement.dest
        target.parent.mkdir(parents=True, exist_ok=True)
        body = render(placement, root, context)
        target.write_bytes(body)
        written[placement.dest] = hashlib.sha256(body).hexdigest()
    return written
