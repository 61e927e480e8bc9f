"""What immich-aio records about a checkout in `.git/immich-aio/`: the applied series, its backup, and a
journal of the operation in progress, each file written atomically so a killed run can be undone."""

import hashlib
import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from patcher import __version__, gitops
from patcher.manifest import Series
from patcher.snapshot import Snapshot
from patcher.store import PatchFile

Method = Literal["clean", "3way"]
Operation = Literal["apply", "revert"]
STATE_DIR = "immich-aio"
STATE, BACKUP, JOURNAL, INDEX_BEFORE = "state.json", "backup.json", "journal.json", "index.before"


def digest(patch: PatchFile) -> str:
    return hashlib.sha256(patch.text().encode("utf-8")).hexdigest()


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
    #: The journal of the apply that wrote this state: a journal with this id left behind is finished.
    journal: str = ""

    def matches(self, series: Series, patches: list[PatchFile], placed_now: dict[str, str]) -> bool:
        """True when the tree carries exactly this series as it is now (patches and placed files)."""
        return (
            self.series == series.name
            and [p.sha256 for p in self.patches] == [digest(p) for p in patches]
            and self.placed_sha256 == placed_now
        )

    @property
    def method(self) -> Method:
        return overall_method(self.patches)


@dataclass(frozen=True)
class Journal:
    """An apply or revert that has started writing to the tree and not yet finished."""

    operation: Operation
    id: str
    series: str
    immich_version: str
    #: Whether the tree had a git index before the apply (its bytes are in index.before).
    had_index: bool = False


def folder(tree: Path) -> Path:
    return gitops.git_dir(tree) / STATE_DIR


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves either the old file or the new one, never a part."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_state(tree: Path) -> State | None:
    path = folder(tree) / STATE
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    data["patches"] = [AppliedPatch(**p) for p in data["patches"]]
    return State(**data)


def write_state(tree: Path, state: State) -> None:
    write_atomic(folder(tree) / STATE, json.dumps(asdict(state), indent=2).encode("utf-8"))


def read_backup(tree: Path) -> Snapshot | None:
    path = folder(tree) / BACKUP
    return Snapshot.from_json(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


def read_journal(tree: Path) -> Journal | None:
    path = folder(tree) / JOURNAL
    if not path.is_file():
        return None
    return Journal(**json.loads(path.read_text(encoding="utf-8")))


def begin_apply(tree: Path, snapshot: Snapshot, index: bytes | None, series: str, tag: str) -> Journal:
    """Record, before the first write, everything needed to put the tree back: the backup, then the index,
    then the journal itself, which is what tells the next run that an apply was under way."""
    target = folder(tree)
    target.mkdir(parents=True, exist_ok=True)
    write_atomic(target / BACKUP, json.dumps(snapshot.to_json()).encode("utf-8"))
    if index is not None:
        write_atomic(target / INDEX_BEFORE, index)
    journal = Journal("apply", uuid.uuid4().hex, series, tag, had_index=index is not None)
    write_atomic(target / JOURNAL, json.dumps(asdict(journal)).encode("utf-8"))
    return journal


def begin_revert(tree: Path, state: State) -> Journal:
    journal = Journal("revert", uuid.uuid4().hex, state.series, state.immich_version)
    write_atomic(folder(tree) / JOURNAL, json.dumps(asdict(journal)).encode("utf-8"))
    return journal


def index_before(tree: Path) -> bytes | None:
    path = folder(tree) / INDEX_BEFORE
    return path.read_bytes() if path.is_file() else None


def end_journal(tree: Path) -> None:
    """The operation is complete: drop its journal and the copy of the index."""
    for name in (JOURNAL, INDEX_BEFORE):
        (folder(tree) / name).unlink(missing_ok=True)


def clear(tree: Path) -> None:
    """Forget the tree's record (state, backup, journal); other files of the folder (verify logs) stay.

    The state goes first and the journal last: a kill in between leaves a journal whose tree is already
    back to upstream, which the next run recognises by the missing backup.
    """
    for name in (STATE, BACKUP, JOURNAL, INDEX_BEFORE):
        (folder(tree) / name).unlink(missing_ok=True)


def discard_partials(tree: Path) -> None:
    """Files a killed atomic write left half-written (never renamed into place)."""
    target = folder(tree)
    if target.is_dir():
        for partial in target.glob("*.partial"):
            partial.unlink()
