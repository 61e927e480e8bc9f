"""Applies, inspects and reverts a patch series on an Immich checkout, atomically and idempotently."""

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from patcher import __version__, gitops, placement
from patcher.diagnose import explain, touched_paths
from patcher.errors import DirtyTree, PatchConflict, PatcherError
from patcher.manifest import PatchFile, Series
from patcher.snapshot import Snapshot

Method = Literal["clean", "3way"]
STATE_DIR = "immich-aio"


@dataclass
class AppliedPatch:
    name: str
    sha256: str
    method: Method

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "sha256": self.sha256, "method": self.method}


def overall_method(patches: list[AppliedPatch]) -> Method:
    """A series applied cleanly only if every patch did."""
    return "3way" if any(p.method == "3way" for p in patches) else "clean"


@dataclass
class State:
    """What immich-aio did to a checkout; kept inside the git directory, never in the work tree."""

    series: str
    immich_version: str
    head: str
    patches: list[AppliedPatch]
    placed: list[str]
    tool: str = f"immich-aio {__version__}"
    placed_sha256: dict[str, str] = field(default_factory=dict)

    def matches(self, series: Series, patches: list[PatchFile], placed_now: dict[str, str]) -> bool:
        """True when the tree carries exactly this series as it is now (patches and placed files)."""
        return (
            self.series == series.name
            and [p.sha256 for p in self.patches] == [_digest(p) for p in patches]
            and self.placed_sha256 == placed_now
        )

    @property
    def method(self) -> Method:
        return overall_method(self.patches)


@dataclass
class ApplyOutcome:
    tree: Path
    series: str
    immich_version: str
    already_applied: bool
    patches: list[AppliedPatch] = field(default_factory=list)
    placed: list[str] = field(default_factory=list)

    @property
    def method(self) -> Method:
        return overall_method(self.patches)

    def to_json(self) -> dict[str, object]:
        return {
            "tree": str(self.tree),
            "series": self.series,
            "immichVersion": self.immich_version,
            "alreadyApplied": self.already_applied,
            "result": self.method,
            "patches": [p.to_json() for p in self.patches],
            "placed": self.placed,
        }


def _state_dir(tree: Path) -> Path:
    return gitops.git_dir(tree) / STATE_DIR


def read_state(tree: Path) -> State | None:
    path = _state_dir(tree) / "state.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    data["patches"] = [AppliedPatch(**p) for p in data["patches"]]
    return State(**data)


def _write_state(tree: Path, state: State, snapshot: Snapshot) -> None:
    folder = _state_dir(tree)
    folder.mkdir(parents=True, exist_ok=True)
    snapshot.save(folder / "backup.json")
    (folder / "state.json").write_text(json.dumps(asdict(state), indent=2), encoding="utf-8")


def _digest(patch: PatchFile) -> str:
    return hashlib.sha256(patch.path.read_bytes()).hexdigest()


def _applies(tree: Path, patch: PatchFile, *, reverse: bool = False) -> bool:
    """Whether `git apply` (or its reverse) would succeed exactly, without touching the tree."""
    flags = ["--check", "--whitespace=nowarn", *(["--reverse"] if reverse else [])]
    return gitops.run(tree, "apply", *flags, str(patch.path), check=False).returncode == 0


def _apply_one(tree: Path, patch: PatchFile) -> Method:
    path = str(patch.path)
    if _applies(tree, patch):
        gitops.run(tree, "apply", "--whitespace=nowarn", path)
        return "clean"
    before = Snapshot.capture(tree, touched_paths(patch.text()))
    result = gitops.run(tree, "apply", "--3way", "--whitespace=nowarn", path, check=False)
    output = result.stderr + result.stdout
    if result.returncode == 0 and "with conflicts" not in output:
        return "3way"
    # A failed merge leaves conflict markers: explain the hunks against the files as they were before it.
    before.restore(tree)
    raise PatchConflict(patch.name, explain(tree, patch.name, patch.text()), output)


def _reverse_applies(tree: Path, patches: list[PatchFile]) -> bool:
    """True when every patch can be reversed, i.e. the tree already carries them all."""
    return bool(patches) and all(_applies(tree, p, reverse=True) for p in patches)


def apply_series(
    tree: Path,
    series: Series,
    tag: str,
    root: Path,
    *,
    force: bool = False,
    source: str | None = None,
) -> ApplyOutcome:
    """Apply `series` to the checkout at `tree` as one unit: all of it, or nothing at all."""
    tree = gitops.open_checkout(tree)
    patches = series.patches()
    placements = series.placements(root)
    state = read_state(tree)
    context = placement.template_context(tag, series)
    if state is not None:
        if state.matches(series, patches, placement.digests(placements, root, context)):
            return ApplyOutcome(tree, series.name, state.immich_version, True, state.patches, state.placed)
        raise PatcherError(
            f"{tree} is already patched ({state.tool}, series {state.series}) with a different version of "
            "the series; run `immich-aio revert` first, then patch again"
        )
    if _reverse_applies(tree, patches) and all((tree / p.dest).exists() for p in placements):
        return ApplyOutcome(tree, series.name, tag, True)
    dirty = gitops.dirty_files(tree)
    if dirty and not force:
        raise DirtyTree(dirty)
    if tag != series.base:
        fetch_from = source or gitops.origin_url(tree)
        if fetch_from:
            gitops.fetch_tag(tree, fetch_from, series.base)

    touched = {p.dest for p in placements}
    for patch in patches:
        touched |= touched_paths(patch.text())
    snapshot = Snapshot.capture(tree, touched)
    index_path = gitops.git_dir(tree) / "index"
    index_before = index_path.read_bytes() if index_path.is_file() else None
    applied: list[AppliedPatch] = []
    try:
        clashes = placement.conflicts(tree, placements)
        if clashes:
            raise PatchConflict("place.toml", clashes)
        placed = placement.place(tree, placements, root, context)
        for patch in patches:
            applied.append(AppliedPatch(patch.name, _digest(patch), _apply_one(tree, patch)))
    except BaseException:
        snapshot.restore(tree)
        raise
    finally:
        # `git apply --3way` stages what it merges; the index goes back to exactly what it was.
        if index_before is not None:
            index_path.write_bytes(index_before)
        elif index_path.exists():
            index_path.unlink()
    head = gitops.run(tree, "rev-parse", "HEAD").stdout.strip()
    _write_state(tree, State(series.name, tag, head, applied, list(placed), placed_sha256=placed), snapshot)
    return ApplyOutcome(tree, series.name, tag, False, applied, list(placed))


@dataclass
class PatchStatus:
    name: str
    state: Literal["applied", "not applied", "conflicts"]
    method: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "state": self.state, "method": self.method}


@dataclass
class TreeStatus:
    tree: Path
    recorded: State | None
    series: str | None
    patches: list[PatchStatus]
    modified_since: list[str]
    up_to_date: bool | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "tree": str(self.tree),
            "patched": self.recorded is not None,
            "series": self.series,
            "immichVersion": self.recorded.immich_version if self.recorded else None,
            "result": self.recorded.method if self.recorded else None,
            "patches": [p.to_json() for p in self.patches],
            "placed": self.recorded.placed if self.recorded else [],
            "modifiedSincePatch": self.modified_since,
            "upToDate": self.up_to_date,
        }


def status(tree: Path, series: Series | None, root: Path | None = None) -> TreeStatus:
    """What immich-aio applied to `tree`, and whether each patch of `series` is in the tree.

    With `root` (the series' repository), also whether the recorded series is the current one: a
    series whose patches or placed files changed since the tree was patched is not up to date.
    """
    tree = gitops.open_checkout(tree)
    state = read_state(tree)
    patches = series.patches() if series else []
    methods = {p.name: p.method for p in state.patches} if state else {}
    results = []
    for patch in patches:
        if _applies(tree, patch, reverse=True):
            results.append(PatchStatus(patch.name, "applied", methods.get(patch.name)))
        elif _applies(tree, patch):
            results.append(PatchStatus(patch.name, "not applied"))
        else:
            results.append(PatchStatus(patch.name, "conflicts", methods.get(patch.name)))
    modified = []
    up_to_date = None
    if state is not None:
        recorded = {p.name for p in state.patches}
        modified = [p.name for p in results if p.name in recorded and p.state != "applied"]
        if series is not None and root is not None:
            context = placement.template_context(state.immich_version, series)
            current = placement.digests(series.placements(root), root, context)
            up_to_date = state.matches(series, patches, current) and not modified
    name = state.series if state else (series.name if series else None)
    return TreeStatus(tree, state, name, results, modified, up_to_date)


def revert(tree: Path) -> State:
    """Restore every file immich-aio touched to its bytes before the patch; forget the state."""
    tree = gitops.open_checkout(tree)
    state = read_state(tree)
    if state is None:
        raise PatcherError(f"{tree} has no immich-aio record: nothing to revert (see `immich-aio status`)")
    folder = _state_dir(tree)
    Snapshot.load(folder / "backup.json").restore(tree)
    shutil.rmtree(folder)
    return state
