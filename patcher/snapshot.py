"""Byte-exact snapshots of the files a series touches, so a failed apply or a revert restores them."""

import base64
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FileRecord:
    existed: bool
    mode: int = 0
    content: bytes = b""


@dataclass
class Snapshot:
    """The prior state of a set of paths (relative to the work tree) and of folders that did not exist."""

    files: dict[str, FileRecord] = field(default_factory=dict)
    missing_dirs: list[str] = field(default_factory=list)

    @classmethod
    def capture(cls, tree: Path, paths: set[str]) -> "Snapshot":
        snapshot = cls()
        for rel in sorted(paths):
            path = tree / rel
            if path.is_file() or path.is_symlink():
                snapshot.files[rel] = FileRecord(True, path.lstat().st_mode, path.read_bytes())
            else:
                snapshot.files[rel] = FileRecord(False)
                parent = Path(rel).parent
                while parent != Path(".") and not (tree / parent).exists():
                    if str(parent) not in snapshot.missing_dirs:
                        snapshot.missing_dirs.append(str(parent))
                    parent = parent.parent
        return snapshot

    def restore(self, tree: Path) -> None:
        for rel, record in self.files.items():
            path = tree / rel
            if record.existed:
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                path.write_bytes(record.content)
                os.chmod(path, record.mode & 0o7777)
            elif path.is_file() or path.is_symlink():
                path.unlink()
        # Deepest first, so nested folders the apply created disappear too.
        for rel in sorted(self.missing_dirs, key=lambda d: d.count("/"), reverse=True):
            folder = tree / rel
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    def to_json(self) -> dict[str, object]:
        return {
            "files": {
                rel: {"existed": r.existed, "mode": r.mode, "content": base64.b64encode(r.content).decode()}
                for rel, r in self.files.items()
            },
            "missing_dirs": self.missing_dirs,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> "Snapshot":
        files_data = data.get("files", {})
        assert isinstance(files_data, dict)
        files = {
            rel: FileRecord(bool(r["existed"]), int(r["mode"]), base64.b64decode(r["content"]))
            for rel, r in files_data.items()
        }
        dirs = data.get("missing_dirs", [])
        assert isinstance(dirs, list)
        return cls(files, [str(d) for d in dirs])
