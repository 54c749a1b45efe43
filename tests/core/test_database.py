import subprocess
import sys
import textwrap

import pytest
from helpers.postgres import BACKENDS, backend_url, fresh_postgres_url, postgres_url  # noqa: F401 (fixtures)

from synthguard.core.database import ENV_VAR, Backend, Database, DatabaseURL, Migration, lock_key, store_url
from synthguard.errors import Hint, InputError, LedgerError

PASSWORD = "s3cr3t-Pa55"
THINGS = (Migration(1, "things", statements=(
    "CREATE TABLE IF NOT EXISTS things (id TEXT PRIMARY KEY, data {blob} NOT NULL, x {real} NOT NULL, n {bigint})",
)),)


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path) -> str:
    return backend_url(request, tmp_path)


def test_paths_and_sqlite_urls_are_sqlite_files(tmp_path):
    assert DatabaseURL.parse(tmp_path / "a.sqlite") == DatabaseURL.sqlite(tmp_path / "a.sqlite")
    assert DatabaseURL.parse(str(tmp_path / "a.sqlite")).path == tmp_path / "a.sqlite"
    assert DatabaseURL.parse(f"sqlite://{tmp_path}/a%20b.sqlite").path == tmp_path / "a b.sqlite"
    assert DatabaseURL.parse("sqlite:rel/l.sqlite").path.as_posix() == "rel/l.sqlite"
    for bad in ("sqlite://host/x.sqlite", "sqlite:", "", "  "):
        with pytest.raises(InputError):
            DatabaseURL.parse(bad)


def test_a_password_is_never_shown():
    url = DatabaseURL.parse(f"postgresql://alice:{PASSWORD}@db.example:5433/ledger?sslmode=require")
    assert url.backend is Backend.POSTGRESQL and url.shared and url.exists()
    assert url.masked() == "postgresql://alice:***@db.example:5433/ledger?sslmode=require"
    assert PASSWORD not in str(url) and PASSWORD not in repr(url)
    assert url.scrub(f"auth failed for {PASSWORD}") == "auth failed for ***"
    query = DatabaseURL.parse(f"postgres://alice@db/ledger?password={PASSWORD}&sslmode=require")
    assert PASSWORD not in query.masked() and "password=***" in query.masked()
    for bad in (f"mysql://alice:{PASSWORD}@db/ledger", f"postgresql://alice:{PASSWORD}@db:99999/ledger",
                f"postgresql://alice:{PASSWORD}@db/", f"postgresql://alice:{PASSWORD}@db/l#frag"):
        with pytest.raises(InputError) as info:
            DatabaseURL.parse(bad)
        assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("secret", ["pa#ss", "p/a?ss", "pa@ss", "s3cr3t:x"])
def test_a_password_with_url_characters_is_never_shown(secret):
    """A password holding # / ? @ moves the @ out of what a URL parser calls the host part: still masked, and a
    parser message that would quote part of it (a "port" cut out of the password) is not shown."""
    text = f"postgresql://alice:{secret}@db.example/ledger"
    try:
        shown = DatabaseURL.parse(text).masked()
    except InputError as exc:
        shown = str(exc)
    assert secret not in shown and "postgresql://alice:***@" in shown
    assert "Port could not be cast" not in shown  # the parser's message quotes what it took for a port


def test_a_libpq_keyword_string_is_refused_not_taken_for_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="libpq keyword string") as info:
        DatabaseURL.parse(f"host=db password={PASSWORD} dbname=ledger")
    assert PASSWORD not in str(info.value) and not list(tmp_path.iterdir())


def test_store_url_follows_the_environment(tmp_path):
    assert store_url(tmp_path / "ledger.sqlite", {}) == DatabaseURL.sqlite(tmp_path / "ledger.sqlite")
    shared = store_url(tmp_path / "ledger.sqlite", {ENV_VAR: "postgresql://u@h/db"})
    assert shared.backend is Backend.POSTGRESQL and shared.conninfo == "postgresql://u@h/db"
    assert store_url(tmp_path / "x", {ENV_VAR: f"sqlite://{tmp_path}/all.sqlite"}).path == tmp_path / "all.sqlite"


def test_an_unreachable_server_is_a_ledger_error_without_the_password():
    pytest.importorskip("psycopg")
    with pytest.raises(LedgerError) as info:
        Database(f"postgresql://alice:{PASSWORD}@127.0.0.1:1/ledger", label="the ledger", timeout_s=2)
    message = str(info.value)
    assert message.startswith("cannot open the ledger postgresql://alice:***@127.0.0.1:1/ledger: ")
    assert PASSWORD not in message


def test_without_psycopg_the_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(InputError, match=r"synthguard\[postgres\]") as info:
        Database("postgresql://u@127.0.0.1:1/db")
    assert info.value.hint is Hint.INSTALL_EXTRA


def test_types_round_trip_exactly(url):
    with Database(url) as db:
        assert db.migrate("things", THINGS) == 1
        blob = bytes(range(256)) * 4
        assert db.insert("things", ("id", "data", "x", "n"), ("a", blob, 1 / 3, 2**40))
        [row] = db.execute("SELECT data, x, n FROM things WHERE id = ?", ("a",))
        assert (bytes(row[0]), row[1], row[2]) == (blob, 1 / 3, 2**40)
        assert db.scalar("SELECT COUNT(*) FROM things WHERE data = ?", (blob,)) == 1
        assert db.scalar("SELECT id FROM things WHERE id = ?", ("none",)) is None


def test_the_database_keeps_keys_unique(url):
    with Database(url, label="the store") as db:
        db.migrate("things", THINGS)
        assert db.insert("things", ("id", "data", "x"), ("k", b"1", 0.0), key=("id",)) is True
        assert db.insert("things", ("id", "data", "x"), ("k", b"2", 0.0), key=("id",)) is False
        with pytest.raises(LedgerError, match=r"^cannot write to the store "):
            db.insert("things", ("id", "data", "x"), ("k", b"3", 0.0))
        assert db.execute("SELECT data FROM things") == [(b"1",)]


def test_migrations_apply_once_in_order_and_are_recorded(url):
    seen = []
    steps = (*THINGS, Migration(2, "more", statements=("CREATE TABLE more (v TEXT)",),
                                sqlite=("CREATE INDEX more_v ON more(v)",),
                                postgresql=("CREATE INDEX more_v ON more USING hash (v)",),
                                run=lambda tx: seen.append(tx.execute("SELECT COUNT(*) FROM things")[0][0])))
    with Database(url) as db:
        assert db.version("things") == 0
        assert db.migrate("things", steps[:1]) == 1
        db.insert("things", ("id", "data", "x"), ("a", b"", 0.0))
        assert db.migrate("things", steps) == 2
        assert db.migrate("things", steps) == 2
        assert seen == [1]
        assert db.version("things") == 2 and db.version("other") == 0
        assert db.execute("SELECT component, version, name FROM schema_migrations ORDER BY version") == [
            ("things", 1, "things"), ("things", 2, "more")]
        with pytest.raises(LedgerError, match="schema version 2, newer than this synthguard knows"):
            Database(url).migrate("things", steps[:1])
        with pytest.raises(ValueError, match="expected 1"):
            db.migrate("x", steps[1:])


def test_a_failed_migration_leaves_nothing_behind(url):
    broken = (*THINGS, Migration(2, "broken", statements=("CREATE TABLE half (v TEXT)", "NOT SQL AT ALL")))
    with Database(url) as db:
        with pytest.raises(LedgerError, match="^cannot write to the database"):
            db.migrate("things", broken)
        assert db.version("things") == 0
        assert not db.table_exists("things") and not db.table_exists("half")


def test_a_transaction_commits_together_or_not_at_all(url):
    with Database(url) as db:
        db.migrate("things", THINGS)
        with pytest.raises(KeyError), db.transaction() as tx:
            tx.insert("things", ("id", "data", "x"), ("a", b"", 0.0))
            raise KeyError("abort")
        with db.transaction() as tx:
            assert tx.insert("things", ("id", "data", "x"), ("b", b"", 0.0), key=("id",))
            assert tx.execute("SELECT id FROM things") == [("b",)]
        with pytest.raises(RuntimeError, match="already open"), db.transaction(), db.transaction():
            pass
        assert db.execute("SELECT id FROM things") == [("b",)]


# A chain like the audit log's: read the last id, insert the next, under Transaction.lock.
CHAIN_WRITER = textwrap.dedent("""
    import sys
    from synthguard.core.database import Database
    with Database(sys.argv[1]) as db:
        for _ in range(int(sys.argv[2])):
            with db.transaction() as tx:
                tx.lock("chain")
                last = tx.execute("SELECT MAX(n) FROM chain")[0][0]
                tx.execute("INSERT INTO chain (n, writer) VALUES (?, ?)", ((last or 0) + 1, sys.argv[3]))
""")


def test_locked_transactions_build_one_chain_across_processes(url):
    with Database(url) as db:
        db.migrate("chain", (Migration(1, "chain", ("CREATE TABLE chain (n {bigint} PRIMARY KEY, writer TEXT)",)),))
    n = 60
    procs = [subprocess.Popen([sys.executable, "-c", CHAIN_WRITER, url, str(n), f"w{i}"]) for i in range(4)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    with Database(url) as db:
        assert [r[0] for r in db.execute("SELECT n FROM chain ORDER BY n")] == list(range(1, 4 * n + 1))


MIGRATOR = textwrap.dedent("""
    import sys
    from synthguard.core.database import Database, Migration
    steps = tuple(Migration(v, f"t{v}", (f"CREATE TABLE t{v} (v TEXT)",)) for v in (1, 2, 3))
    with Database(sys.argv[1]) as db:
        assert db.migrate("race", steps) == 3
""")


def test_processes_creating_a_new_database_at_once_migrate_it_once(url):
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATOR, url]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    with Database(url) as db:
        assert db.execute("SELECT version FROM schema_migrations ORDER BY version") == [(1,), (2,), (3,)]


def test_a_dropped_postgresql_connection_is_reopened(request):
    import psycopg

    pg_url = request.getfixturevalue("fresh_postgres_url")
    with Database(pg_url) as db:
        pid = db.scalar("SELECT pg_backend_pid()")
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(LedgerError, match="^cannot read the database"):
            db.execute("SELECT 1")
        assert db.scalar("SELECT 1") == 1
        assert db.scalar("SELECT pg_backend_pid()") != pid


def test_lock_keys_are_stable_signed_64_bit():
    assert lock_key("chain") == lock_key("chain") != lock_key("schema_migrations")
    assert -2**63 <= lock_key("chain") < 2**63
