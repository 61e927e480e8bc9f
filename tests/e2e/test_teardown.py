"""Cleanup on failure at the run level: a failing step still ends with every service stopped and proven so."""

import shutil
import sys
from pathlib import Path

import pytest

from e2e import services
from e2e.ports import LOOPBACK, PortAllocator, is_port_free
from e2e.report import Outcome, Report
from e2e.run import tear_down
from e2e.supervisor import ProcessSpec, Supervisor, http_probe


def test_failed_step_then_teardown_stops_everything(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hello")
    ports = PortAllocator()
    supervisor = Supervisor(tmp_path / "logs")
    report = Report(tmp_path / "report")
    cleaned: list[str] = []
    supervisor.add_cleanup("database", lambda: cleaned.append("database"))
    started = []
    for name in ("first", "second"):
        port = ports.take()
        spec = ProcessSpec(
            name=name,
            argv=[
                sys.executable,
                "-m",
                "http.server",
                str(port),
                "--bind",
                LOOPBACK,
                "--directory",
                str(tmp_path),
            ],
            ready=http_probe(f"http://{LOOPBACK}:{port}/hello.txt", contains="hello"),
            ready_timeout=20,
            stop_timeout=5,
        )
        started.append((supervisor.start(spec), port))
    with pytest.raises(RuntimeError), report.check("a check that blows up"):
        raise RuntimeError("Immich answered 500")

    tear_down(supervisor, ports, report)

    assert [c.outcome for c in report.checks] == [Outcome.FAILED, Outcome.PASSED]
    assert report.checks[1].name.startswith("teardown")
    assert cleaned == ["database"]
    for process, port in started:
        assert not process.is_running()
        assert is_port_free(port)
    assert report.exit_code == 1


def test_teardown_reports_a_cleanup_that_failed(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "logs")

    def broken() -> None:
        raise OSError("pg_ctl: could not stop server")

    supervisor.add_cleanup("postgres", broken)
    report = Report(tmp_path / "report")
    tear_down(supervisor, PortAllocator(), report)
    assert report.checks[-1].outcome == Outcome.FAILED
    assert "pg_ctl: could not stop server" in report.checks[-1].detail


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="Debian redis-server not installed")
def test_redis_service_starts_on_loopback_and_stops(tmp_path: Path) -> None:
    port = PortAllocator().take()
    with Supervisor(tmp_path / "logs") as supervisor:
        redis = supervisor.start(services.redis_spec(port, tmp_path / "redis"))
        assert redis.ready_seconds is not None
        assert not is_port_free(port)
    assert not redis.is_running()
    assert is_port_free(port)


def test_immich_spec_refuses_an_unbuilt_tree(tmp_path: Path) -> None:
    with pytest.raises(services.ServiceError, match="build the tree first"):
        services.immich_spec(tmp_path, Path("/usr/bin/node"), {"IMMICH_PORT": "1"}, 10)


def test_immich_environment_stays_on_loopback(tmp_path: Path) -> None:
    env = services.immich_env(2283, "postgresql://u@127.0.0.1:5/immich", 6, "http://127.0.0.1:7", tmp_path,
                              tmp_path / "build", [8, 9])  # fmt: skip
    assert env["IMMICH_HOST"] == LOOPBACK
    assert env["REDIS_HOSTNAME"] == LOOPBACK
    assert env["DB_VECTOR_EXTENSION"] == "pgvector"
    assert env["IMMICH_MACHINE_LEARNING_URL"] == "http://127.0.0.1:7"
    assert env["IMMICH_BUILD_DATA"] == str(tmp_path / "build")
