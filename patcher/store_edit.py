"""Writes to the patch store for `port`: manifest entries, new and widened overrides, the served list doc."""

import datetime
from pathlib import Path

import tomlkit

from patcher.manifest import Manifest, Series
from patcher.store import GENERATED, OVERRIDES, Section, header_fields, in_range, split_patch
from patcher.versions import parse

SERVED_DOC = Path("docs") / "served-releases.md"


def _today() -> str:
    return datetime.datetime.now(tz=datetime.UTC).date().isoformat()


def _manifest_path(manifest: Manifest) -> Path:
    return manifest.root / "patches" / "manifest.toml"


def add_release(manifest: Manifest, series: str, tag: str) -> Path:
    """List `tag` among `series`' releases in manifest.toml (comments and order kept); the line's newest
    release is its base (the edits landed on it exactly, so it serves the 3-way merges as well)."""
    path = _manifest_path(manifest)
    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    for entry in document["series"]:
        if entry["name"] == series:
            releases = sorted({*[str(t) for t in entry["releases"]], tag}, key=parse)
            entry["releases"] = releases
            entry["base"] = releases[-1]
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
    return path


def add_series(manifest: Manifest, name: str, tag: str, description: str) -> Path:
    """A new release line in manifest.toml serving `tag`, with `tag` as its base."""
    path = _manifest_path(manifest)
    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    entry = tomlkit.table()
    entry.update({"name": name, "base": tag, "releases": [tag], "description": description})
    document["series"].append(entry)
    path.write_text(tomlkit.dumps(document), encoding="utf-8")
    return path


def new_series_name(manifest: Manifest, tag: str) -> str:
    minor = ".".join(tag.split(".")[:2])
    taken = {s.name for s in manifest.series}
    return minor if minor not in taken else tag


def _widened(expression: str, tag: str, served: list[str]) -> str:
    """`expression` naming `tag` too: a range ending at the release just before `tag` grows to it."""
    before = [t for t in served if parse(t) < parse(tag)]
    parts = [p.strip() for p in expression.split(",")]
    for index, part in enumerate(parts):
        low, _, high = part.partition("..")
        if before and (high or low) == before[-1]:
            parts[index] = f"{low}..{tag}"
            return ", ".join(parts)
    return ", ".join([*parts, tag])


def _label(expression: str) -> str:
    return expression.replace("..", "-").replace(", ", "+")


def _without(expression: str, tag: str, served: list[str]) -> str:
    """`expression` no longer naming `tag`: a range around it is split at it."""
    parts = []
    for part in (p.strip() for p in expression.split(",")):
        low, _, high = part.partition("..")
        if not in_range(part, tag):
            parts.append(part)
            continue
        below = [t for t in served if parse(low) <= parse(t) < parse(tag)]
        above = [t for t in served if parse(tag) < parse(t) <= parse(high or low)]
        parts += [f"{r[0]}..{r[-1]}" if len(r) > 1 else r[0] for r in (below, above) if r]
    return ", ".join(parts)


def widen_overrides(manifest: Manifest, series: Series, tag: str) -> list[Path]:
    """Every override the series' base takes now names `tag` too, and no other does (files renamed to their
    new ranges): `tag` takes each edit as the base does."""
    written = []
    served = manifest.supported()
    for folder in sorted((series.store.folder / OVERRIDES).glob("*")):
        for path in sorted(folder.glob("*.patch")):
            text = path.read_text(encoding="utf-8")
            versions = header_fields(text).get("Versions", "")
            if in_range(versions, series.base) == in_range(versions, tag):
                continue
            if in_range(versions, series.base):
                wider = _widened(versions, tag, served)
            else:
                wider = _without(versions, tag, served)
            if not wider:  # it named only `tag`, which now takes the base's edits
                path.unlink()
                written.append(path)
                continue
            lines = [
                f"Versions: {wider}" if line.startswith("Versions:") else line for line in text.split("\n")
            ]
            target = path.with_name(_label(wider) + ".patch")
            path.unlink()
            target.write_text("\n".join(lines), encoding="utf-8")
            written.append(target)
    return written


def write_override(manifest: Manifest, edit: str, tag: str, sections: list[Section]) -> Path:
    """overrides/<edit>/<tag>.patch carrying the sections that landed differently on `tag`."""
    folder = manifest.root / "patches" / OVERRIDES / edit.removesuffix(".patch")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{tag}.patch"
    header = (
        f"Description: {edit.removesuffix('.patch')[5:]} where {tag} differs (written by immich-aio port)\n"
        f"Versions: {tag}\nLast-Update: {_today()}\n---\n"
    )
    path.write_text(header + "".join(s.text for s in sections), encoding="utf-8")
    return path


def write_generated(manifest: Manifest, series: str, edit: str, kept: Path, sections: list[Section]) -> Path:
    """generated/<series>/<edit>: the resolved output, to be remade by `immich-aio patches generate`."""
    path = manifest.root / "patches" / GENERATED / series / edit
    path.parent.mkdir(parents=True, exist_ok=True)
    header = split_patch(kept.read_text(encoding="utf-8")).header
    path.write_text(header + "".join(s.text for s in sections), encoding="utf-8")
    return path


def copy_generated(manifest: Manifest, kept: Path, series: str) -> Path:
    """A series' generated edit, kept for a new series too (remade by `immich-aio generate --series`)."""
    path = manifest.root / "patches" / GENERATED / series / kept.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(kept.read_bytes())
    return path


def served_markdown(manifest: Manifest) -> str:
    """The table of served releases docs/ shows, generated from the manifest (the one list)."""
    lines = [
        "# Served Immich releases",
        "",
        "Generated from `patches/manifest.toml` by `immich-aio list --format markdown` and by `port`;",
        "do not edit by hand.",
        "",
        "| series | base | releases |",
        "| --- | --- | --- |",
    ]
    for series in sorted(manifest.series, key=lambda s: parse(s.base), reverse=True):
        lines.append(f"| {series.name} | {series.base} | {', '.join(series.releases)} |")
    lines.append("")
    lines.append(f"{len(manifest.supported())} releases.")
    return "\n".join(lines) + "\n"


def write_served_doc(manifest: Manifest) -> Path:
    path = manifest.root / SERVED_DOC
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(served_markdown(manifest), encoding="utf-8")
    return path
