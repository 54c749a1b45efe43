"""The databases SynthGuard keeps its records in (the ledger, the audit log): an embedded SQLite file in
``SYNTHGUARD_HOME`` by default, or one PostgreSQL database that several machines share.

``SYNTHGUARD_DATABASE_URL`` chooses (:func:`store_url`): unset, each store is its own SQLite file in the home
(``ledger.sqlite``, ``audit.sqlite``); ``postgresql://user[:password]@host[:port]/database`` puts every store in that
database (needs the ``postgres`` extra, psycopg 3); ``sqlite:///absolute/path`` puts every store in one SQLite file.
The password of a URL never appears in a message: :meth:`DatabaseURL.masked` replaces it with ``***``.

A store declares its schema as numbered :class:`Migration` steps; :meth:`Database.migrate` applies the missing ones
under one lock and records each in ``schema_migrations`` (component, version), so processes opening a new database
at once create it once, and a database written by a newer synthguard is refused rather than misread.

SQL is written once for both backends: ``?`` placeholders (sent to psycopg as ``%s``; a statement with parameters
has no ``?`` or ``%`` of its own), one statement per call, and the column types that differ written as
``{blob}`` (BLOB / BYTEA), ``{real}`` (REAL / DOUBLE PRECISION: SQLite's REAL is 8 bytes, PostgreSQL's 4) and
``{bigint}`` (INTEGER / BIGINT) in migrations (:meth:`Database.ddl`). Statements only one backend understands
(triggers, PL/pgSQL) go in a migration's ``sqlite`` / ``postgresql`` steps.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from synthguard.core.stores import connect_wal
from synthguard.errors import InputError, LedgerError, missing_extra, one_line

ENV_VAR = "SYNTHGUARD_DATABASE_URL"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_KEYWORDS = re.compile(r"(^|\s)(host|hostaddr|dbname|user|password|port|sslmode)\s*=")
_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (component, version)
)"""


class Backend(str, Enum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


_TYPES = {
    Backend.SQLITE: {"blob": "BLOB", "real": "REAL", "bigint": "INTEGER"},
    Backend.POSTGRESQL: {"blob": "BYTEA", "real": "DOUBLE PRECISION", "bigint": "BIGINT"},
}


@dataclass(frozen=True)
class DatabaseURL:
    """Where a store lives: a SQLite file (``path``) or a PostgreSQL database (``conninfo``, the URL as given,
    password included: pass it to the driver, never print it; ``str()`` and ``repr()`` are masked)."""

    backend: Backend
    path: Path | None = None
    conninfo: str | None = field(default=None, repr=False)

    @classmethod
    def sqlite(cls, path: str | os.PathLike) -> DatabaseURL:
        return cls(Backend.SQLITE, path=Path(path))

    @classmethod
    def parse(cls, value: str | os.PathLike | DatabaseURL) -> DatabaseURL:
        """A path (SQLite), ``sqlite:///absolute/path`` or ``sqlite:relative/path``, or
        ``postgresql://`` / ``postgres://`` URL (libpq's URI form). Raises InputError naming what is wrong, with the
        password masked."""
        if isinstance(value, DatabaseURL):
            return value
        if not isinstance(value, str):
            return cls.sqlite(value)
        text = value.strip()
        if not text:
            raise InputError("the database URL is empty")
        if not _SCHEME.match(text):
            if _KEYWORDS.search(text):  # "host=db password=..." would otherwise become a file of that name
                raise InputError("the database location looks like a libpq keyword string (host=... dbname=...): "
                                 "give it as a URL, postgresql://user@host/database")
            return cls.sqlite(text)
        scheme = text.split(":", 1)[0].lower()
        if scheme == "sqlite":
            parts = urlsplit(text)
            if parts.netloc or not parts.path or parts.query or parts.fragment:
                raise InputError(f"database URL {text!r} is not a SQLite URL of the form sqlite:///absolute/path")
            return cls.sqlite(unquote(parts.path))
        if scheme in ("postgresql", "postgres"):
            return cls._postgresql(text)
        masked = _mask(text)
        raise InputError(f"database URL {masked!r} has the unsupported scheme {scheme!r}: use postgresql://user@host"
                         "/database or sqlite:///path")

    @classmethod
    def _postgresql(cls, text: str) -> DatabaseURL:
        masked = _mask(text)
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 (urlsplit checks the port only when it is read)
        except ValueError as exc:
            # The parser's own message can quote part of the password (a "port" cut out of it): not shown.
            raise InputError(f"database URL {masked!r} is malformed ({type(exc).__name__}); characters such as # / "
                             "? @ in a user name or password must be percent-encoded") from None
        if not parts.path.strip("/"):
            raise InputError(f"database URL {masked!r} names no database: add /database after the host")
        if parts.fragment:
            raise InputError(f"database URL {masked!r} has a fragment (#...), which PostgreSQL URLs do not take")
        return cls(Backend.POSTGRESQL, conninfo=text)

    @property
    def shared(self) -> bool:
        """True for a database server that other machines can reach (PostgreSQL)."""
        return self.backend is Backend.POSTGRESQL

    def exists(self) -> bool:
        """Whether there is something to open: the SQLite file exists; a PostgreSQL URL is always worth trying
        (whether the server answers is found out on opening)."""
        return self.shared or (self.path is not None and self.path.exists())

    def masked(self) -> str:
        """The location to show a person: a SQLite file's path, or the URL with its password as ``***``."""
        return str(self.path) if self.backend is Backend.SQLITE else _mask(self.conninfo or "")

    def scrub(self, text: str) -> str:
        """``text`` (a driver's message) with this URL's password, if any, replaced by ``***``."""
        for secret in _secrets(self.conninfo or ""):
            text = text.replace(secret, "***")
        return text

    def __str__(self) -> str:
        return self.masked()

    def __repr__(self) -> str:
        return f"DatabaseURL({self.backend.value}, {self.masked()!r})"


def _secrets(url: str) -> list[str]:
    """The password of ``url`` (from the user part and from a ``password=`` parameter), raw and decoded."""
    found = []
    if "://" in url and "@" in url.split("://", 1)[1]:
        user = url.split("://", 1)[1].rsplit("@", 1)[0]
        if ":" in user:
            found.append(user.split(":", 1)[1])  # the raw user part: see _mask
    try:
        parts = urlsplit(url)
        found += [parts.password] if parts.password else []
        found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "password" and v]
    except ValueError:
        return []
    return sorted({s for raw in found for s in (raw, unquote(raw))}, key=len, reverse=True)


def _mask(url: str) -> str:
    """``url`` with the password of its user part and of a ``password=`` parameter replaced by ``***``.

    The user part is found in the raw text (everything between ``://`` and the last ``@``), not by a URL parser:
    a password holding ``#``, ``/`` or ``?`` would move the ``@`` out of what a parser calls the host part."""
    if "://" in url:
        scheme, rest = url.split("://", 1)
        if "@" in rest:
            user, after = rest.rsplit("@", 1)
            if ":" in user:
                url = f"{scheme}://{user.split(':', 1)[0]}:***@{after}"
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        query = parts.query
        if "password" in query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="*", quote_via=quote)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        # Unparseable: show only the scheme rather than risk printing a password.
        return url.split(":", 1)[0] + "://***"


def store_url(default_path: Path, environ: Mapping[str, str] | None = None) -> DatabaseURL:
    """Where a store lives: ``SYNTHGUARD_DATABASE_URL`` when set (every store in that one database), else the
    SQLite file ``default_path`` (``Home.ledger_path``, ``Home.audit_path``)."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    return DatabaseURL.parse(value) if value else DatabaseURL.sqlite(default_path)


@dataclass(frozen=True)
class Migration:
    """One step of a store's schema. ``statements`` run on both backends (with ``{blob}``, ``{real}``,
    ``{bigint}`` filled in), then the backend's own ``sqlite`` or ``postgresql`` statements, then ``run`` (a data
    migration given the open :class:`Transaction`), all in the transaction that records the step."""

    version: int
    name: str
    statements: tuple[str, ...] = ()
    sqlite: tuple[str, ...] = ()
    postgresql: tuple[str, ...] = ()
    run: Callable[[Transaction], None] | None = None

    def steps(self, backend: Backend) -> tuple[str, ...]:
        own = self.sqlite if backend is Backend.SQLITE else self.postgresql
        return (*(s.format(**_TYPES[backend]) for s in self.statements), *own)


class Transaction:
    """The statements of one :meth:`Database.transaction`, committed together."""

    def __init__(self, database: Database):
        self._database = database
        self.backend = database.backend

    def execute(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """Run one statement; the rows it returned (none for a statement that returns none)."""
        return self._database._run(sql, params)[0]

    def insert(self, table: str, columns: Sequence[str], values: Sequence, *, key: Sequence[str] = ()) -> bool:
        """One row; with ``key`` (the unique columns) a row whose key is taken is left alone and False returned."""
        return self._database._insert(table, columns, values, key)

    def lock(self, name: str) -> None:
        """Serialise, until this transaction ends, every transaction that takes the lock ``name`` (the audit
        chain's append). PostgreSQL: a transaction-level advisory lock; SQLite: nothing more to do, a write
        transaction already holds the database's only write lock."""
        if self.backend is Backend.POSTGRESQL:
            self.execute("SELECT pg_advisory_xact_lock(?)", (lock_key(name),))


def lock_key(name: str) -> int:
    """The advisory lock number (a signed 64-bit integer) of a lock name."""
    return int.from_bytes(hashlib.sha256(b"synthguard-lock:" + name.encode()).digest()[:8], "big", signed=True)


class Database:
    """One connection to a store's database. Statements run in autocommit, or together in :meth:`transaction`.
    Safe to share between threads (a lock serialises its use). Errors are ``LedgerError`` naming ``label`` and
    the masked location. Use as a context manager or call :meth:`close`."""

    def __init__(self, url: DatabaseURL | str | os.PathLike, *, label: str = "the database",
                 timeout_s: float = 60.0):
        self.url = DatabaseURL.parse(url)
        self.backend = self.url.backend
        self.label = label
        self.timeout_s = float(timeout_s)
        self._lock = threading.RLock()
        self._in_transaction = False
        self._conn = self._connect()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.label}, {self.url.masked()!r})"

    def _error(self, action: str, exc: BaseException) -> LedgerError:
        return LedgerError(f"cannot {action} {self.label} {self.url.masked()}: {self.url.scrub(one_line(exc))}")

    def _connect(self):
        if self.backend is Backend.SQLITE:
            try:
                return connect_wal(self.url.path, "", timeout_s=self.timeout_s)
            except (sqlite3.Error, OSError) as exc:
                raise self._error("open", exc) from None
        psycopg = _psycopg()
        try:
            conn = psycopg.connect(self.url.conninfo, autocommit=True,
                                   connect_timeout=max(1, round(self.timeout_s)), application_name="synthguard")
            # Waiting for another writer's lock is bounded like SQLite's busy timeout.
            conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{round(self.timeout_s * 1000)}ms",))
            return conn
        except psycopg.Error as exc:
            raise self._error("open", exc) from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _errors(self) -> tuple[type[BaseException], ...]:
        """What a statement can fail with: the driver's errors, and text it cannot encode (lone surrogates)."""
        driver = sqlite3.Error if self.backend is Backend.SQLITE else _psycopg().Error
        return (driver, UnicodeEncodeError)

    def _revive(self) -> None:
        """Reconnect a PostgreSQL connection the server dropped (a restart), outside a transaction only."""
        if (self.backend is Backend.POSTGRESQL and not self._in_transaction
                and (self._conn.closed or self._conn.broken)):
            self._conn.close()
            self._conn = self._connect()

    def _run(self, sql: str, params: Sequence = ()) -> tuple[list[tuple], int]:
        """(rows, rowcount) of one statement; driver errors pass through (callers name the action)."""
        with self._lock:
            self._revive()
            if self.backend is Backend.SQLITE:
                cursor = self._conn.execute(sql, tuple(params))
                return cursor.fetchall(), cursor.rowcount
            # Without parameters psycopg sends the text as it is; with them ``%`` is its placeholder mark.
            query, args = (sql, None) if not params else (sql.replace("%", "%%").replace("?", "%s"), tuple(params))
            cursor = self._conn.execute(query, args)
            return (cursor.fetchall() if cursor.description is not None else []), cursor.rowcount

    def execute(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """Run one statement on its own (autocommit); the rows it returned."""
        try:
            return self._run(sql, params)[0]
        except self._errors() as exc:
            raise self._error("read" if sql.lstrip()[:6].upper() == "SELECT" else "write to", exc) from None

    def scalar(self, sql: str, params: Sequence = ()):
        """The first column of the first row (None when there is none)."""
        rows = self.execute(sql, params)
        return rows[0][0] if rows else None

    def insert(self, table: str, columns: Sequence[str], values: Sequence, *, key: Sequence[str] = ()) -> bool:
        """One row in its own transaction; with ``key`` (the unique columns), a row whose key is already taken is
        not inserted and False is returned (the database decides, so concurrent writers cannot both insert it)."""
        try:
            return self._insert(table, columns, values, key)
        except self._errors() as exc:
            raise self._error("write to", exc) from None

    def _insert(self, table: str, columns: Sequence[str], values: Sequence, key: Sequence[str]) -> bool:
        if len(columns) != len(values):
            raise ValueError(f"{len(columns)} columns but {len(values)} values for {table}")
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        if key:
            sql += f" ON CONFLICT ({', '.join(key)}) DO NOTHING"
        return self._run(sql, values)[1] == 1

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Statements committed together, or not at all when the block raises. A write transaction from the start
        (SQLite: BEGIN IMMEDIATE, so a concurrent writer waits for the busy timeout instead of failing midway);
        PostgreSQL: READ COMMITTED, use :meth:`Transaction.lock` to serialise. Driver errors become LedgerError."""
        errors = self._errors()
        with self._lock:
            if self._in_transaction:
                raise RuntimeError(f"a transaction on {self.label} is already open on this connection")
            try:
                self._revive()
                self._run("BEGIN IMMEDIATE" if self.backend is Backend.SQLITE else "BEGIN")
            except errors as exc:
                raise self._error("write to", exc) from None
            self._in_transaction = True
            try:
                yield Transaction(self)
                self._run("COMMIT")
            except errors as exc:
                self._rollback(errors)
                raise self._error("write to", exc) from None
            except BaseException:
                self._rollback(errors)
                raise
            finally:
                self._in_transaction = False

    def _rollback(self, errors: tuple[type[BaseException], ...]) -> None:
        # A failed ROLLBACK means the connection is gone, and the server has discarded the transaction with it.
        with suppress(*errors):
            self._run("ROLLBACK")

    def ddl(self, sql: str) -> str:
        """``sql`` with ``{blob}``, ``{real}`` and ``{bigint}`` in this backend's words."""
        return sql.format(**_TYPES[self.backend])

    def table_exists(self, table: str) -> bool:
        if self.backend is Backend.SQLITE:
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?"
        return bool(self.execute(sql, (table,)))

    def version(self, component: str) -> int:
        """The last migration of ``component`` applied to this database (0: none)."""
        if not self.table_exists("schema_migrations"):
            return 0
        return int(self.scalar("SELECT MAX(version) FROM schema_migrations WHERE component = ?", (component,)) or 0)

    def migrate(self, component: str, migrations: Sequence[Migration]) -> int:
        """Apply the migrations of ``component`` (versions 1, 2, ... in order) that this database lacks, each
        recorded in ``schema_migrations``, all under one lock; returns the version now in force. A database at a
        version newer than ``migrations`` knows is refused (LedgerError): an older synthguard must not write it."""
        for number, migration in enumerate(migrations, 1):
            if migration.version != number:
                raise ValueError(f"migration {migration.name!r} of {component} is version {migration.version}, "
                                 f"expected {number}")
        latest = len(migrations)
        if self.version(component) == latest:
            return latest
        with self.transaction() as tx:
            tx.lock("schema_migrations")
            tx.execute(_MIGRATIONS_TABLE)
            # Another process may have migrated while this one waited for the lock.
            applied = tx.execute("SELECT MAX(version) FROM schema_migrations WHERE component = ?", (component,))
            current = int(applied[0][0] or 0)
            if current > latest:
                raise LedgerError(f"{self.label} {self.url.masked()} has {component} schema version {current}, "
                                  f"newer than this synthguard knows ({latest}): upgrade synthguard")
            for migration in migrations[current:]:
                for statement in migration.steps(self.backend):
                    tx.execute(statement)
                if migration.run is not None:
                    migration.run(tx)
                tx.execute("INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)",
                           (component, migration.version, migration.name,
                            datetime.now(UTC).isoformat(timespec="seconds")))
        return latest


def _psycopg():
    """psycopg 3, imported when a PostgreSQL database is opened (the ``postgres`` extra)."""
    try:
        import psycopg  # noqa: PLC0415 (optional: only a PostgreSQL database needs it)
    except ImportError:
        raise missing_extra("psycopg", "postgres", "a PostgreSQL database") from None
    return psycopg
