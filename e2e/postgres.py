"""A throwaway local PostgreSQL cluster from Debian's binaries: the e2e database (tests use it too)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

DEFAULT_BIN_DIR = Path("/usr/lib/postgresql/15/bin")
SERVICE_USER = "postgres"


class EmbeddedPostgresError(RuntimeError):
    """The throwaway cluster could not be created or started."""


def find_bin_dir() -> Path:
    """Locate PostgreSQL server binaries: $IMMICH_AIO_PG_BIN, then Debian's PostgreSQL 15 location."""
    candidates = [os.environ.get("IMMICH_AIO_PG_BIN", ""), str(DEFAULT_BIN_DIR)]
    for candidate in candidates:
        if candidate and (Path(candidate) / "postgres").is_file():
            return Path(candidate)
    raise EmbeddedPostgresError(
        "PostgreSQL server binaries not found; install Debian's postgresql-15 (see install.sh) "
        "or set IMMICH_AIO_PG_BIN to a directory holding initdb, pg_ctl and postgres"
    )


def free_port() -> int:
    """Ask the kernel for a currently free loopback TCP port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster in a temporary directory, listening on loopback and a private unix socket.

    PostgreSQL refuses to run as root, so when started by root the server runs as the `postgres` OS user.
    """

    bin_dir: Path = field(default_factory=find_bin_dir)
    database: str = "immich"
    user: str = "postgres"
    settings: dict[str, str] = field(default_factory=dict)
    port: int = 0
    data_root: Path | None = None
    _log: Path | None = None

    def _as_service_user(self, args: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", SERVICE_USER, "--", *args]
        return args

    def _run(self, args: list[str]) -> None:
        result = subprocess.run(self._as_service_user(args), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log_tail = (
                self._log.read_text(errors="replace")[-2000:] if self._log and self._log.exists() else ""
            )
            raise EmbeddedPostgresError(
                f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr.strip()}\n{log_tail}"
            )

    @property
    def socket_dir(self) -> Path:
        assert self.data_root is not None, "cluster not started"
        return self.data_root / "run"

    @property
    def dsn(self) -> str:
        """A libpq connection string over loopback TCP."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> EmbeddedPostgres:
        """Create the cluster, start the server and create the database."""
        self.data_root = Path(tempfile.mkdtemp(prefix="immich-aio-pg-"))
        data_dir = self.data_root / "data"
        self.socket_dir.mkdir()
        self._log = self.data_root / "server.log"
        self._log.touch()
        if os.geteuid() == 0:
            shutil.chown(self.data_root, SERVICE_USER)
            shutil.chown(self.socket_dir, SERVICE_USER)
            shutil.chown(self._log, SERVICE_USER)
            self.data_root.chmod(0o755)
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        )
        self.port = self.port or free_port()
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "256MB",
            "maintenance_work_mem": "512MB",
            **self.settings,
        }
        server_options = " ".join(f"-c {key}={value}" for key, value in options.items())
        self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(data_dir),
                "-l",
                str(self._log),
                "-o",
                server_options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        try:
            self._create_database()
        except BaseException:
            # the caller never gets the cluster to stop: a failed start must not leave a server behind
            self.stop()
            raise
        return self

    def _create_database(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            result = subprocess.run(
                self._as_service_user(
                    [
                        str(self.bin_dir / "createdb"),
                        "-h",
                        str(self.socket_dir),
                        "-p",
                        str(self.port),
                        "-U",
                        self.user,
                        self.database,
                    ]
                ),
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0:
                return
            # retrying helps while the server is still starting up, never for a name that is taken
            if "already exists" in result.stderr or time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"createdb failed: {result.stderr.strip()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        if self.data_root is None:
            return
        data_dir = self.data_root / "data"
        if (data_dir / "postmaster.pid").exists():
            subprocess.run(
                self._as_service_user(
                    [str(self.bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "stop"]
                ),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.data_root, ignore_errors=True)
        self.data_root = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
