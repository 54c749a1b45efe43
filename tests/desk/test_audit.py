"""The audit log: append-only, reviews with their editor, lookups by file hash; the audit commands."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from helpers.postgres import BACKENDS, fresh_postgres_url, postgres_url  # noqa: F401 (fixtures)

from synthguard.cli import main
from synthguard.core.database import ENV_VAR, Backend, Database, DatabaseURL
from synthguard.desk import audit as audit_module
from synthguard.desk.audit import GENESIS, AuditLog, entry_hash
from synthguard.errors import LedgerError

# A password in the URL (the test server's trust authentication ignores it): never printed.
PASSWORD = "n0t-a-Real-pa55"


class Store:
    """The audit log of a test on one backend, and what someone with write access to its database can do to it
    directly (sqlite3 on the file, psycopg on the server), bypassing synthguard."""

    def __init__(self, location):
        self.location = location
        self.url = DatabaseURL.parse(location)
        self.backend = self.url.backend

    def open(self) -> AuditLog:
        return AuditLog(self.location)

    def _connect(self):
        if self.backend is Backend.SQLITE:
            return sqlite3.connect(self.url.path)
        import psycopg

        return psycopg.connect(self.url.conninfo)

    def sql(self, statement: str) -> str:
        return statement if self.backend is Backend.SQLITE else statement.replace("?", "%s")

    def tamper(self, *statements, params=(), guards: str = "drop") -> None:
        """Remove the guards (``drop`` the triggers; on PostgreSQL also ``disable`` them), run ``statements``."""
        db = self._connect()
        if self.backend is Backend.SQLITE or guards == "drop":
            for name in ("entries_no_update", "entries_no_delete", "entries_no_truncate"):
                if self.backend is Backend.SQLITE:
                    db.execute(f"DROP TRIGGER IF EXISTS {name}")
                else:
                    db.execute(f"DROP TRIGGER IF EXISTS {name} ON entries")
        else:
            db.execute("ALTER TABLE entries DISABLE TRIGGER USER")
        for statement in statements:
            db.execute(self.sql(statement), params)
        db.commit()
        db.close()

    def rows(self, statement: str, params=()) -> list[tuple]:
        db = self._connect()
        try:
            return [tuple(r) for r in db.execute(self.sql(statement), params).fetchall()]
        finally:
            db.close()

    def row(self, entry_id) -> dict:
        db = self._connect()
        cursor = db.execute(self.sql("SELECT * FROM entries WHERE id = ?"), (entry_id,))
        names = [d[0] for d in cursor.description]
        row = dict(zip(names, cursor.fetchone()))
        db.close()
        return row

    def refused(self, statement: str, match: str) -> None:
        """``statement`` run directly is refused by the database's guards."""
        db = self._connect()
        if self.backend is Backend.SQLITE:
            error = sqlite3.DatabaseError
        else:
            import psycopg

            error = psycopg.errors.RaiseException
        with pytest.raises(error, match=match):
            db.execute(statement)
        db.close()


@pytest.fixture(params=BACKENDS)
def store(request, home, monkeypatch) -> Store:
    """The home's audit log: its SQLite file, or a fresh PostgreSQL database named by SYNTHGUARD_DATABASE_URL
    (so the commands read it too)."""
    if request.param == "sqlite":
        return Store(home.audit_path)
    url = request.getfixturevalue("fresh_postgres_url")
    monkeypatch.setenv(ENV_VAR, url)
    return Store(url)


def test_append_only(tmp_path):
    path = tmp_path / "audit.sqlite"
    with AuditLog(path) as log:
        log.record_verification(file="a.png", file_sha256="aa", policy="p", policy_sha256="ph", verdict="unknown",
                                action="human-review", reasons=["r1"])
        log.record_review(file="a.png", file_sha256="aa", decision="publish", editor=" Ed ", note="checked")
        entries = log.entries("aa")
    assert [e.kind for e in entries] == ["verification", "review"]
    assert entries[0].reasons == ["r1"] and entries[1].editor == "Ed" and entries[1].action == "publish"
    db = sqlite3.connect(path)
    for statement in ("UPDATE entries SET action = 'reject'", "DELETE FROM entries"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(statement)
    db.close()
    with AuditLog(path) as log:
        assert len(log.entries()) == 2 and len(log.entries(limit=1)) == 1
        with pytest.raises(LedgerError, match="editor"):
            log.record_review(file="a.png", file_sha256="aa", decision="publish", editor="  ")


def test_append_only_on_both_backends(store):
    with store.open() as log:
        first = log.record_verification(file="a.png", file_sha256="aa", policy="p", policy_sha256="ph",
                                        verdict="unknown", action="human-review", reasons=["r1"])
        log.record_review(file="a.png", file_sha256="aa", decision="publish", editor=" Ed ", note="checked")
        entries = log.entries("aa")
        assert log.head() == (2, store.row(2)["row_hash"])
        assert log.verified("ph") == {("a.png", "aa", "unknown", "human-review")}
    assert first == 1 and [e.kind for e in entries] == ["verification", "review"]
    assert entries[0].reasons == ["r1"] and entries[1].editor == "Ed"
    statements = ["UPDATE entries SET action = 'reject'", "DELETE FROM entries"]
    if store.backend is Backend.POSTGRESQL:
        statements.append("TRUNCATE entries")
    for statement in statements:
        store.refused(statement, "append-only")
    store.refused("INSERT INTO entries (id, time, kind, file, tool_version) VALUES (9, 't', 'review', 'x', '0')",
                  "chain hashes")
    with Database(store.location) as db:
        assert db.version(audit_module.COMPONENT) == len(audit_module.MIGRATIONS) == 2
    with store.open() as log:
        assert len(log.entries()) == 2 and log.verify().intact


def test_review_and_show_commands(store, png):
    runner = CliRunner()
    if store.backend is Backend.SQLITE:
        empty = runner.invoke(main, ["audit", "show"])
        assert empty.exit_code == 2 and "no audit log" in empty.stderr
    done = runner.invoke(main, ["audit", "review", str(png), "--decision", "label-ai", "--editor", "A. Editor",
                                "--note", "AI illustration, labelled"])
    assert done.exit_code == 0 and "recorded review" in done.stdout
    shown = runner.invoke(main, ["audit", "show", str(png)])
    assert "label-ai by A. Editor (AI illustration, labelled)" in shown.stdout
    assert shown.stderr == f"audit log: {store.url.masked()} (1 entries shown)\n"
    bad = runner.invoke(main, ["audit", "review", str(png), "--decision", "maybe", "--editor", "E"])
    assert bad.exit_code == 2
    with store.open() as log:
        assert [e.action for e in log.entries()] == ["label-ai"]


def test_the_commands_name_the_database_without_its_password(home, request, monkeypatch, png):
    user, rest = request.getfixturevalue("fresh_postgres_url").split("://", 1)[1].split("@", 1)
    url = f"postgresql://{user}:{PASSWORD}@{rest}"
    monkeypatch.setenv(ENV_VAR, url)
    runner = CliRunner()
    assert runner.invoke(main, ["audit", "review", str(png), "--decision", "publish", "--editor", "E"]).exit_code == 0
    masked = DatabaseURL.parse(url).masked()
    assert "***" in masked
    for command in (["audit", "show"], ["audit", "verify"], ["audit", "verify", "--json"]):
        result = runner.invoke(main, command)
        assert result.exit_code == 0 and PASSWORD not in result.output + result.stderr
        assert masked in (result.stderr if command[-1] != "--json" else json.loads(result.stdout)["store"])
    assert not home.audit_path.exists()


def test_from_home_follows_the_environment(home, tmp_path):
    assert AuditLog.location_for(home, environ={}) == DatabaseURL.sqlite(home.audit_path)
    shared = AuditLog.location_for(home, environ={ENV_VAR: "postgresql://u@h/db"})
    assert shared.backend is Backend.POSTGRESQL and shared.conninfo == "postgresql://u@h/db"
    one = tmp_path / "all.sqlite"
    with AuditLog.from_home(home, environ={ENV_VAR: f"sqlite://{one}"}) as log:
        log.record_review(file="x", file_sha256="aa", decision="publish", editor="E")
        assert log.path == one and repr(log) == f"AuditLog({str(one)!r})"
    assert one.exists() and not home.audit_path.exists()


def test_the_same_content_has_the_same_hashes_on_both_backends(tmp_path, request, monkeypatch):
    """Text PostgreSQL cannot hold as given (NUL, a name that is not UTF-8) is escaped the same way on both."""
    monkeypatch.setattr(audit_module, "_now", lambda: "2026-01-01T00:00:00.000+00:00")
    heads = []
    for location in (tmp_path / "audit.sqlite", request.getfixturevalue("fresh_postgres_url")):
        with AuditLog(location) as log:
            log.record_verification(file=os.fsdecode(b"caf\xe9.png"), file_sha256="dd", policy="p\x00",
                                    policy_sha256="ph", verdict=None, action="error", reasons=["nul \x00"])
            log.record_review(file="x\x00y", file_sha256="dd", decision="publish", editor="\ud800Ed", note="\x00")
            entries = log.entries()
            heads.append((log.head(), log.verify()))
        assert [(e.file, e.policy, e.reasons, e.editor, e.note) for e in entries] == [
            ("caf\\xe9.png", "p\\x00", ["nul \x00"], None, None), ("x\\x00y", None, None, "\\ud800Ed", "\\x00")]
    (sqlite_head, sqlite_chain), (pg_head, pg_chain) = heads
    assert sqlite_head == pg_head and sqlite_head[0] == 2
    assert sqlite_chain.intact and pg_chain.intact and sqlite_chain.head == pg_chain.head == sqlite_head[1]


# The schema of an audit log written before the hash chain (synthguard before issue 17), to test the migration.
LEGACY_SCHEMA = """
CREATE TABLE entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('verification', 'review')), file TEXT NOT NULL, file_sha256 TEXT,
    policy TEXT, policy_sha256 TEXT, verdict TEXT, action TEXT, reasons TEXT, editor TEXT, note TEXT,
    tool_version TEXT NOT NULL);
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


def _fill(location, n=4) -> None:
    with AuditLog(location) as log:
        for i in range(n):
            log.record_verification(file=f"f{i}.png", file_sha256=f"{i:02d}", policy="p", policy_sha256="ph",
                                    verdict="unknown", action="human-review", reasons=[f"r{i}"])


def _tamper(path, *statements, params=()) -> None:
    """What someone with write access to the file can do: drop the guards and change rows directly."""
    Store(path).tamper(*statements, params=params)


def _row(path, entry_id) -> dict:
    return Store(path).row(entry_id)


def _forge(store: Store, entry_id, prev_hash, **changes) -> None:
    """Insert a copy of entry 1 with ``changes`` under ``entry_id``, its own hash correctly computed over
    ``prev_hash`` (the forger knows the algorithm)."""
    values = store.row(1) | changes
    values.update(id=entry_id, prev_hash=prev_hash, row_hash=entry_hash(entry_id, values, prev_hash))
    columns = ", ".join(values)
    store.tamper(f"INSERT INTO entries ({columns}) VALUES ({', '.join('?' for _ in values)})",
                 params=tuple(values.values()))


def _verify_cli(*args):
    return CliRunner().invoke(main, ["audit", "verify", *args])


def test_intact_chain_and_verify_command(store):
    if store.backend is Backend.SQLITE:
        empty = _verify_cli()
        assert empty.exit_code == 2 and "no audit log" in empty.stderr
    _fill(store.location, 3)
    with store.open() as log:
        chain = log.verify()
        log.record_review(file="f0.png", file_sha256="00", decision="publish", editor="Ed")
        longer = log.verify()
    assert chain.intact and chain.entries == 3 and chain.head == store.row(3)["row_hash"]
    assert store.row(1)["prev_hash"] == GENESIS and chain.store == store.url.masked()
    assert longer.intact and longer.entries == 4 and longer.head != chain.head
    done = _verify_cli()
    assert done.exit_code == 0 and done.stdout.strip() == f"intact: 4 entries, head {longer.head}"
    assert done.stderr == f"audit log: {store.url.masked()}\n"
    as_json = _verify_cli("--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == longer.to_dict()
    assert json.loads(as_json.stdout)["intact"] is True


def test_edit_after_removing_the_trigger_is_named(store):
    _fill(store.location)
    # PostgreSQL: the triggers disabled (SQLite's can only be dropped); the other tests drop them.
    store.tamper("UPDATE entries SET action = 'publish' WHERE id = 2", guards="disable")
    result = _verify_cli()
    assert result.exit_code == 2 and result.stdout == ""
    assert "broken at entry #2: its content or id was changed" in result.stderr
    assert store.url.masked() in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    as_json = _verify_cli("--json")
    assert as_json.exit_code == 2 and json.loads(as_json.stdout)["broken_at"] == 2


def test_edit_with_its_hash_recomputed_breaks_the_next_entry(store):
    _fill(store.location)
    values = store.row(2) | {"verdict": "authentic"}
    forged = entry_hash(2, values, values["prev_hash"])
    store.tamper("UPDATE entries SET verdict = 'authentic', row_hash = ? WHERE id = 2", params=(forged,))
    with store.open() as log:
        chain = log.verify()
    assert chain.broken_at == 3 and "does not follow entry #2" in chain.problem


def test_deleted_entries_are_named(store):
    _fill(store.location, 5)
    store.tamper("DELETE FROM entries WHERE id = 2", guards="disable")
    result = _verify_cli()
    assert result.exit_code == 2 and "broken at entry #3" in result.stderr and "entry #2 is missing" in result.stderr
    store.tamper("DELETE FROM entries WHERE id = 4")
    with store.open() as log:
        assert log.verify().broken_at == 3


def test_deleting_the_last_entries_is_seen(store):
    _fill(store.location, 4)
    store.tamper("DELETE FROM entries WHERE id >= 3")
    with store.open() as log:
        chain = log.verify()
        # An append after the deletion reuses the id but does not hide that entry #4 was written.
        log.record_review(file="f0.png", file_sha256="00", decision="publish", editor="Ed")
        after = log.verify()
    assert not chain.intact and chain.broken_at == 4 and "ends at entry #2" in chain.problem
    assert after.broken_at == 4 and "ends at entry #3" in after.problem
    result = _verify_cli()
    assert result.exit_code == 2 and "the last ones were deleted" in result.stderr


def test_emptying_the_log_is_seen(store):
    _fill(store.location, 3)
    emptied = "TRUNCATE entries" if store.backend is Backend.POSTGRESQL else "DELETE FROM entries"
    store.tamper(emptied, guards="disable")
    with store.open() as log:
        chain = log.verify()
    assert chain.entries == 0 and chain.broken_at == 3 and "the log is empty but entries up to #3" in chain.problem


def test_a_forged_entry_at_the_end_is_named(store):
    _fill(store.location, 3)
    # A forged entry at the end that claims to follow entry 1, not entry 3.
    _forge(store, 4, store.row(1)["row_hash"], verdict="authentic")
    result = _verify_cli()
    assert result.exit_code == 2 and "broken at entry #4" in result.stderr


def test_a_forged_entry_in_front_is_named(store):
    _fill(store.location, 3)
    # A forged entry in front of the first one, chained from the start.
    _forge(store, 0, GENESIS, action="publish")
    with store.open() as log:
        chain = log.verify()
    assert chain.broken_at == 1 and "does not follow entry #0" in chain.problem


def test_an_entry_without_its_hashes_is_named(store):
    _fill(store.location, 2)
    store.tamper("ALTER TABLE entries DISABLE TRIGGER USER" if store.backend is Backend.POSTGRESQL
                 else "DROP TRIGGER entries_chained",
                 "INSERT INTO entries (id, time, kind, file, tool_version) VALUES (3, 't', 'review', 'x', '0')")
    with store.open() as log:
        chain = log.verify()
    assert chain.broken_at == 3 and "no chain hash" in chain.problem


def test_an_unchained_insert_is_refused(home):
    _fill(home.audit_path, 1)
    db = sqlite3.connect(home.audit_path)
    with pytest.raises(sqlite3.DatabaseError, match="chain hashes"):
        db.execute("INSERT INTO entries (time, kind, file, tool_version) VALUES ('t', 'review', 'x', '0')")
    db.close()


def test_dropped_sqlite_guards_are_put_back_on_opening(home):
    _fill(home.audit_path, 1)
    _tamper(home.audit_path)
    AuditLog(home.audit_path).close()
    db = sqlite3.connect(home.audit_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM entries")
    db.close()


def test_a_log_from_before_the_chain_is_migrated(tmp_path):
    path = tmp_path / "audit.sqlite"
    db = sqlite3.connect(path)
    db.executescript(LEGACY_SCHEMA)
    for i in range(3):
        db.execute("INSERT INTO entries (time, kind, file, file_sha256, action, tool_version) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   (f"2026-01-0{i + 1}T00:00:00.000+00:00", "verification", f"old{i}.png", "aa", "publish", "0.0"))
    db.commit()
    db.close()
    with AuditLog(path) as log:
        migrated = log.verify()
        new_id = log.record_review(file="old0.png", file_sha256="aa", decision="reject", editor="Ed")
        after = log.verify()
        assert [e.file for e in log.entries("aa")] == ["old0.png", "old1.png", "old2.png", "old0.png"]
    assert migrated.intact and migrated.entries == 3 and migrated.migrated_through == 3
    assert any("migrated" in line for line in migrated.describe())
    assert new_id == 4 and after.intact and after.entries == 4 and after.migrated_through == 3
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE entries SET action = 'reject' WHERE id = 1")
    db.close()
    with AuditLog(path) as log:
        assert log.verify().entries == 4
    _tamper(path, "UPDATE entries SET file = 'other.png' WHERE id = 1")
    with AuditLog(path) as log:
        assert log.verify().broken_at == 1


def test_a_chained_log_from_before_the_migrations_opens_unchanged(tmp_path):
    """A log written with the chain but before ``schema_migrations`` (and ``chain_head``) keeps its hashes, and its
    deleted last entries are still seen through SQLite's counter."""
    path = tmp_path / "audit.sqlite"
    _fill(path, 4)
    hashes = [_row(path, i)["row_hash"] for i in range(1, 5)]
    _tamper(path, "DROP TABLE chain_head", "DROP TABLE schema_migrations", "DELETE FROM entries WHERE id = 4")
    with AuditLog(path) as log:
        chain = log.verify()
    assert [_row(path, i)["row_hash"] for i in range(1, 4)] == hashes[:3]
    assert chain.broken_at == 4 and "ends at entry #3" in chain.problem
    assert Store(path).rows("SELECT one, last_id FROM chain_head") == [(1, 4)]


APPENDER = """
import sys, time
from pathlib import Path
from synthguard.desk.audit import AuditLog
location, name, count, gate = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
(gate / name).touch()
while not (gate / "go").exists():
    time.sleep(0.005)
with AuditLog(location) as log:
    for i in range(count):
        log.record_review(file=f"{name}-{i}", file_sha256="cc", decision="publish", editor=name)
"""


def _append_at_once(location, gate, count) -> None:
    """Two processes that open ``location`` and append ``count`` reviews each, released together."""
    gate.mkdir()
    writers = [subprocess.Popen([sys.executable, "-c", APPENDER, str(location), name, str(count), str(gate)])
               for name in ("a", "b")]
    deadline = time.monotonic() + 60
    while not ((gate / "a").exists() and (gate / "b").exists()) and time.monotonic() < deadline:
        time.sleep(0.01)
    (gate / "go").touch()
    assert [w.wait(timeout=180) for w in writers] == [0, 0]


def test_two_processes_appending_at_once_keep_one_chain(store, tmp_path):
    """Reading the last hash outside the write lock (a deferred BEGIN on SQLite, no advisory lock on PostgreSQL)
    makes this fail with "database is locked", a duplicate id, or a forked chain."""
    _fill(store.location, 1)
    _append_at_once(store.location, tmp_path / "gate", 300)
    with store.open() as log:
        chain = log.verify()
        entries = log.entries()
    assert chain.intact and chain.entries == 601
    assert [e.id for e in entries] == list(range(1, 602))
    assert sorted(e.editor for e in entries[1:]) == ["a"] * 300 + ["b"] * 300
    assert store.rows("SELECT last_id FROM chain_head") == [(601,)]


def test_verify_reads_a_long_log_in_pages(store, monkeypatch):
    monkeypatch.setattr(audit_module, "_PAGE", 3)
    _fill(store.location, 7)
    with store.open() as log:
        assert log.verify().entries == 7 and log.verify().intact
    store.tamper("UPDATE entries SET note = 'x' WHERE id = 7")
    with store.open() as log:
        assert log.verify().broken_at == 7


def test_a_name_that_is_not_utf8_is_stored_escaped(tmp_path):
    name = os.fsdecode(b"caf\xe9.png")
    with AuditLog(tmp_path / "audit.sqlite") as log:
        log.record_verification(file=name, file_sha256="dd", policy="p", policy_sha256="ph", verdict=None,
                                action="error", reasons=None)
        assert log.entries()[0].file == "caf\\xe9.png" and log.verify().intact


def test_show_into_a_reader_that_stops_early_ends_quietly(home):
    _fill(home.audit_path, 2000)
    env = os.environ | {"SYNTHGUARD_HOME": str(home.root)}
    env.pop(ENV_VAR, None)
    command = [sys.executable, "-c", "from synthguard.cli import main; main()", "audit", "show"]
    shown = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert shown.stdout.readline().startswith(b"#1 ")
    shown.stdout.close()
    stderr = shown.stderr.read().decode()
    assert shown.wait(timeout=60) == 0 and stderr == f"audit log: {home.audit_path} (2000 entries shown)\n"


def test_two_processes_opening_an_old_log_migrate_it_once(tmp_path):
    path = tmp_path / "audit.sqlite"
    db = sqlite3.connect(path)
    db.executescript(LEGACY_SCHEMA)
    db.execute("INSERT INTO entries (time, kind, file, tool_version) VALUES ('t', 'review', 'old.png', '0.0')")
    db.commit()
    db.close()
    _append_at_once(path, tmp_path / "gate", 20)
    with AuditLog(path) as log:
        chain = log.verify()
    assert chain.intact and chain.entries == 41 and chain.migrated_through == 1
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM chain_migration").fetchone() == (1,)
    db.close()
