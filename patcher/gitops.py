"""Thin git plumbing for the engine: run commands, inspect a checkout, clone a release shallowly."""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

# GitPython refuses to import without a git executable; the commands that need no git (serve, db, in the
# ML image that has none) must still start, so it stays quiet and require_git() speaks instead.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import git

from patcher.errors import GitError, NotACheckout, PatcherError

UPSTREAM_URL = "https://github.com/immich-app/immich.git"


def require_git() -> None:
    if shutil.which("git") is None:
        raise PatcherError("git is not installed (not on PATH): install it (Debian/Ubuntu: apt install git)")


def run(
    tree: Path, *args: str, stdin: str | None = None, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    require_git()
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_OPTIONAL_LOCKS="0", **(env or {}))
    result = subprocess.run(
        ["git", *args], cwd=tree, input=stdin, capture_output=True, text=True, env=env, check=False
    )
    if check and result.returncode != 0:
        raise GitError(list(args), result.stderr or result.stdout)
    return result


def open_checkout(tree: Path) -> Path:
    """Return the top of the work tree containing `tree`, or raise NotACheckout."""
    if not tree.is_dir():
        raise NotACheckout(str(tree), "no such directory")
    result = run(tree, "rev-parse", "--show-toplevel", check=False)
    if result.returncode != 0:
        raise NotACheckout(str(tree), "not inside a git work tree")
    top = Path(result.stdout.strip())
    if run(top, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode != 0:
        raise NotACheckout(str(tree), "the repository has no commit")
    return top


def git_dir(tree: Path) -> Path:
    return Path(run(tree, "rev-parse", "--absolute-git-dir").stdout.strip())


def dirty_files(tree: Path) -> list[str]:
    """Modified, staged and untracked (not ignored) paths, as `git status` names them."""
    output = run(tree, "status", "--porcelain=v1", "-z", "--untracked-files=all").stdout
    return [entry[3:] for entry in output.split("\0") if len(entry) > 3]


def as_url(source: str) -> str:
    """Local paths become file:// URLs so that --depth is honoured."""
    if "://" in source or source.startswith("git@"):
        return source
    path = Path(source).expanduser().resolve()
    if not path.exists():
        raise PatcherError(f"source {source} does not exist")
    return path.as_uri()


def remote_release_tags(source: str) -> list[str]:
    """Tag names the source repository offers (empty when it cannot be reached)."""
    try:
        output = git.cmd.Git().ls_remote("--tags", "--refs", as_url(source))
    except (git.GitCommandError, PatcherError):
        return []
    return [line.rsplit("refs/tags/", 1)[-1] for line in str(output).splitlines() if "refs/tags/" in line]


ProgressCallback = Callable[[str, float | None], None]


class _CloneProgress(git.RemoteProgress):
    def __init__(self, callback: ProgressCallback) -> None:
        super().__init__()
        self.callback = callback

    def update(
        self, op_code: int, cur_count: str | float, max_count: str | float | None = None, message: str = ""
    ) -> None:
        stage = self._cur_line.split(":", 1)[0] if self._cur_line else "cloning"
        fraction = float(cur_count) / float(max_count) if max_count else None
        self.callback(stage.strip(), fraction)


def clone_release(source: str, tag: str, dest: Path, progress: ProgressCallback | None = None) -> Path:
    """Shallow-clone `tag` of `source` into `dest`; on failure nothing is left at `dest`."""
    if dest.exists():
        raise PatcherError(f"destination {dest} already exists; choose another --dest or remove it")
    require_git()
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        git.Repo.clone_from(
            as_url(source),
            staging,
            multi_options=[
                "--depth=1",
                f"--branch={tag}",
                "--single-branch",
            ],
            progress=_CloneProgress(progress) if progress else None,  # type: ignore[arg-type]
        )
    except git.GitCommandError as error:
        shutil.rmtree(staging, ignore_errors=True)
        detail = (error.stderr or str(error)).strip()
        raise PatcherError(f"could not clone {tag} from {source}:\n{detail}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    staging.rename(dest)
    return dest


def fetch_tag(tree: Path, source: str, tag: str) -> bool:
    """Bring `tag`'s objects into a shallow checkout (for 3-way merges); False when unreachable."""
    if run(tree, "rev-parse", "--verify", "-q", f"refs/tags/{tag}", check=False).returncode == 0:
        return True
    result = run(
        tree,
        "fetch",
        "--quiet",
        "--depth=1",
        "--no-tags",
        as_url(source),
        f"refs/tags/{tag}:refs/tags/{tag}",
        check=False,
    )
    return result.returncode == 0


def origin_url(tree: Path) -> str | None:
    result = run(tree, "remote", "get-url", "origin", check=False)
    return result.stdout.strip() or None if result.returncode == 0 else None
