"""Applies, inspects and reverts a patch series on an Immich checkout, atomically and idempotently.

Atomic also when the process is killed: every apply and revert keeps a journal in `.git/immich-aio/`
(patcher.state) from before its first write until after its last, and the next apply, status or revert
of the tree finds it and brings the tree back to byte-exact upstream (an apply cut short) or finishes the
revert, and says which.
"""

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from patcher import gitops, placement
from patcher import state as record
from patcher.diagnose import explain, touched_paths
from patcher.errors import DirtyTree, PatchConflict, PatcherError
from patcher.manifest import Series
from patcher.snapshot import Snapshot
from patcher.state import AppliedPatch, Method, State, overall_method, read_state
from patcher.store import PatchFile, split_patch


@dataclass
class ApplyOutcome:
    tree: Path
    series: str
    immich_version: str
    already_applied: bool
    patches: list[AppliedPatch] = field(default_factory=list)
    placed: list[str] = field(default_factory=list)
    recovered: str | None = None

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
            "recovered": self.recovered,
        }


def _restore_index(tree: Path, before: bytes | None) -> None:
    """Put the git index back byte for byte (`git apply --3way` stages what it merges)."""
    index_path = gitops.git_dir(tree) / "index"
    lock = index_path.with_name("index.lock")
    # A git process killed with us leaves its lock; while our journal is open the index is ours.
    lock.unlink(missing_ok=True)
    if before is not None:
        record.write_atomic(index_path, before)
    else:
        index_path.unlink(missing_ok=True)


def recover(tree: Path) -> str | None:
    """Finish or undo an apply or revert that was killed; returns what was done, or None if nothing was."""
    tree = gitops.open_checkout(tree)
    record.discard_partials(tree)
    journal = record.read_journal(tree)
    if journal is None:
        return None
    state = read_state(tree)
    if journal.operation == "apply" and state is not None and state.journal == journal.id:
        record.end_journal(tree)
        return f"an interrupted patch had finished: the tree is fully patched (series {journal.series})"
    backup = record.read_backup(tree)
    if backup is not None:  # without it the tree was restored already and only the clean-up was cut short
        backup.restore(tree)
    if journal.operation == "apply" and backup is not None:
        _restore_index(tree, record.index_before(tree) if journal.had_index else None)
    record.clear(tree)
    if journal.operation == "apply":
        return (
            f"an interrupted patch (series {journal.series}) was undone: the tree is back to upstream "
            f"{journal.immich_version}"
        )
    return f"an interrupted revert was finished: the tree is back to upstream {journal.immich_version}"


def applies_exactly(tree: Path, patch: PatchFile, *, reverse: bool = False) -> bool:
    """Whether `git apply` (or its reverse) would succeed exactly, without touching the tree."""
    flags = ["--check", "--whitespace=nowarn", *(["--reverse"] if reverse else [])]
    return gitops.run(tree, "apply", *flags, "-", stdin=patch.text(), check=False).returncode == 0


INDEX_LINE = re.compile(r"^index [0-9a-f]+\.\.", re.MULTILINE)


def against_base(tree: Path, text: str, base: str) -> str:
    """`text` with each section's preimage blob set to the file in `base`: the 3-way merge's common
    ancestor is the release the series' overrides were made against, whichever copy a section came from."""
    sections = split_patch(text)
    parts = [sections.header]
    for section in sections.sections:
        blob = gitops.run(tree, "rev-parse", "--verify", "-q", f"{base}:{section.path}", check=False)
        if blob.returncode == 0:
            parts.append(INDEX_LINE.sub(f"index {blob.stdout.strip()}..", section.text, count=1))
        else:
            parts.append(section.text)
    return "".join(parts)


def apply_one(tree: Path, patch: PatchFile, base: str) -> Method:
    """Apply one edit: exactly where it fits, else by a 3-way merge against `base`; a conflict is an error."""
    if applies_exactly(tree, patch):
        gitops.run(tree, "apply", "--whitespace=nowarn", "-", stdin=patch.text())
        return "clean"
    before = Snapshot.capture(tree, touched_paths(patch.text()))
    # --3way implies --index, which refuses files whose index entry looks stale; a file an earlier revert or
    # recovery rewrote byte for byte is one. The index is put back byte for byte after the series anyway.
    gitops.run(tree, "update-index", "-q", "--refresh", check=False)
    merge_text = against_base(tree, patch.text(), base)
    result = gitops.run(tree, "apply", "--3way", "--whitespace=nowarn", "-", stdin=merge_text, check=False)
    output = result.stderr + result.stdout
    if result.returncode == 0 and "with conflicts" not in output:
        return "3way"
    # A failed merge leaves conflict markers: explain the hunks against the files as they were before it.
    before.restore(tree)
    raise PatchConflict(patch.name, explain(tree, patch.name, patch.text()), output)


def stacked(tree: Path, patches: list[PatchFile]) -> tuple[set[str], set[str]]:
    """(carried, missing): the patches the tree on disk carries, undone last first, and those it lacks,
    applied first to last; each is judged on top of the ones before it (an edit may build on an earlier
    edit's lines), in scratch indexes read from the tree once."""
    with tempfile.TemporaryDirectory(prefix="immich-aio-index-") as scratch:
        carried, missing = Path(scratch) / "carried", Path(scratch) / "missing"
        gitops.run(tree, "read-tree", "HEAD", env={"GIT_INDEX_FILE": str(carried)})
        gitops.run(tree, "add", "-A", env={"GIT_INDEX_FILE": str(carried)})
        shutil.copyfile(carried, missing)
        return _fits(tree, carried, patches[::-1], reverse=True), _fits(tree, missing, patches, reverse=False)


def _fits(tree: Path, index: Path, patches: list[PatchFile], *, reverse: bool) -> set[str]:
    """The patches that apply exactly in turn to `index`, each applied there once it does."""
    flags = ["--cached", "--whitespace=nowarn", *(["--reverse"] if reverse else [])]
    env = {"GIT_INDEX_FILE": str(index)}
    fits = set()
    for patch in patches:
        check = gitops.run(tree, "apply", "--check", *flags, "-", stdin=patch.text(), check=False, env=env)
        if check.returncode == 0:
            gitops.run(tree, "apply", *flags, "-", stdin=patch.text(), env=env)
            fits.add(patch.name)
    return fits


def _reverseapplies_exactly(tree: Path, patches: list[PatchFile]) -> bool:
    """True when every patch can be reversed, i.e. the tree already carries them all."""
    return bool(patches) and stacked(tree, patches)[0] == {p.name for p in patches}


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
    recovered = recover(tree)
    patches = series.patches(tag)
    placements = series.placements(root, tag)
    state = read_state(tree)
    context = placement.template_context(tag, series)
    if state is not None:
        if state.matches(series, patches, placement.digests(placements, root, context)):
            return ApplyOutcome(
                tree, series.name, state.immich_version, True, state.patches, state.placed, recovered
            )
        raise PatcherError(
            f"{tree} is already patched ({state.tool}, series {state.series}) with a different version of "
            "the series; run `immich-aio revert` first, then patch again"
        )
    if _reverseapplies_exactly(tree, patches) and all((tree / p.dest).exists() for p in placements):
        return ApplyOutcome(tree, series.name, tag, True, recovered=recovered)
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
    journal = record.begin_apply(tree, snapshot, index_before, series.name, tag)
    applied: list[AppliedPatch] = []
    try:
        clashes = placement.conflicts(tree, placements)
        if clashes:
            raise PatchConflict("place.toml", clashes)
        placed = placement.place(tree, placements, root, context)
        for patch in patches:
            applied.append(
                AppliedPatch(patch.name, record.digest(patch), apply_one(tree, patch, series.base))
            )
    except BaseException:
        snapshot.restore(tree)
        _restore_index(tree, index_before)
        record.clear(tree)
        raise
    _restore_index(tree, index_before)
    head = gitops.run(tree, "rev-parse", "HEAD").stdout.strip()
    done = State(series.name, tag, head, applied, list(placed), placed_sha256=placed, journal=journal.id)
    record.write_state(tree, done)
    record.end_journal(tree)
    return ApplyOutcome(tree, series.name, tag, False, applied, list(placed), recovered)


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
    recovered: str | None = None

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
            "recovered": self.recovered,
        }


def status(tree: Path, series: Series | None, root: Path | None = None, tag: str | None = None) -> TreeStatus:
    """What immich-aio applied to `tree`, and whether each patch of `series` is in the tree.

    With `root` (the series' repository), also whether the recorded series is the current one: a
    series whose patches or placed files changed since the tree was patched is not up to date. An unpatched
    tree is compared with the edits as `tag` (its release) takes them.
    """
    tree = gitops.open_checkout(tree)
    recovered = recover(tree)
    state = read_state(tree)
    patches = series.patches(state.immich_version if state else tag) if series else []
    methods = {p.name: p.method for p in state.patches} if state else {}
    results = []
    carried, missing = stacked(tree, patches)
    for patch in patches:
        if patch.name in carried:
            results.append(PatchStatus(patch.name, "applied", methods.get(patch.name)))
        elif patch.name in missing:
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
            current = placement.digests(series.placements(root, state.immich_version), root, context)
            up_to_date = state.matches(series, patches, current) and not modified
    name = state.series if state else (series.name if series else None)
    return TreeStatus(tree, state, name, results, modified, up_to_date, recovered)


@dataclass(frozen=True)
class RevertOutcome:
    tree: Path
    series: str | None
    immich_version: str | None
    recovered: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "tree": str(self.tree),
            "reverted": self.series,
            "immichVersion": self.immich_version,
            "recovered": self.recovered,
        }


def revert(tree: Path) -> RevertOutcome:
    """Restore every file immich-aio touched to its bytes before the patch; forget the state."""
    tree = gitops.open_checkout(tree)
    recovered = recover(tree)
    state = read_state(tree)
    if state is None:
        if recovered:
            return RevertOutcome(tree, None, None, recovered)
        raise PatcherError(f"{tree} has no immich-aio record: nothing to revert (see `immich-aio status`)")
    backup = record.read_backup(tree)
    if backup is None:
        raise PatcherError(f"{tree}: the immich-aio record has no backup; the tree cannot be reverted safely")
    record.begin_revert(tree, state)
    backup.restore(tree)
    record.clear(tree)
    return RevertOutcome(tree, state.series, state.immich_version, recovered)
