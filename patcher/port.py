"""`immich-aio port`: carry the nearest series to a new Immich release, one edit per commit, and record it.

The maintainer's loop, as `gbp pq` keeps a patch queue: the release is cloned, the placed files become one
commit, then each edit of the nearest series (composed as that series' base takes it) is applied with a
3-way merge against that base and committed. The first edit that needs a person stops the loop with the
engine's diagnosis and its conflict markers left in the tree; once resolved (`git add`), `--continue` commits
it and goes on. When every edit is a commit, each one's diff is compared with the series' own: a release
whose edits all land unchanged joins that series; otherwise a new series gets overrides for exactly the
sections that moved. Either way the overrides the base takes are widened to the new release.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from patcher import engine, gitops, placement, store_edit
from patcher.diagnose import explain
from patcher.errors import PatchConflict, PatcherError, UsageError
from patcher.manifest import Manifest, Series
from patcher.store import GENERATED, PatchFile, Section, split_patch
from patcher.versions import parse

AUTHOR = ["-c", "user.name=immich-aio port", "-c", "user.email=port@immich-aio.invalid"]
PLACED = "immich-aio: placed files"


def nearest_series(manifest: Manifest, tag: str) -> Series:
    """The series serving the newest release older than `tag` (else the oldest series)."""
    older = [t for t in manifest.supported() if parse(t) < parse(tag)]
    found = manifest.series_for(older[-1]) if older else manifest.series_for(manifest.supported()[0])
    if found is None:
        raise UsageError("the manifest serves no release to port from")
    return found


@dataclass
class PortState:
    """What a port has done so far, kept in the clone's .git/immich-aio/port.json for --continue."""

    tag: str
    series: str
    done: list[str] = field(default_factory=list)
    pending: str | None = None

    @staticmethod
    def path(tree: Path) -> Path:
        return gitops.git_dir(tree) / "immich-aio" / "port.json"

    def save(self, tree: Path) -> None:
        self.path(tree).parent.mkdir(parents=True, exist_ok=True)
        self.path(tree).write_text(json.dumps(self.__dict__, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, tree: Path) -> "PortState":
        try:
            return cls(**json.loads(cls.path(tree).read_text(encoding="utf-8")))
        except FileNotFoundError:
            message = f"{tree} has no port in progress; start one with `immich-aio port --to TAG`"
            raise UsageError(message) from None


def _commit(tree: Path, message: str) -> None:
    gitops.run(tree, "add", "-A")
    gitops.run(tree, *AUTHOR, "commit", "-q", "--allow-empty", "--no-verify", "-m", message)


def start(manifest: Manifest, source: str, tag: str, tree: Path, series: Series) -> PortState:
    """Clone `tag`, place the series' files for it and commit them; the queue starts empty."""
    gitops.clone_release(source, tag, tree)
    if not gitops.fetch_tag(tree, source, series.base):
        raise PatcherError(f"cannot fetch {series.base} from {source} for the 3-way merges")
    gitops.run(tree, "checkout", "-q", "-b", f"immich-aio-port-{tag}")
    placements = series.placements(manifest.root, tag)
    clashes = placement.conflicts(tree, placements)
    if clashes:
        raise PatchConflict("place.toml", clashes)
    placement.place(tree, placements, manifest.root, placement.template_context(tag, series))
    _commit(tree, PLACED)
    state = PortState(tag, series.name)
    state.save(tree)
    return state


def _apply(tree: Path, patch: PatchFile, base: str) -> str | None:
    """Apply one edit; None when it landed, else the diagnosis (conflict markers stay in the tree)."""
    if engine.applies_exactly(tree, patch):
        gitops.run(tree, "apply", "--whitespace=nowarn", "-", stdin=patch.text())
        return None
    diagnosis = str(PatchConflict(patch.name, explain(tree, patch.name, patch.text())))
    merge = engine.against_base(tree, patch.text(), base)
    result = gitops.run(tree, "apply", "--3way", "--whitespace=nowarn", "-", stdin=merge, check=False)
    output = result.stderr + result.stdout
    if result.returncode == 0 and "with conflicts" not in output:
        return None
    return f"{diagnosis}\n{output.strip()}"


def advance(manifest: Manifest, tree: Path, state: PortState) -> str | None:
    """Apply the edits not yet committed, one commit each; stop at the first that needs a person."""
    series = manifest.by_name(state.series)
    if state.pending is not None:
        unresolved = gitops.run(tree, "diff", "--name-only", "--diff-filter=U").stdout.split()
        markers = gitops.run(tree, "grep", "-l", "-e", "^<<<<<<< ", "--", ".", check=False).stdout.split()
        if unresolved or markers:
            raise UsageError(f"resolve and `git add` first: {', '.join(sorted(set(unresolved + markers)))}")
        _commit(tree, state.pending)
        state.done.append(state.pending)
        state.pending = None
        state.save(tree)
    taken = series.store.edits(state.tag)
    for patch in series.patches(series.base):
        if patch.name in state.done or patch.name not in taken:
            continue
        problem = _apply(tree, patch, series.base)
        if problem is not None:
            state.pending = patch.name
            state.save(tree)
            return problem
        _commit(tree, patch.name)
        state.done.append(patch.name)
        state.save(tree)
    return None


def _edit_commit(tree: Path, name: str) -> str:
    return gitops.run(tree, "log", "--format=%H", f"--grep=^{re.escape(name)}$", "-n", "1").stdout.strip()


def lands_unchanged(tree: Path, commit: str, section: Section) -> bool:
    """Whether `section` applied exactly to the tree before `commit` gives the file `commit` holds: the edit
    landed as stored (no 3-way merge, no hand)."""
    index = gitops.git_dir(tree) / "immich-aio" / "port-index"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        gitops.run(tree, "read-tree", f"{commit}^", env=env)
        command = ("apply", "--cached", "--whitespace=nowarn", "-")
        applied = gitops.run(tree, *command, stdin=section.text, env=env, check=False)
        if applied.returncode != 0:
            return False
        ours = gitops.run(tree, "rev-parse", f":{section.path}", env=env, check=False).stdout.strip()
    finally:
        index.unlink(missing_ok=True)
    theirs = gitops.run(tree, "rev-parse", f"{commit}:{section.path}", check=False).stdout.strip()
    return bool(ours) and ours == theirs


def edit_sections(tree: Path, commit: str) -> dict[str, Section]:
    """The sections of an edit's commit in the port's queue."""
    diff = gitops.run(tree, "diff", "--full-index", f"{commit}^", commit).stdout
    return {s.path: s for s in split_patch(diff).sections}


@dataclass(frozen=True)
class PortResult:
    tag: str
    series: str
    joined: bool
    written: list[Path]


def record(manifest: Manifest, tree: Path, state: PortState) -> PortResult:
    """Write what the release needs into the store: manifest entry, widened and new overrides."""
    series = manifest.by_name(state.series)
    written: list[Path] = []
    moved: dict[str, tuple[PatchFile, list[Section], list[Section]]] = {}
    for patch in series.patches(series.base):
        if patch.name not in state.done:
            continue
        commit = _edit_commit(tree, patch.name)
        ours = {s.path: s for s in split_patch(patch.text()).sections}
        theirs = edit_sections(tree, commit)
        changed = [
            section
            for path, section in theirs.items()
            if path not in ours or not lands_unchanged(tree, commit, ours[path])
        ]
        dropped = sorted(set(ours) - set(theirs))
        if dropped:
            missing = ", ".join(dropped)
            raise PatcherError(
                f"{patch.name}: the port no longer edits {missing}; write its override by hand"
            )
        if changed:
            moved[patch.name] = (patch, changed, list(theirs.values()))
    written += store_edit.widen_overrides(manifest, series, state.tag)
    if moved:
        name = store_edit.new_series_name(manifest, state.tag)
        description = f"Immich {state.tag}: as {series.name}, with the sections that moved in {state.tag}"
        written.append(store_edit.add_series(manifest, name, state.tag, description))
        for edit, (patch, changed, whole) in moved.items():
            if GENERATED in patch.path.parts:
                written.append(store_edit.write_generated(manifest, name, edit, patch.path, whole))
            else:
                written.append(store_edit.write_override(manifest, edit, state.tag, changed))
        for patch in series.patches(series.base):
            # the series' own generated edits that landed unchanged serve the new series until regenerated
            if patch.name not in moved and patch.path.parent.name == series.name:
                written.append(store_edit.copy_generated(manifest, patch.path, name))
        return PortResult(state.tag, name, False, written)
    written.append(store_edit.add_release(manifest, series.name, state.tag))
    return PortResult(state.tag, series.name, True, written)
