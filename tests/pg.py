"""A throwaway PostgreSQL server for the tests, started from Debian's `postgresql` package.

`make test` installs the package; the session-scoped `postgres_server` fixture runs `initdb` in a
temporary folder (as an unprivileged user when the tests run as root: PostgreSQL refuses to run
as root), starts the server on a free TCP port with trust authentication on 127.0.0.1 only, and
removes everything at the end. Each test that asks for it gets a database of its own.

The `backend` fixture (params sqlite / postgresql) points STUDIO_DATABASE_URL at a fresh SQLite
file or a fresh PostgreSQL database: the store, worker and run-service tests use it to run
against both.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import db

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"  # Debian's layout: one folder per major version
PG_USER = "studio"  # the superuser initdb creates (trust authentication, 127.0.0.1 only)
UNPRIVILEGED = ("postgres", "nobody")  # who runs the server when the tests run as root


def find_pg_bin() -> Path:
    """The newest Debian PostgreSQL bin folder holding initdb, pg_ctl and postgres."""
    found = sorted(
        (Path(p) for p in glob.glob(PG_BIN_GLOB) if (Path(p) / "initdb").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    pytest.fail(
        "PostgreSQL is not installed: the tests need Debian's `postgresql` package "
        f"(initdb under {PG_BIN_GLOB}); `make test` installs it (apt-get install postgresql)"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _runner() -> tuple[list[str], int | None, int | None]:
    """The command prefix that drops root (runuser), and the uid/gid to own the folder."""
    if os.geteuid() != 0:
        return [], None, None
    for name in UNPRIVILEGED:
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"], user.pw_uid, user.pw_gid
    pytest.fail(f"running as root and none of the users {UNPRIVILEGED} exists to run PostgreSQL")


class PostgresServer:
    """One running cluster; `new_database()` makes an empty database and returns its URL."""

    def __init__(self) -> None:
        self.bin = find_pg_bin()
        self.prefix, uid, gid = _runner()
        # not under pytest's tmp_path: that folder is private to root, the server's user must
        # reach its data folder
        self.root = Path(tempfile.mkdtemp(prefix="studio-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._names = itertools.count(1)
        if uid is not None:
            os.chown(self.root, uid, gid)
        self.root.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            PG_USER,
            "--auth=trust",
            "--no-sync",  # a test cluster: durability across power loss is not needed
            "--encoding=UTF8",
            "--locale=C",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.root} -c max_connections=300 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [*self.prefix, str(self.bin / tool), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            pytest.fail(f"{tool} failed ({result.returncode}):\n{result.stderr}\n{tail}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """An empty database of its own (CREATE DATABASE from template0 takes a few ms)."""
        import psycopg

        name = f"studio_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        db.dispose_engines()
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest, studio_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The test's database: the SQLite file studio_home set, or a fresh PostgreSQL database."""
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        monkeypatch.setenv("STUDIO_DATABASE_URL", server.new_database())
    yield request.param
    if request.param == "postgresql":
        db.dispose_engines()  # close this database's connections before the next test
