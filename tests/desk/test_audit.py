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

from synthguard.cli import main
from synthguard.desk.audit import GENESIS, AuditLog, entry_hash
from synthguard.errors import LedgerError


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


def test_review_and_show_commands(home, png):
    runner = CliRunner()
    empty = runner.invoke(main, ["audit", "show"])
    assert empty.exit_code == 2 and "no audit log" in empty.stderr
    done = runner.invoke(main, ["audit", "review", str(png), "--decision", "label-ai", "--editor", "A. Editor",
                                "--note", "AI illustration, labelled"])
    assert done.exit_code == 0 and "recorded review" in done.stdout
    shown = runner.invoke(main, ["audit", "show", str(png)])
    assert "label-ai by A. Editor (AI illustration, labelled)" in shown.stdout
    bad = runner.invoke(main, ["audit", "review", str(png), "--decision", "maybe", "--editor", "E"])
    assert bad.exit_code == 2


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


def _fill(path, n=4) -> None:
    with AuditLog(path) as log:
        for i in range(n):
            log.record_verification(file=f"f{i}.png", file_sha256=f"{i:02d}", policy="p", policy_sha256="ph",
                                    verdict="unknown", action="human-review", reasons=[f"r{i}"])


def _tamper(path, *statements, params=()) -> None:
    """What someone with write access to the file can do: drop the guards and change rows directly."""
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER IF EXISTS entries_no_update")
    db.execute("DROP TRIGGER IF EXISTS entries_no_delete")
    for statement in statements:
        db.execute(statement, params)
    db.commit()
    db.close()


def _row(path, entry_id) -> dict:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    row = dict(db.execute("SELECT * FROM entries WHERE id = ?", (entry_id,)).fetchone())
    db.close()
    return row


def _forge(path, entry_id, prev_hash, **changes) -> None:
    """Insert a copy of entry 1 with ``changes`` under ``entry_id``, its own hash correctly computed over
    ``prev_hash`` (the forger knows the algorithm)."""
    values = _row(path, 1) | changes
    values.update(id=entry_id, prev_hash=prev_hash, row_hash=entry_hash(entry_id, values, prev_hash))
    columns = ", ".join(values)
    _tamper(path, f"INSERT INTO entries ({columns}) VALUES ({', '.join('?' for _ in values)})",
            params=tuple(values.values()))


def _verify_cli(*args):
    return CliRunner().invoke(main, ["audit", "verify", *args])


def test_intact_chain_and_verify_command(home):
    empty = _verify_cli()
    assert empty.exit_code == 2 and "no audit log" in empty.stderr
    _fill(home.audit_path, 3)
    with AuditLog(home.audit_path) as log:
        chain = log.verify()
        log.record_review(file="f0.png", file_sha256="00", decision="publish", editor="Ed")
        longer = log.verify()
    assert chain.intact and chain.entries == 3 and chain.head == _row(home.audit_path, 3)["row_hash"]
    assert _row(home.audit_path, 1)["prev_hash"] == GENESIS
    assert longer.intact and longer.entries == 4 and longer.head != chain.head
    done = _verify_cli()
    assert done.exit_code == 0 and done.stdout.strip() == f"intact: 4 entries, head {longer.head}"
    as_json = _verify_cli("--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == longer.to_dict()
    assert json.loads(as_json.stdout)["intact"] is True


def test_edit_after_dropping_the_trigger_is_named(home):
    _fill(home.audit_path)
    _tamper(home.audit_path, "UPDATE entries SET action = 'publish' WHERE id = 2")
    result = _verify_cli()
    assert result.exit_code == 2 and result.stdout == ""
    assert "broken at entry #2: its content or id was changed" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    as_json = _verify_cli("--json")
    assert as_json.exit_code == 2 and json.loads(as_json.stdout)["broken_at"] == 2


def test_edit_with_its_hash_recomputed_breaks_the_next_entry(home):
    _fill(home.audit_path)
    values = _row(home.audit_path, 2) | {"verdict": "authentic"}
    forged = entry_hash(2, values, values["prev_hash"])
    _tamper(home.audit_path, "UPDATE entries SET verdict = 'authentic', row_hash = ? WHERE id = 2", params=(forged,))
    with AuditLog(home.audit_path) as log:
        chain = log.verify()
    assert chain.broken_at == 3 and "does not follow entry #2" in chain.problem


def test_deleted_entries_are_named(home):
    _fill(home.audit_path, 5)
    _tamper(home.audit_path, "DELETE FROM entries WHERE id = 2")
    result = _verify_cli()
    assert result.exit_code == 2 and "broken at entry #3" in result.stderr and "entry #2 is missing" in result.stderr
    _tamper(home.audit_path, "DELETE FROM entries WHERE id = 4")
    with AuditLog(home.audit_path) as log:
        assert log.verify().broken_at == 3


def test_deleting_the_last_entries_is_seen(home):
    _fill(home.audit_path, 4)
    _tamper(home.audit_path, "DELETE FROM entries WHERE id >= 3")
    with AuditLog(home.audit_path) as log:
        chain = log.verify()
    assert not chain.intact and chain.broken_at == 4 and "ends at entry #2" in chain.problem


def test_entries_inserted_out_of_order_are_named(home, tmp_path):
    _fill(home.audit_path, 3)
    # A forged entry at the end that claims to follow entry 1, not entry 3.
    _forge(home.audit_path, 4, _row(home.audit_path, 1)["row_hash"], verdict="authentic")
    result = _verify_cli()
    assert result.exit_code == 2 and "broken at entry #4" in result.stderr
    # A forged entry in front of the first one, chained from the start.
    front = tmp_path / "front.sqlite"
    _fill(front, 3)
    _forge(front, 0, GENESIS, action="publish")
    with AuditLog(front) as log:
        chain = log.verify()
    assert chain.broken_at == 1 and "does not follow entry #0" in chain.problem


def test_an_unchained_insert_is_refused(home):
    _fill(home.audit_path, 1)
    db = sqlite3.connect(home.audit_path)
    with pytest.raises(sqlite3.DatabaseError, match="chain hashes"):
        db.execute("INSERT INTO entries (time, kind, file, tool_version) VALUES ('t', 'review', 'x', '0')")
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


APPENDER = """
import sys, time
from pathlib import Path
from synthguard.desk.audit import AuditLog
path, name, count, gate = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
(gate / name).touch()
while not (gate / "go").exists():
    time.sleep(0.005)
with AuditLog(path) as log:
    for i in range(count):
        log.record_review(file=f"{name}-{i}", file_sha256="cc", decision="publish", editor=name)
"""


def _append_at_once(path, gate, count) -> None:
    """Two processes that open ``path`` and append ``count`` reviews each, released together."""
    gate.mkdir()
    writers = [subprocess.Popen([sys.executable, "-c", APPENDER, str(path), name, str(count), str(gate)])
               for name in ("a", "b")]
    deadline = time.monotonic() + 60
    while not ((gate / "a").exists() and (gate / "b").exists()) and time.monotonic() < deadline:
        time.sleep(0.01)
    (gate / "go").touch()
    assert [w.wait(timeout=120) for w in writers] == [0, 0]


def test_two_processes_appending_at_once_keep_one_chain(home, tmp_path):
    """Reading the last hash outside the write lock (a deferred BEGIN) makes this fail with "database is locked"
    or a forked chain."""
    _fill(home.audit_path, 1)
    _append_at_once(home.audit_path, tmp_path / "gate", 300)
    with AuditLog(home.audit_path) as log:
        chain = log.verify()
        entries = log.entries()
    assert chain.intact and chain.entries == 601
    assert [e.id for e in entries] == list(range(1, 602))
    assert sorted(e.editor for e in entries[1:]) == ["a"] * 300 + ["b"] * 300


def test_a_name_that_is_not_utf8_is_stored_escaped(tmp_path):
    name = os.fsdecode(b"caf\xe9.png")
    with AuditLog(tmp_path / "audit.sqlite") as log:
        log.record_verification(file=name, file_sha256="dd", policy="p", policy_sha256="ph", verdict=None,
                                action="error", reasons=None)
        assert log.entries()[0].file == "caf\\xe9.png" and log.verify().intact


def test_show_into_a_reader_that_stops_early_ends_quietly(home):
    _fill(home.audit_path, 2000)
    env = os.environ | {"SYNTHGUARD_HOME": str(home.root)}
    command = [sys.executable, "-c", "from synthguard.cli import main; main()", "audit", "show"]
    shown = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert shown.stdout.readline().startswith(b"#1 ")
    shown.stdout.close()
    stderr = shown.stderr.read().decode()
    assert shown.wait(timeout=60) == 0 and stderr == ""


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
