"""Engines, sessions and migrations: the only place that knows which database is behind the URL.

SQLite (the default) is opened in WAL mode with a busy timeout and foreign keys on; write
transactions start with BEGIN IMMEDIATE so a read-then-write transaction never fails on a stale
snapshot; the rare "database is locked" that still escapes is retried here, in one place.
PostgreSQL works through the same code (STUDIO_DATABASE_URL=postgresql+psycopg://...).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.config import get_settings
from core.errors import SettingsError

SQLITE_BUSY_TIMEOUT_S = 30.0  # a writer waits this long for the lock before SQLite gives up
RETRY_DEADLINE_S = 60.0  # then we retry the whole transaction until this much time has passed
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
PG_MIGRATION_LOCK_KEY = 4_242_001  # pg_advisory_lock key held while migrating

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_sessionmakers: dict[str, tuple[sessionmaker[Session], sessionmaker[Session]]] = {}
_migrated: set[str] = set()


def _sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # safe with WAL, much faster commits
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


def get_engine(url: str | None = None) -> Engine:
    """The engine for `url` (default: settings.database_url), created once per process, with
    the schema migrated to the latest version."""
    url = url or get_settings().database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create_engine(url)
            _engines[url] = engine
            writer = sessionmaker(engine, expire_on_commit=False)
            reader = sessionmaker(
                engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False
            )
            _sessionmakers[url] = (writer, reader)
        if url not in _migrated:
            init_db(engine)
            _migrated.add(url)
    return engine


def _create_engine(url: str) -> Engine:
    try:
        backend = make_url(url).get_backend_name()
    except Exception as error:
        raise SettingsError(f"STUDIO_DATABASE_URL={url!r} is not a valid URL: {error}") from None
    if backend == "sqlite":
        path = _sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def dispose_engines() -> None:
    """Close every pooled connection (tests; a process about to exit)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _sessionmakers.clear()
        _migrated.clear()


@contextlib.contextmanager
def session_scope(*, readonly: bool = False, url: str | None = None) -> Iterator[Session]:
    """A session in one short transaction: committed on success, rolled back on error.

    readonly=True starts a deferred transaction on SQLite, which never waits for writers."""
    get_engine(url)
    writer, reader = _sessionmakers[url or get_settings().database_url]
    session = (reader if readonly else writer)()
    try:
        yield session
        session.commit()  # also for reads: a rollback would expire the rows we return
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_locked_error(error: BaseException) -> bool:
    message = str(getattr(error, "orig", error)).lower()
    return (
        "database is locked" in message
        or "database is busy" in message
        or ("deadlock detected" in message or "could not serialize" in message)
    )


def retry_on_locked(
    fn: Callable[P, T], *args: P.args, deadline_s: float | None = None, **kwargs: P.kwargs
) -> T:
    """Call fn; when the database says it is locked (or PG found a deadlock), back off a
    little and call it again, until deadline_s (default RETRY_DEADLINE_S). fn must be a whole
    transaction."""
    deadline_s = RETRY_DEADLINE_S if deadline_s is None else deadline_s
    started = time.monotonic()
    delay = 0.01
    while True:
        try:
            return fn(*args, **kwargs)
        except OperationalError as error:
            if not is_locked_error(error) or time.monotonic() - started > deadline_s:
                raise
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 0.5)


# --- passing faults ---------------------------------------------------------------------------

_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_DISK_WORDS = (
    "database or disk is full",  # SQLite's SQLITE_FULL
    "no space left on device",
    "disk quota exceeded",
    "unexpected pos",  # torch.save's zip writer after a short write on a full disk
    "pytorchstreamwriter failed writing",
)


def describe_fault(error: BaseException) -> str | None:
    """A sentence naming a passing fault of the machine behind `error` (the database locked by
    another process, the disk full), or None when `error` is not one. Such faults pause a run
    at its last good checkpoint instead of failing it: nothing is wrong with the run itself."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        message = str(getattr(current, "orig", None) or current).lower()
        if isinstance(current, OSError) and current.errno in _DISK_ERRNOS:
            return disk_full_message()
        if any(word in message for word in _DISK_WORDS):
            return disk_full_message()
        if "disk i/o error" in message:
            return (
                f"the disk holding STUDIO_HOME ({get_settings().home}) failed a write (I/O error)"
            )
        if is_locked_error(current):
            return (
                "the database stayed locked by another process for longer than "
                f"{SQLITE_BUSY_TIMEOUT_S + RETRY_DEADLINE_S:g} s"
            )
        current = current.__cause__ or current.__context__
    return None


def disk_full_message() -> str:
    """'no space left on the device holding STUDIO_HOME (/path): 0 B free'."""
    home = get_settings().home
    probe = home
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = f"{format_bytes(shutil.disk_usage(probe).free)} free"
    except OSError:
        free = "free space unknown"
    return f"no space left on the device holding STUDIO_HOME ({home}): {free}"


def format_bytes(count: int) -> str:
    """1536 -> '1.5 KB'; 0 -> '0 B'."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def call(fn: Callable[..., T], /, *, readonly: bool = False, **kwargs: Any) -> T:
    """Run the repository function `fn(session=..., **kwargs)` in its own transaction, retried
    when the database is locked. The one way the services talk to the store."""

    def attempt() -> T:
        with session_scope(readonly=readonly) as session:
            return fn(session=session, **kwargs)

    return retry_on_locked(attempt)


# --- migrations -------------------------------------------------------------------------------


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[Any]:
    """Serialize migrations between processes: a file lock next to a SQLite file, an advisory
    lock on PostgreSQL. Yields the connection to migrate with."""
    if engine.dialect.name == "sqlite":
        path = _sqlite_path(str(engine.url))
        with contextlib.ExitStack() as stack:
            if path is not None:
                handle = stack.enter_context(open(path.with_name(path.name + ".migrate.lock"), "w"))
                fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            yield stack.enter_context(engine.connect())
        return
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY}
            )
            connection.commit()
            try:
                yield connection
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": PG_MIGRATION_LOCK_KEY}
                )
                connection.commit()
        else:
            yield connection


def init_db(engine: Engine | None = None) -> None:
    """Bring the schema to the latest migration (a no-op when it is there already).

    The check runs in a read-only transaction first: a schema already at head (every process
    but the first) never queues behind another process's write lock, so read-only commands
    such as `studio status` answer at once while a writer holds the database."""
    from alembic import command

    engine = engine or get_engine()
    if _at_head(engine):
        return
    with _migration_lock(engine) as connection:
        retry_on_locked(command.upgrade, _alembic_config(connection), "head")
        connection.commit()


def _at_head(engine: Engine) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    try:
        with engine.execution_options(sqlite_begin="DEFERRED").connect() as connection:
            return MigrationContext.configure(connection).get_current_revision() == head
    except OperationalError:
        return False  # a fresh or busy database: migrate under the lock, as before


def current_revision(url: str | None = None) -> str | None:
    """The migration the database is at (None before the first one)."""
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
