"""Process supervision: start real processes, wait until ready, stop them all on exit, failure or signal."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

import httpx

Probe = Callable[[], bool]

_PR_SET_PDEATHSIG = 1


class SupervisionError(RuntimeError):
    """A supervised process could not be started, became unready, or died."""


class ProcessFailed(SupervisionError):
    """A supervised process exited when it should be running."""


class ReadinessTimeout(SupervisionError):
    """A supervised process did not become ready in time."""


class Interrupted(KeyboardInterrupt):
    """The harness received SIGTERM/SIGHUP; raised so that every `finally`/`with` cleanup still runs."""


def http_probe(
    url: str, expect_status: int = 200, contains: str | None = None, timeout: float = 2.0
) -> Probe:
    """A probe that is true when GET url answers expect_status (and its body contains `contains`)."""

    def probe() -> bool:
        try:
            response = httpx.get(url, timeout=timeout)
        except httpx.HTTPError:
            return False
        if response.status_code != expect_status:
            return False
        return contains is None or contains in response.text

    return probe


def tcp_probe(host: str, port: int, send: bytes | None = None, expect: bytes | None = None) -> Probe:
    """A probe that is true when host:port accepts a connection (and answers `expect` to `send`)."""

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=1.0) as sock:
                if send is None:
                    return True
                sock.sendall(send)
                answer = sock.recv(256)
        except OSError:
            return False
        return expect is None or answer.startswith(expect)

    return probe


def wait_until(
    predicate: Probe,
    timeout: float,
    what: str,
    interval: float = 0.25,
    while_alive: Callable[[], None] | None = None,
) -> float:
    """Poll `predicate` until true; returns the seconds waited. `while_alive` may raise to stop early."""
    started = time.monotonic()
    while True:
        if while_alive is not None:
            while_alive()
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise ReadinessTimeout(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one service: command, environment, readiness probe and stop behaviour."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    ready: Probe | None = None
    ready_timeout: float = 60.0
    stop_timeout: float = 15.0
    inherit_env: bool = True


class ManagedProcess:
    """One running service: its process (leader of its own process group) and its log file."""

    def __init__(self, spec: ProcessSpec, popen: subprocess.Popen[bytes], log_path: Path) -> None:
        self.spec = spec
        self.popen = popen
        self.log_path = log_path
        self.started_at = time.monotonic()
        self.ready_seconds: float | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def is_running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of this process's log, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def ensure_running(self) -> None:
        """Raise ProcessFailed (with the log tail) when the process has exited."""
        code = self.popen.poll()
        if code is not None:
            tail = self.log_tail()
            raise ProcessFailed(f"{self.spec.name} exited with code {code}; log {self.log_path}:\n{tail}")


def _die_with_parent() -> None:
    """Runs in the child before exec: own process group, and SIGTERM if the harness itself dies."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class Supervisor:
    """Starts services, remembers them, and stops them (plus registered cleanups) in reverse order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._processes: dict[str, ManagedProcess] = {}
        self._teardown: list[tuple[str, Callable[[], None]]] = []
        self.cleanup_errors: list[str] = []
        self.closed = False

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def processes(self) -> Mapping[str, ManagedProcess]:
        return dict(self._processes)

    def get(self, name: str) -> ManagedProcess:
        return self._processes[name]

    def start(self, spec: ProcessSpec) -> ManagedProcess:
        """Start `spec` and wait for its readiness probe; on failure the process is stopped and we raise."""
        if spec.name in self._processes and self._processes[spec.name].is_running():
            raise SupervisionError(f"{spec.name} is already running (pid {self._processes[spec.name].pid})")
        env = {**os.environ, **spec.env} if spec.inherit_env else dict(spec.env)
        log_path = self.log_dir / f"{spec.name}.log"
        with log_path.open("ab") as log:
            log.write(f"--- start {time.strftime('%Y-%m-%dT%H:%M:%S')}: {' '.join(spec.argv)}\n".encode())
            log.flush()
            try:
                popen = subprocess.Popen(
                    list(spec.argv),
                    cwd=spec.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_die_with_parent,
                )
            except OSError as error:
                raise SupervisionError(f"cannot start {spec.name}: {error}") from error
        managed = ManagedProcess(spec, popen, log_path)
        self._processes[spec.name] = managed
        if f"stop {spec.name}" not in [what for what, _ in self._teardown]:
            self._teardown.append((f"stop {spec.name}", lambda: self._stop_quietly(spec.name)))
        if spec.ready is not None:
            try:
                managed.ready_seconds = wait_until(
                    spec.ready,
                    spec.ready_timeout,
                    f"{spec.name} to become ready",
                    while_alive=managed.ensure_running,
                )
            except SupervisionError as error:
                self._stop(managed)
                if isinstance(error, ReadinessTimeout):
                    raise ReadinessTimeout(f"{error}; last log lines:\n{managed.log_tail()}") from error
                raise
        return managed

    def stop(self, name: str) -> int | None:
        """Stop one service (SIGTERM to its group, SIGKILL after its grace period); returns its exit code."""
        return self._stop(self._processes[name])

    def restart(self, name: str) -> ManagedProcess:
        """Stop (if needed) and start a service again with the same spec."""
        managed = self._processes[name]
        self._stop(managed)
        return self.start(managed.spec)

    def add_cleanup(self, what: str, action: Callable[[], None]) -> None:
        """Run `action` at close (last registered runs first), e.g. stopping a server started via pg_ctl."""
        self._teardown.append((what, action))

    def check_alive(self) -> None:
        """Raise ProcessFailed if any started service died unexpectedly."""
        for managed in self._processes.values():
            managed.ensure_running()

    def close(self) -> None:
        """Stop every service and run every cleanup, newest first; errors are collected, never raised.

        Services and cleanups share one last-in-first-out list, so a service is stopped before the
        resources it was started on (registered earlier) are torn down.
        """
        if self.closed:
            return
        self.closed = True
        for what, action in reversed(self._teardown):
            try:
                action()
            except Exception as error:  # cleanup must go on whatever one step raises
                self.cleanup_errors.append(f"{what}: {error}")

    def _stop_quietly(self, name: str) -> None:
        self._stop(self._processes[name])

    def _stop(self, managed: ManagedProcess) -> int | None:
        if managed.popen.poll() is not None:
            _signal_group(managed.pid, signal.SIGKILL)  # leftovers of an exited leader
            return managed.popen.returncode
        _signal_group(managed.pid, signal.SIGTERM)
        try:
            managed.popen.wait(timeout=managed.spec.stop_timeout)
        except subprocess.TimeoutExpired:
            _signal_group(managed.pid, signal.SIGKILL)
            managed.popen.wait(timeout=10)
        _signal_group(managed.pid, signal.SIGKILL)
        return managed.popen.returncode


@contextlib.contextmanager
def signals_raise_interrupted() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise Interrupted and Ctrl-C raises KeyboardInterrupt, so
    cleanup code runs. Ctrl-C gets a handler of its own: a process started in the background by a shell
    inherits SIGINT as ignored, and Python then installs no KeyboardInterrupt handler at all."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(f"received signal {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """Within the block, Ctrl-C, SIGTERM and SIGHUP are ignored: a second signal cannot cut teardown short."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
