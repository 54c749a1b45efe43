"""A throw-away PostgreSQL server for the tests of the database backends.

Debian's ``postgresql`` package (binaries in ``/usr/lib/postgresql/<version>/bin``): ``initdb`` and ``pg_ctl`` in a
fresh temporary folder, listening on 127.0.0.1 only, with trust authentication (nothing else can reach it), as an
unprivileged user when the tests run as root (PostgreSQL refuses to run as root): ``postgres`` when the package
created it, else ``nobody``. Durability settings are off: the server is deleted at the end of the session.

Fixtures, imported into the test modules that use them (``from helpers.postgres import postgres_url, ...``):
- ``postgres_url`` (session): the URL of a server's maintenance database. ``SYNTHGUARD_TEST_POSTGRES_URL`` when set
  (CI starts one with ``.ci/postgres.sh``), else a server started here and stopped after the session. Without
  PostgreSQL's binaries (or psycopg) the tests that need it are skipped, saying why; with
  ``SYNTHGUARD_REQUIRE_POSTGRES`` set they fail instead.
- ``fresh_postgres_url``: a new empty database on that server for one test, dropped after it.
``backend_url(request, tmp_path)`` gives a parametrized fixture (``params=BACKENDS``) its store URL on each backend.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from helpers.net import free_port

BACKENDS = ("sqlite", "postgresql")
URL_ENV = "SYNTHGUARD_TEST_POSTGRES_URL"
REQUIRE_ENV = "SYNTHGUARD_REQUIRE_POSTGRES"
SUPERUSER = "synthguard"
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "60",
    "shared_buffers": "32MB",
}


def find_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: Debian's newest version, else the ones on PATH."""
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                         key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True):
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged account that runs the server when this process is root (None: run as this process)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists to run PostgreSQL")


@dataclass
class PostgresServer:
    root: Path
    port: int
    binaries: Path
    user: pwd.struct_passwd | None

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.binaries / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user.pw_name, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}\n{tail}")

    @classmethod
    def start(cls, binaries: Path | None = None) -> PostgresServer:
        """initdb + pg_ctl start in a new temporary folder; raises RuntimeError with the server's log on failure."""
        binaries = binaries or find_binaries()
        if binaries is None:
            raise RuntimeError("PostgreSQL's initdb and pg_ctl are not installed (Debian: apt-get install postgresql)")
        user = _server_user()
        # Not under pytest's base temp: that is private to this user, and the server may run as another one.
        root = Path(tempfile.mkdtemp(prefix="synthguard-pg-"))
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        server = cls(root, free_port(), binaries, user)
        try:
            server._run("initdb", "-D", str(root / "data"), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                        "--no-locale", "--no-sync")
            settings = {**SETTINGS, "port": str(server.port), "unix_socket_directories": f"'{root}'"}
            with open(root / "data" / "postgresql.conf", "a") as conf:
                conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
            server._run("pg_ctl", "-D", str(root / "data"), "-l", str(root / "server.log"), "-w", "-t", "60",
                        "start")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return server

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def database_url(server_url: str, name: str) -> str:
    """``server_url`` pointing at the database ``name``."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _admin(server_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True, connect_timeout=30) as conn:
        conn.execute(sql)


def _unavailable(reason: str):
    """Skip (or, with SYNTHGUARD_REQUIRE_POSTGRES set, fail) a test that needs PostgreSQL."""
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{REQUIRE_ENV} is set but {reason}")
    pytest.skip(f"needs PostgreSQL: {reason}")


@pytest.fixture(scope="session")
def postgres_url():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[test]' or '.[postgres]')")
    given = os.environ.get(URL_ENV)
    if given:
        _admin(given, "SELECT 1")
        yield given
        return
    binaries = find_binaries()
    if binaries is None:
        _unavailable("initdb and pg_ctl are not installed (Debian: apt-get install postgresql), and "
                     f"{URL_ENV} names no server")
    server = PostgresServer.start(binaries)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def fresh_postgres_url(postgres_url):
    name = f"sg_test_{uuid.uuid4().hex[:16]}"
    _admin(postgres_url, f'CREATE DATABASE "{name}"')
    try:
        yield database_url(postgres_url, name)
    finally:
        # FORCE: a connection the test left open must not keep the database alive.
        _admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backend_url(request, tmp_path: Path) -> str:
    """The store URL of the backend ``request.param``: a SQLite file in ``tmp_path`` or a fresh PostgreSQL
    database."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'store.sqlite'}"
    if request.param == "postgresql":
        return request.getfixturevalue("fresh_postgres_url")
    raise ValueError(f"unknown backend {request.param!r}")
