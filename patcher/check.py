"""The compatibility matrix: does each upstream release take its series cleanly, by 3-way merge, or not?"""

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from patcher import engine, gitops
from patcher.errors import PatchConflict, PatcherError
from patcher.manifest import Manifest, Series
from patcher.versions import expand

Result = Literal["clean", "3way", "conflict", "unsupported", "error"]


@dataclass
class CheckRow:
    version: str
    series: str | None
    result: Result
    conflicts: list[dict[str, object]] = field(default_factory=list)
    message: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "series": self.series,
            "result": self.result,
            "conflicts": self.conflicts,
            "message": self.message,
        }


def versions_to_check(source: str, expression: str, served: list[str]) -> list[str]:
    """Expand a range against the source's tags (falling back to the served releases)."""
    return expand(expression, gitops.remote_release_tags(source) or served)


def check_version(
    manifest: Manifest, source: str, tag: str, workdir: Path, series: Series | None = None
) -> CheckRow:
    """Whether `tag` takes its series (or `series`: the newest one, tried on a release it does not serve)."""
    series = series or manifest.series_for(tag)
    if series is None:
        return CheckRow(tag, None, "unsupported", message="no patch series serves this release")
    tree = workdir / tag
    try:
        gitops.clone_release(source, tag, tree)
        outcome = engine.apply_series(tree, series, tag, manifest.root, source=source)
        return CheckRow(tag, series.name, outcome.method)
    except PatchConflict as conflict:
        details = [c.to_json() for c in conflict.conflicts] or [
            {"patch": conflict.patch, "reason": conflict.git_output}
        ]
        return CheckRow(tag, series.name, "conflict", details, str(conflict))
    except PatcherError as error:
        return CheckRow(tag, series.name, "error", message=str(error))
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def check_matrix(
    manifest: Manifest,
    source: str,
    versions: list[str],
    on_row: Callable[[CheckRow], None] | None = None,
    series: Series | None = None,
) -> list[CheckRow]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="immich-aio-check-") as workdir:
        for tag in versions:
            row = check_version(manifest, source, tag, Path(workdir), series)
            rows.append(row)
            if on_row:
                on_row(row)
    return rows


def to_markdown(rows: list[CheckRow]) -> str:
    lines = ["| version | series | result | details |", "| --- | --- | --- | --- |"]
    for row in rows:
        detail = "; ".join(f"{c.get('patch')}: {c.get('file')} {c.get('hunk')}" for c in row.conflicts)
        if not detail and row.message:
            detail = row.message.splitlines()[0]
        escaped = detail.replace("|", r"\|")
        lines.append(f"| {row.version} | {row.series or '-'} | {row.result} | {escaped} |")
    return "\n".join(lines)
