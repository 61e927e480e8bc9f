"""Process supervision with real child processes: readiness, early death, cleanup order, signals."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from e2e.ports import LOOPBACK, PortAllocator
from e2e.supervisor import (
    ProcessFailed,
    ProcessSpec,
    ReadinessTimeout,
    Supervisor,
    http_probe,
    tcp_probe,
    wait_until,
)

PYTHON = sys.executable


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat it as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def http_server_spec(name: str, port: int, directory: Path) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        argv=[PYTHON, "-m", "http.server", str(port), "--bind", LOOPBACK, "--directory", str(directory)],
        ready=http_probe(f"http://{LOOPBACK}:{port}/hello.txt", contains="hello"),
        ready_timeout=20,
        stop_timeout=5,
    )


def test_start_waits_for_readiness_and_close_stops(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hello world")
    port = PortAllocator().take()
    with Supervisor(tmp_path / "logs") as supervisor:
        managed = supervisor.start(http_server_spec("web", port, tmp_path))
        assert managed.is_running()
        assert managed.ready_seconds is not None
        assert tcp_probe(LOOPBACK, port)()
        pid = managed.pid
    assert not pid_alive(pid)
    assert not tcp_probe(LOOPBACK, port)()
    assert (tmp_path / "logs" / "web.log").read_text().startswith("--- start")


def test_process_that_exits_early_fails_with_its_log(tmp_path: Path) -> None:
    spec = ProcessSpec(
        name="broken",
        argv=[PYTHON, "-c", "import sys; print('config is wrong: 发票', flush=True); sys.exit(3)"],
        ready=lambda: False,
        ready_timeout=20,
    )
    with Supervisor(tmp_path) as supervisor, pytest.raises(ProcessFailed) as caught:
        supervisor.start(spec)
    assert "exited with code 3" in str(caught.value)
    assert "config is wrong: 发票" in str(caught.value)


def test_readiness_timeout_stops_the_process(tmp_path: Path) -> None:
    spec = ProcessSpec(
        name="slow",
        argv=[PYTHON, "-c", "import time; time.sleep(60)"],
        ready=lambda: False,
        ready_timeout=1.0,
        stop_timeout=5,
    )
    with Supervisor(tmp_path) as supervisor:
        with pytest.raises(ReadinessTimeout):
            supervisor.start(spec)
        assert not supervisor.get("slow").is_running()


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = textwrap.dedent(f"""
        import subprocess, sys, time
        child = subprocess.Popen([{PYTHON!r}, "-c", "import time; time.sleep(120)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(120)
    """)
    with Supervisor(tmp_path) as supervisor:
        supervisor.start(
            ProcessSpec(
                name="parent",
                argv=[PYTHON, "-c", script],
                ready=pid_file.exists,
                ready_timeout=20,
                stop_timeout=5,
            )
        )
        wait_until(lambda: pid_file.read_text() != "", 10, "pid file")
        grandchild = int(pid_file.read_text())
        assert pid_alive(grandchild)
        supervisor.stop("parent")
    wait_until(lambda: not pid_alive(grandchild), 10, "grandchild to exit")


def test_stubborn_process_is_killed_after_grace(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"open({str(marker)!r}, 'w'); time.sleep(120)"
    )
    with Supervisor(tmp_path) as supervisor:
        supervisor.start(
            ProcessSpec(
                name="stubborn",
                argv=[PYTHON, "-c", script],
                ready=marker.exists,
                ready_timeout=20,
                stop_timeout=1.0,
            )
        )
        started = time.monotonic()
        code = supervisor.stop("stubborn")
        assert code == -signal.SIGKILL
        assert time.monotonic() - started < 10


def test_restart_and_check_alive(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hello")
    port = PortAllocator().take()
    with Supervisor(tmp_path / "logs") as supervisor:
        first = supervisor.start(http_server_spec("web", port, tmp_path)).pid
        supervisor.stop("web")
        with pytest.raises(ProcessFailed):
            supervisor.check_alive()
        second = supervisor.restart("web")
        assert second.pid != first
        supervisor.check_alive()


def test_close_runs_every_cleanup_newest_first_even_when_one_fails(tmp_path: Path) -> None:
    calls: list[str] = []
    supervisor = Supervisor(tmp_path)
    supervisor.add_cleanup("database", lambda: calls.append("database"))

    def failing() -> None:
        calls.append("failing")
        raise OSError("disk gone")

    supervisor.add_cleanup("failing", failing)
    marker = tmp_path / "up"
    managed = supervisor.start(
        ProcessSpec(
            name="server",
            argv=[PYTHON, "-c", f"open({str(marker)!r}, 'w'); import time; time.sleep(60)"],
            ready=marker.exists,
            ready_timeout=20,
            stop_timeout=5,
        )
    )
    supervisor.add_cleanup("media", lambda: calls.append(f"media, server running={managed.is_running()}"))
    supervisor.close()
    supervisor.close()  # idempotent
    assert calls == ["media, server running=True", "failing", "database"]
    assert not managed.is_running()
    assert supervisor.cleanup_errors == ["failing: disk gone"]


HARNESS = """
import sys, time
from pathlib import Path
from e2e.supervisor import ProcessSpec, Supervisor, signals_raise_interrupted
out = Path(sys.argv[1])
with signals_raise_interrupted(), Supervisor(out / "logs") as supervisor:
    supervisor.add_cleanup("marker", lambda: (out / "cleaned").write_text("yes"))
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    child = supervisor.start(ProcessSpec(name="child", argv=sleeper))
    (out / "child.pid").write_text(str(child.pid))
    time.sleep(120)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_harness_stops_children_and_runs_cleanup(tmp_path: Path, sig: signal.Signals) -> None:
    repo = Path(__file__).resolve().parents[2]
    harness = subprocess.Popen(
        [PYTHON, "-c", HARNESS, str(tmp_path)], cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}
    )
    try:
        wait_until((tmp_path / "child.pid").exists, 30, "harness to start its child")
        child = int((tmp_path / "child.pid").read_text())
        assert pid_alive(child)
        harness.send_signal(sig)
        harness.wait(timeout=30)
    finally:
        if harness.poll() is None:
            harness.kill()
    assert (tmp_path / "cleaned").read_text() == "yes"
    wait_until(lambda: not pid_alive(child), 10, "child to exit")


def test_child_dies_with_a_killed_harness(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    harness = subprocess.Popen(
        [PYTHON, "-c", HARNESS, str(tmp_path)], cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}
    )
    try:
        wait_until((tmp_path / "child.pid").exists, 30, "harness to start its child")
        child = int((tmp_path / "child.pid").read_text())
        harness.kill()  # SIGKILL: no cleanup code can run; the child must still go (parent-death signal)
        harness.wait(timeout=10)
    finally:
        if harness.poll() is None:
            harness.kill()
    wait_until(lambda: not pid_alive(child), 10, "orphaned child to exit")


HARNESS_SLOW_TEARDOWN = """
import sys, time
from pathlib import Path
from e2e.supervisor import ProcessSpec, Supervisor, signals_ignored, signals_raise_interrupted
out = Path(sys.argv[1])
supervisor = Supervisor(out / "logs")
try:
    with signals_raise_interrupted():
        supervisor.add_cleanup("slow", lambda: (time.sleep(2), (out / "cleaned").write_text("yes")))
        sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
        child = supervisor.start(ProcessSpec(name="child", argv=sleeper))
        (out / "child.pid").write_text(str(child.pid))
        time.sleep(120)
except KeyboardInterrupt:
    pass
finally:
    with signals_ignored():
        (out / "teardown").write_text("started")
        supervisor.close()
"""


def test_second_signal_during_teardown_does_not_cut_it_short(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    harness = subprocess.Popen(
        [PYTHON, "-c", HARNESS_SLOW_TEARDOWN, str(tmp_path)],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    try:
        wait_until((tmp_path / "child.pid").exists, 30, "harness to start its child")
        child = int((tmp_path / "child.pid").read_text())
        harness.send_signal(signal.SIGTERM)
        wait_until((tmp_path / "teardown").exists, 10, "teardown to begin")
        harness.send_signal(signal.SIGTERM)
        harness.send_signal(signal.SIGINT)
        harness.wait(timeout=30)
    finally:
        if harness.poll() is None:
            harness.kill()
    assert (tmp_path / "cleaned").read_text() == "yes"
    wait_until(lambda: not pid_alive(child), 10, "child to exit")
