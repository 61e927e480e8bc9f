"""Kill `immich-aio patch` / `revert` at seeded points and check what the next command makes of the tree."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from patcher import gitops, state

from .conftest import tree_fingerprint

COMMAND = [sys.executable, "-m", "immich_aio"]


@dataclass
class KillReport:
    """What happened at each kill point: how the next command found the tree and what it said."""

    outcomes: dict[str, int] = field(default_factory=dict)
    messages: set[str] = field(default_factory=set)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def _journal(tree: Path) -> Path:
    return gitops.git_dir(tree) / state.STATE_DIR / state.JOURNAL


def _wait_for_journal(tree: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not _journal(tree).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.0005)


def timed_run(argv: list[str], tree: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run `argv` to the end; returns (seconds in all, seconds from its journal's appearance to its exit)."""
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_journal(tree, process)
    journaled = time.monotonic()
    assert process.wait() == 0
    ended = time.monotonic()
    return ended - started, ended - journaled


def run_killed(
    argv: list[str], tree: Path, rng: random.Random, window: tuple[float, float], env: dict[str, str]
) -> bool:
    """Start `argv`, and SIGKILL it at a seeded moment: half the time anywhere in its run, half the time
    after it has opened its journal (inside its writes). Returns whether it was killed; a run that ended
    by itself must have succeeded."""
    whole, writes = window
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if rng.random() < 0.5:
        time.sleep(rng.uniform(0, whole))
    else:
        _wait_for_journal(tree, process)
        time.sleep(rng.uniform(0, writes * 1.2))
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return True
    _, err = process.communicate()
    assert process.returncode == 0, f"{argv[3]} failed on its own: {err.decode(errors='replace')}"
    return False


def status_json(tree: Path, env: dict[str, str]) -> dict[str, object]:
    result = subprocess.run(
        [*COMMAND, "status", str(tree), "--json"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def exercise(
    tree: Path,
    patch_args: list[str],
    points: int,
    seed: int,
    env: dict[str, str] | None = None,
) -> KillReport:
    """Kill patch and revert `points` times each way; after every kill the next command must leave the tree
    byte-exact upstream or fully patched, matching what it reports."""
    env = dict(os.environ if env is None else env)
    upstream = tree_fingerprint(tree)
    patch_window = timed_run([*COMMAND, "patch", "--in-place", str(tree), *patch_args], tree, env)
    patched = tree_fingerprint(tree)
    revert_window = timed_run([*COMMAND, "revert", str(tree)], tree, env)
    assert tree_fingerprint(tree) == upstream
    assert patched != upstream
    rng = random.Random(seed)
    report = KillReport()
    for _ in range(points):
        is_patched = tree_fingerprint(tree) == patched
        argv = (
            [*COMMAND, "revert", str(tree)]
            if is_patched
            else [*COMMAND, "patch", "--in-place", str(tree), *patch_args]
        )
        killed = run_killed(argv, tree, rng, revert_window if is_patched else patch_window, env)
        status = status_json(tree, env)
        now = tree_fingerprint(tree)
        if status["recovered"]:
            report.messages.add(str(status["recovered"]).split(":")[0])
        if now == upstream:
            assert not status["patched"], "the tree is upstream but the record says patched"
            report.count(f"{'revert' if is_patched else 'patch'} {'killed' if killed else 'ran'} -> upstream")
        else:
            assert now == patched, "after a kill the tree is neither upstream nor fully patched"
            assert status["patched"], "the tree is patched but has no record"
            report.count(f"{'revert' if is_patched else 'patch'} {'killed' if killed else 'ran'} -> patched")
    return report
